"""A day's sync of the grid workers' terminals: ``python -m bench.terminals [--terminals 1022]``.

Issue 13's must-show: Yulin's 1,022 terminals each send a day's work to the server, and
the report ``POST /incidents`` p99 at 200 requests per second.

1. **Database** — a scratch database on ``--admin-url`` (a PostgreSQL superuser URL;
   default ``GEOGRID_TEST_ADMIN_URL`` or the local ``postgres``) holding the Yulin demo
   (8,798 grids, their workers; ``--incidents`` incidents, no registry), dropped at the end.
2. **Server** — ``geogrid serve --workers N`` as a subprocess (as ``bench.report_load``)
   with a scratch ``GEOGRID_HOME`` (the media files). The anonymous rate limits and the
   callers' time budgets are **raised** (the enrolment burst comes from one IP); the
   per-account rate limits stay at their defaults.
3. **Enrolment through the API** — ``--terminals`` workers of distinct grids: an admin
   issues each an enrolment code (``POST /terminals/enrolments``) and the device redeems it
   (``POST /terminals``) for its own token.
4. **The day** — each terminal replays its outbox as the phone sends it when the network is
   back, one request after the other (``--concurrency`` terminals at once, asyncio + httpx):
   ``GET /sync``, ``GET /tasks``, ``GET /notifications``; reports with a photo each
   (``PUT /media/{sha256}`` of a real 320×240 JPEG made once with Pillow, distinct bytes per
   photo, then ``POST /incidents`` with ``media``); service-register entries (some with a
   photo); ``GET /tasks`` again (the day's reports are its grid's tasks now), notes and
   transitions on its tasks (with ``expected_updated_at``); one patrol (``--fixes`` GPS
   fixes every 5 s, a walk inside the grid, and check-ins); a last ``GET /sync?since=``.
   Every write carries an ``Idempotency-Key``;
   ``--retry`` (5 %) of the writes are sent again with the same key after their answer
   (the phone lost the answer) and must get the same answer.
   Printed: requests, throughput (requests/s and actions/s), p50/p99 per request kind,
   errors (must be 0), and the database counts (incidents, entries, patrols, notes,
   media = the distinct keys/photos sent: the retries created nothing).
5. **Report load** — open-loop ``POST /incidents`` at ``--rate`` per second for
   ``--seconds`` with the terminals' tokens (each inside its own grid: a worker reports only
   there), on :mod:`bench.report_load`'s keep-alive client: achieved rate, p50/p99, errors
   (``--rate 200,20``: one load per rate, after a 3 s warm-up each).

On a busy 2-core machine the full 1,022 terminals take long: ``--terminals 150`` gives the
per-request figures; the day's duration at full size is then ~``1022/150`` times longer
(the server's throughput, not the terminal count, is the limit). The server's log is kept
in the scratch home; its tracebacks (a 500) are printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import psycopg
import shapely
from PIL import Image

from bench.abuse import _demo_database
from bench.report_load import LoadResult, _exchange, _free_port, _Pool, _stop
from geogrid.core.service_register import SERVICE_KINDS
from geogrid.services.accounts import add_user
from geogrid.services.demo import DEMO_CITY_FILE
from geogrid.store import get_engine

__all__ = ["Terminal", "DayStats", "main"]

_ZONE = ZoneInfo("Asia/Shanghai")
#: categories of the demo's catalogue the reports use (as bench.report_load)
_CATEGORIES = ("sanitation", "road_occupation", "facility_damage", "greening", "noise")
#: what the bench raises (settings via the environment of the server)
_RAISED = {
    "GEOGRID_RATE_LIMITS_ANONYMOUS": json.dumps(
        {
            "cheap": "100000/second",
            "standard": "100000/second",
            "expensive": "100000/second",
            "public_form": "100000/second",
        }
    ),
    "GEOGRID_TIME_BUDGET_ANONYMOUS": "100000000/minute",
    "GEOGRID_TIME_BUDGET_ACCOUNT": "100000000/minute",
}
_M_PER_DEG = 111_320.0


@dataclass
class Terminal:
    """An enrolled device: its worker, grid (polygon, WGS84) and token."""

    account_id: int
    grid_code: str
    grid: shapely.Geometry
    token: str = ""
    terminal_id: int = 0


@dataclass
class DayStats:
    """What the day's sync measured."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    transport_retries: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    error_samples: list[str] = field(default_factory=list)
    actions: int = 0
    retries: int = 0
    retry_mismatch: int = 0
    sent: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    photos: set[str] = field(default_factory=set)

    @property
    def requests(self) -> int:
        return (
            sum(len(v) for v in self.latencies.values())
            + sum(self.errors.values())
            + sum(self.transport_retries.values())
        )


# ---------------------------------------------------------------- data


def _points_in(poly: shapely.Geometry, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform points inside ``poly`` (rejection in its bounds), shape (n, 2)."""
    x0, y0, x1, y1 = poly.bounds
    out = np.empty((0, 2))
    for _ in range(200):
        xy = rng.uniform((x0, y0), (x1, y1), size=(4 * n + 16, 2))
        xy = xy[shapely.contains_xy(poly, xy[:, 0], xy[:, 1])]
        out = np.vstack([out, xy])
        if len(out) >= n:
            return out[:n]
    p = poly.representative_point()  # a sliver: its inner point
    return np.tile([p.x, p.y], (n, 1))


def _track(poly: shapely.Geometry, fixes: int, start: datetime, rng: np.random.Generator):
    """A walk of ``fixes`` GPS fixes 5 s apart (~1.2 m/s) inside ``poly``: ``[[lon, lat,
    epoch_ms, accuracy_m], …]``; it turns when the next step would leave the grid."""
    x, y = _points_in(poly, 1, rng)[0]
    kx = 1.0 / (_M_PER_DEG * np.cos(np.radians(y)))
    ky = 1.0 / _M_PER_DEG
    heading = rng.uniform(0, 2 * np.pi)
    t0 = int(start.timestamp() * 1000)
    pts: list[list[float]] = []
    for i in range(fixes):
        acc = float(rng.choice([4.0, 6.0, 8.0, 12.0, 20.0]))
        pts.append([round(x, 7), round(y, 7), t0 + i * 5000, acc])
        step = rng.normal(6.0, 1.0)
        for _ in range(8):
            heading += rng.normal(0, 0.3)
            nx = x + step * np.cos(heading) * kx
            ny = y + step * np.sin(heading) * ky
            if shapely.contains_xy(poly, nx, ny):
                x, y = nx, ny
                break
            heading += np.pi / 2 + rng.uniform(0, np.pi)
    return pts


def _jpeg_base() -> bytes:
    """A real 320×240 JPEG (a gradient with noise), made once."""
    rng = np.random.default_rng(13)
    gx = np.linspace(0, 255, 320)[None, :, None]
    gy = np.linspace(0, 255, 240)[:, None, None]
    img = np.concatenate([gx + 0 * gy, gy + 0 * gx, (gx + gy) / 2], axis=2)
    img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img, "RGB").save(buf, "JPEG", quality=75)
    return buf.getvalue()


def _photo(base: bytes, tag: str) -> tuple[bytes, str]:
    """``base`` made distinct by a JPEG comment segment (COM) after SOI; (bytes, sha256)."""
    text = tag.encode()
    data = base[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + base[2:]
    return data, hashlib.sha256(data).hexdigest()


def _pick_workers(db: str, n: int, seed: int) -> list[Terminal]:
    """``n`` worker accounts of distinct grids (one grid each), with their grid polygons."""
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT DISTINCT ON (u.code) a.id, u.code, ST_AsBinary(ST_Transform(u.geom, 4326)) "
            "FROM account a JOIN account_unit au ON au.account_id = a.id "
            "JOIN unit u ON u.code = au.unit_code AND u.level = 'grid' AND u.version_id = "
            "(SELECT id FROM boundary_version WHERE status = 'published' ORDER BY id DESC "
            "LIMIT 1) WHERE a.role = 'worker' ORDER BY u.code, a.id"
        ).fetchall()
    random.Random(seed).shuffle(rows)
    seen: set[int] = set()
    out: list[Terminal] = []
    for acc, code, wkb in rows:
        if acc in seen:
            continue
        seen.add(acc)
        out.append(Terminal(int(acc), str(code), shapely.from_wkb(bytes(wkb))))
        if len(out) == n:
            break
    if len(out) < n:
        raise RuntimeError(f"only {len(out)} workers of distinct grids, {n} asked")
    return out


# ---------------------------------------------------------------- enrolment


async def _enrol(base: str, admin: str, terms: list[Terminal], concurrency: int) -> float:
    """Enrol every terminal through the API; returns the seconds it took."""
    sem = asyncio.Semaphore(concurrency)
    t0 = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def one(t: Terminal) -> None:
            async with sem:
                r = await client.post(
                    "/terminals/enrolments",
                    json={"account_id": t.account_id},
                    headers={"Authorization": f"Bearer {admin}"},
                )
                r.raise_for_status()
                code = r.json()["code"]
                r = await client.post(
                    "/terminals",
                    json={"code": code, "label": f"bench {t.grid_code}", "app_version": "1.0"},
                    headers={"Idempotency-Key": uuid.uuid4().hex},
                )
                r.raise_for_status()
                t.token, t.terminal_id = r.json()["token"], int(r.json()["terminal_id"])

        await asyncio.gather(*(one(t) for t in terms))
    return time.perf_counter() - t0


# ---------------------------------------------------------------- the day


@dataclass
class _Plan:
    reports: int = 5
    entries: int = 14
    entry_photos: int = 4
    notes: int = 3
    transitions: int = 2
    fixes: int = 500
    checkins: int = 3
    retry: float = 0.05


class _Day:
    """One terminal's outbox, sent in order."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        t: Terminal,
        plan: _Plan,
        stats: DayStats,
        run: str,
        jpeg: bytes,
        rng: np.random.Generator,
    ) -> None:
        self.client, self.t, self.plan, self.stats = client, t, plan, stats
        self.run, self.jpeg, self.rng = run, jpeg, rng
        self.auth = {"Authorization": f"Bearer {t.token}", "X-App-Version": "1.0"}
        self.k = 0

    async def call(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        body: Any = None,
        content: bytes | None = None,
        ctype: str | None = None,
        key: bool = False,
        params: dict[str, str] | None = None,
    ) -> Any:
        """One request (and, for a write, maybe its retry with the same key); the JSON
        answer or None on an error (counted)."""
        headers = dict(self.auth)
        if key:
            self.k += 1
            headers["Idempotency-Key"] = f"{self.run}-{self.t.terminal_id}-{self.k}"
        if ctype:
            headers["Content-Type"] = ctype
        first: Any = None
        for attempt in (0, 1):
            label = kind if attempt == 0 else f"{kind} (retry)"
            t0 = time.perf_counter()
            r = None
            for _ in range(3):  # a broken connection: the outbox sends it again (same key)
                try:
                    r = await self.client.request(
                        method, path, json=body, content=content, headers=headers, params=params
                    )
                    break
                except httpx.TransportError as exc:
                    self.stats.transport_retries[f"{label}: {type(exc).__name__}"] += 1
            if r is None:
                self.stats.errors[f"{label}: gave up after 3 broken connections"] += 1
                return first
            ms = (time.perf_counter() - t0) * 1000.0
            if r.status_code >= 400:
                self.stats.errors[f"{label}: {r.status_code}"] += 1
                if len(self.stats.error_samples) < 8:
                    self.stats.error_samples.append(
                        f"{method} {path} {r.status_code} {r.text[:300]}"
                    )
                return first
            self.stats.latencies[label].append(ms)
            answer = r.json() if r.content else None
            if attempt == 0:
                first = answer
                if method == "GET" or self.rng.random() >= self.plan.retry:
                    return first
                self.stats.retries += 1
            elif _ident(answer) != _ident(first):
                self.stats.retry_mismatch += 1
        return first

    async def upload(self, tag: str) -> str | None:
        data, sha = _photo(self.jpeg, f"{self.run} {self.t.terminal_id} {tag}")
        got = await self.call(
            "PUT /media", "PUT", f"/media/{sha}", content=data, ctype="image/jpeg", key=True
        )
        if got is None:
            return None
        self.stats.photos.add(sha)
        return sha

    async def run_day(self) -> None:
        p, t, st = self.plan, self.t, self.stats
        now = datetime.now(UTC)
        day = now.astimezone(_ZONE).date().isoformat()
        await self.call("GET /sync", "GET", "/sync")
        await self.call("GET /tasks", "GET", "/tasks")
        await self.call("GET /notifications", "GET", "/notifications")
        st.actions += 3
        pts = _points_in(t.grid, p.reports + p.entries + p.checkins, self.rng)
        for i in range(p.reports):
            sha = await self.upload(f"report {i}")
            body = {
                "category": _CATEGORIES[int(self.rng.integers(len(_CATEGORIES)))],
                "lon": round(float(pts[i, 0]), 7),
                "lat": round(float(pts[i, 1]), 7),
                "accuracy_m": 8.0,
                "description": f"bench {self.run} report {t.terminal_id}/{i}",
                "media": [sha] if sha else [],
            }
            if await self.call("POST /incidents", "POST", "/incidents", body=body, key=True):
                st.sent["incidents"] += 1
            st.actions += 1
        for i in range(p.entries):
            sha = await self.upload(f"entry {i}") if i < p.entry_photos else None
            x, y = pts[p.reports + i]
            body = {
                "day": day,
                "kind": SERVICE_KINDS[i % len(SERVICE_KINDS)].code,
                "result": "已办结",
                "people_count": int(self.rng.integers(1, 4)),
                "note": f"bench {self.run} entry {t.terminal_id}/{i}",
                "lon": round(float(x), 7),
                "lat": round(float(y), 7),
                "accuracy_m": 10.0,
                "media": [sha] if sha else [],
            }
            got = await self.call(
                "POST /register/entries", "POST", "/register/entries", body=body, key=True
            )
            if got:
                st.sent["entries"] += 1
            st.actions += 1
        # the grid's open tasks now (the day's reports among them), then notes and
        # transitions on them, each on the latest updated_at it saw
        tasks = await self.call("GET /tasks", "GET", "/tasks") or []
        st.actions += 1
        for i, task in enumerate(tasks[: p.notes]):
            body = {
                "note": f"bench {self.run} note {t.terminal_id}/{i}",
                "expected_updated_at": task["updated_at"],
            }
            got = await self.call(
                "POST /incidents/{id}/notes",
                "POST",
                f"/incidents/{task['id']}/notes",
                body=body,
                key=True,
            )
            if got:
                st.sent["notes"] += 1
                task["updated_at"] = got["updated_at"]
            st.actions += 1
        moved = 0
        for task in tasks:
            if moved == p.transitions:
                break
            nxt = [s for s in ("accepted", "in_progress") if s in task.get("transitions", [])]
            if not nxt:
                continue
            body = {
                "status": nxt[0],
                "note": f"bench {self.run} transition {t.terminal_id}/{moved}",
                "expected_updated_at": task["updated_at"],
            }
            got = await self.call(
                "POST /incidents/{id}/transitions",
                "POST",
                f"/incidents/{task['id']}/transitions",
                body=body,
                key=True,
            )
            if got:
                st.sent["transitions"] += 1
            moved += 1
            st.actions += 1
        start = now - timedelta(seconds=5 * p.fixes + 600)
        track = _track(t.grid, p.fixes, start, self.rng)
        checks = [
            {
                "lon": round(float(x), 7),
                "lat": round(float(y), 7),
                "at": (start + timedelta(seconds=600 * (j + 1))).isoformat(),
                "place": f"check-in {j}",
            }
            for j, (x, y) in enumerate(pts[p.reports + p.entries :])
        ]
        body = {
            "started_at": start.isoformat(),
            "ended_at": (start + timedelta(seconds=5 * p.fixes)).isoformat(),
            "crs": "wgs84",
            "points": track,
            "checkins": checks,
        }
        if await self.call("POST /patrols", "POST", "/patrols", body=body, key=True):
            st.sent["patrols"] += 1
        st.actions += 1
        await self.call("GET /sync", "GET", "/sync", params={"since": now.isoformat()})
        st.actions += 1


def _ident(answer: Any) -> Any:
    """What a replayed answer must repeat: the created thing's id (or sha256), else all."""
    if isinstance(answer, dict):
        for k in ("id", "sha256"):
            if k in answer:
                return answer[k]
    return answer


async def _days(
    base: str, terms: list[Terminal], plan: _Plan, concurrency: int, run: str, seed: int
) -> tuple[DayStats, float]:
    stats = DayStats()
    jpeg = _jpeg_base()
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def one(i: int, t: Terminal) -> None:
            async with sem:
                rng = np.random.default_rng(seed + i)
                await _Day(client, t, plan, stats, run, jpeg, rng).run_day()

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i, t) for i, t in enumerate(terms)))
        return stats, time.perf_counter() - t0


def _counts(db: str, run: str, terms: list[Terminal], photos: set[str]) -> dict[str, int]:
    """What the database holds of this run (must equal the distinct keys/photos sent)."""
    ids = [t.account_id for t in terms]
    with psycopg.connect(db) as conn:

        def one(sql: str, *args: Any) -> int:
            row = conn.execute(sql, args).fetchone()
            return int(row[0]) if row else 0

        return {
            "incidents": one(
                "SELECT count(*) FROM incident WHERE description LIKE %s", f"bench {run} report %"
            ),
            "entries": one(
                "SELECT count(*) FROM service_entry WHERE note LIKE %s", f"bench {run} entry %"
            ),
            "notes": one(
                "SELECT count(*) FROM incident_event WHERE note LIKE %s AND kind = 'note'",
                f"bench {run} note %",
            ),
            "transitions": one(
                "SELECT count(*) FROM incident_event WHERE note LIKE %s",
                f"bench {run} transition %",
            ),
            "patrols": one("SELECT count(*) FROM patrol WHERE account_id = ANY(%s)", ids),
            "media": one("SELECT count(*) FROM media WHERE sha256 = ANY(%s)", list(photos)),
        }


# ---------------------------------------------------------------- report load


async def _report_load(
    base: str, terms: list[Terminal], rate: float, seconds: float, seed: int, timeout: float
) -> LoadResult:
    """Open-loop ``POST /incidents`` (as :func:`bench.report_load.run_load`), terminal *i %
    n* reporting inside its own grid, on the same keep-alive client."""
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    n = int(rate * seconds)
    rng = np.random.default_rng(seed)
    per = n // len(terms) + 1
    points = [_points_in(t.grid, per, rng) for t in terms]
    run_id = uuid.uuid4().hex[:12]
    pool = _Pool(host, port)
    result = LoadResult(offered=n, seconds=seconds)

    def request(i: int) -> bytes:
        t = terms[i % len(terms)]
        x, y = points[i % len(terms)][i // len(terms)]
        body = json.dumps(
            {
                "category": _CATEGORIES[i % len(_CATEGORIES)],
                "lon": round(float(x), 7),
                "lat": round(float(y), 7),
                "description": f"bench load {run_id} #{i}",
            }
        ).encode()
        head = (
            f"POST /incidents HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {t.token}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Idempotency-Key: load-{run_id}-{i}\r\n\r\n"
        )
        return head.encode() + body

    async def one(i: int, due: float) -> None:
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            status = await _exchange(pool, request(i), timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            kind = type(exc).__name__
            result.errors[kind] = result.errors.get(kind, 0) + 1
            return
        if 200 <= status < 300:
            result.latencies_ms.append((time.perf_counter() - due) * 1000.0)
        else:
            result.errors[str(status)] = result.errors.get(str(status), 0) + 1

    t0 = time.perf_counter() + 0.5
    await asyncio.gather(*(asyncio.create_task(one(i, t0 + i / rate)) for i in range(n)))
    pool.close()
    return result


# ---------------------------------------------------------------- main


def _serve(db: str, workers: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``geogrid serve`` on ``db`` (as :func:`bench.report_load._serve`, the environment
    of this process with the raised limits), its output kept in ``log``."""
    port = _free_port()
    env = {**os.environ, "GEOGRID_DATABASE_URL": db, "GEOGRID_CITY_FILE": str(DEMO_CITY_FILE)}
    cmd = [sys.executable, "-m", "geogrid.cli", "serve", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--workers", str(workers)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.25)
    else:
        _stop(proc)
        raise RuntimeError(f"the server did not start (see {log})")
    time.sleep(2.0)  # every worker up
    return proc, f"http://127.0.0.1:{port}"


def _tracebacks(log: Path, most: int = 2) -> list[str]:
    """The server's tracebacks (the last lines of the first ``most``)."""
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    blocks = text.split("Traceback (most recent call last):")[1:]
    return ["\n".join(b.strip().splitlines()[-6:]) for b in blocks[:most]]


def _pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(xs, q)), 1) if xs else float("nan")


def main(argv: list[str] | None = None) -> None:
    """Command line: build, enrol, sync a day, load reports; print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--admin-url",
        default=os.environ.get(
            "GEOGRID_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL superuser URL (a scratch database is made and dropped)",
    )
    ap.add_argument("--terminals", type=int, default=1022, help="terminals (workers)")
    ap.add_argument("--actions", type=int, default=30, help="actions per terminal (about)")
    ap.add_argument("--fixes", type=int, default=500, help="GPS fixes of each patrol")
    ap.add_argument("--retry", type=float, default=0.05, help="share of writes sent twice")
    ap.add_argument("--concurrency", type=int, default=64, help="terminals syncing at once")
    ap.add_argument("--workers", type=int, default=2, choices=(1, 2), help="server workers")
    ap.add_argument("--incidents", type=int, default=5000, help="demo incidents")
    ap.add_argument(
        "--rate",
        type=lambda v: [float(x) for x in v.split(",")],
        default=[200.0],
        help="report POSTs per second (a comma list: one load each, e.g. 200,20)",
    )
    ap.add_argument("--seconds", type=float, default=30.0, help="report load duration (s)")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)
    # ~30 actions: 5 fixed reads, 1 patrol, notes/transitions (≤ 5), reports and entries
    rest = max(2, args.actions - 11)
    plan = _Plan(
        reports=max(1, rest // 4),
        entries=rest - max(1, rest // 4),
        entry_photos=max(0, (rest - rest // 4) // 4),
        fixes=args.fixes,
        retry=args.retry,
    )
    home = tempfile.mkdtemp(prefix="geogrid_bench_home_")
    os.environ.update({**_RAISED, "GEOGRID_HOME": home})
    print(f"raised for this bench: {', '.join(_RAISED)} (per-account rate limits unchanged)")
    try:
        t_db = time.perf_counter()
        with _demo_database(args.admin_url, args.incidents) as db:
            print(f"demo database ready in {time.perf_counter() - t_db:.0f} s", flush=True)
            terms = _pick_workers(db, args.terminals, args.seed)
            _, admin = add_user(get_engine(db), "bench admin", "admin")
            get_engine(db).dispose()
            log = Path(home) / "server.log"
            proc, base = _serve(db, args.workers, log)
            try:
                secs = asyncio.run(_enrol(base, admin, terms, 16))
                print(
                    f"enrolled {len(terms)} terminals through the API in {secs:.1f} s "
                    f"({2 * len(terms) / secs:.0f} req/s)",
                    flush=True,
                )
                run = uuid.uuid4().hex[:8]
                stats, wall = asyncio.run(
                    _days(base, terms, plan, args.concurrency, run, args.seed)
                )
                counts = _counts(db, run, terms, stats.photos)
                _print_day(args, plan, stats, wall, counts)
                for k, rate in enumerate(args.rate):
                    if k:
                        time.sleep(35.0)  # the previous load's backlog drains
                    asyncio.run(_report_load(base, terms, rate, 3.0, args.seed + 2 * k, 30.0))
                    res = asyncio.run(
                        _report_load(base, terms, rate, args.seconds, args.seed + 2 * k + 1, 30.0)
                    )
                    summary = {"rate": rate, "seconds": args.seconds, "tokens": len(terms)}
                    summary |= res.summary()
                    summary["load_average_1min"] = round(os.getloadavg()[0], 1)
                    print(json.dumps({"report_load": summary}, indent=1), flush=True)
            finally:
                _stop(proc)
                for tb in _tracebacks(log):
                    print(f"server traceback:\n{tb}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _print_day(
    args: argparse.Namespace, plan: _Plan, st: DayStats, wall: float, counts: dict[str, int]
) -> None:
    n = st.requests
    print(
        f"day's sync: {args.terminals} terminals × ~{st.actions / max(1, args.terminals):.1f} "
        f"actions ({plan.reports} reports with a photo, {plan.entries} entries of which "
        f"{plan.entry_photos} with a photo, ≤ {plan.notes} notes, ≤ {plan.transitions} "
        f"transitions, 1 patrol of {plan.fixes} fixes, 5 reads), {args.concurrency} at once, "
        f"{args.workers} server worker(s)"
    )
    print(
        f"  {n} requests, {st.actions} actions in {wall:.1f} s: {n / wall:.1f} req/s, "
        f"{st.actions / wall:.1f} actions/s; retries {st.retries} "
        f"(answers differing from the first: {st.retry_mismatch})"
    )
    print(f"  {'kind':<40} {'n':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind in sorted(st.latencies):
        xs = st.latencies[kind]
        print(f"  {kind:<40} {len(xs):>7} {_pct(xs, 50):>8} {_pct(xs, 99):>8} {max(xs):>8.1f}")
    print(f"  errors: {sum(st.errors.values())} {dict(st.errors) or ''}")
    print(
        f"  broken connections sent again with the same key (as the outbox does): "
        f"{sum(st.transport_retries.values())} {dict(st.transport_retries) or ''}"
    )
    for s in st.error_samples:
        print(f"    {s}")
    sent = {**st.sent, "media": len(st.photos)}
    kinds = ("incidents", "entries", "notes", "transitions", "patrols", "media")
    ok = all(counts[k] == sent.get(k, 0) for k in kinds)
    print(f"  sent (distinct keys/photos): {dict(sent)}")
    print(f"  in the database:             {counts}")
    print(f"  no duplicates: {'yes' if ok else 'NO'}", flush=True)


if __name__ == "__main__":
    main()
