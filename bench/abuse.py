"""Abuse: ``python -m bench.abuse [--url URL | --db URL | --admin URL] [--seconds 20]``.

Can one anonymous caller starve the service? The bench measures ``GET /locate`` (an
open-loop probe at ``--rate`` requests per second: each request is due at a fixed time
and its latency counts from then, so a stalled server shows as latency) twice:

1. **quiet** — the probe alone;
2. **attack** — the probe while ``--attackers`` threads send expensive anonymous requests
   back to back, each with a fresh window (``/hotspots?permutations=999``, ``/metrics/grid``
   and heat-map tiles with a new ``from``) — the burst of issue 10, item 2.

Printed: the probe's p50 / p99 / max (ms) and errors in each phase, and the attackers'
answers by status (429: rate-limited, 503: the expensive gate was full, 200: served).

Without ``--url`` the bench serves the demo with ``geogrid serve`` (a subprocess) on
``--db`` (default ``GEOGRID_DATABASE_URL``; it must hold the demo: ``geogrid demo load``)
or, with ``--admin URL`` (a PostgreSQL superuser URL), on a new database holding the demo
with ``--incidents`` incidents, dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta

import httpx
import numpy as np
import psycopg

from geogrid.services.database import migrate
from geogrid.services.demo import DEMO_CITY_FILE, load_demo
from geogrid.store import get_engine

__all__ = ["Phase", "probe", "attack", "main"]

#: WGS84 points inside the demo city (Yulin, Yuzhou district) the probe locates
_POINTS = [(110.1521, 22.6307), (110.1800, 22.6500), (110.1300, 22.6100), (110.1650, 22.6420)]


@dataclass
class Phase:
    """The probe's latencies (ms, from each request's due time) and errors in one phase."""

    name: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    attackers: Counter[int] = field(default_factory=Counter)

    def line(self) -> str:
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.asarray([np.nan])
        p50, p99 = np.percentile(lat, [50, 99])
        attack = ", ".join(f"{k}: {v}" for k, v in sorted(self.attackers.items())) or "-"
        return (
            f"{self.name:<7} /locate n={len(self.latencies_ms):>5}  p50 {p50:7.1f} ms  "
            f"p99 {p99:7.1f} ms  max {lat.max():7.1f} ms  errors {dict(self.errors) or 0}  "
            f"| attackers {attack}"
        )


def probe(base: str, rate: float, seconds: float, phase: Phase) -> None:
    """Open-loop ``GET /locate`` at ``rate``/s for ``seconds`` (threads keep the schedule)."""
    n = int(rate * seconds)
    t0 = time.perf_counter() + 0.2
    lock = threading.Lock()

    def one(i: int, client: httpx.Client) -> None:
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        lon, lat = _POINTS[i % len(_POINTS)]
        try:
            r = client.get("/locate", params={"lon": lon, "lat": lat})
            ok = r.status_code == 200
            what = str(r.status_code)
        except httpx.HTTPError as exc:
            ok, what = False, type(exc).__name__
        ms = (time.perf_counter() - due) * 1000
        with lock:
            phase.latencies_ms.append(ms)
            if not ok:
                phase.errors[what] += 1

    with httpx.Client(base_url=base, timeout=30) as client, ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: one(i, client), range(n)))


def _expensive(i: int) -> tuple[str, dict[str, str | int]]:
    """The i-th expensive request, each with a window never asked before."""
    start = date(2025, 1, 1) + timedelta(days=i % 300)
    end = start + timedelta(days=30 + i % 7)
    fresh = {"from": f"{start}T{i % 24:02d}:{i % 60:02d}:00", "to": str(end)}
    kind = i % 3
    if kind == 0:
        return "/hotspots", {"level": "grid", "permutations": 999, **fresh}
    if kind == 1:
        return "/metrics/grid", dict(fresh)
    x, y = 3299 + i % 8, 1786 + i % 8
    return f"/heatmap/13/{x * 2}/{y * 2}.png", dict(fresh)


def attack(base: str, attackers: int, stop: threading.Event, phase: Phase) -> None:
    """``attackers`` threads sending expensive anonymous requests until ``stop``."""
    counter = iter(range(10**9))
    lock = threading.Lock()

    def loop() -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            while not stop.is_set():
                with lock:
                    i = next(counter)
                path, params = _expensive(i)
                try:
                    status = client.get(path, params=params).status_code
                except httpx.HTTPError:
                    status = -1
                with lock:
                    phase.attackers[status] += 1

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(attackers)]
    for t in threads:
        t.start()
    stop.wait()
    for t in threads:
        t.join(timeout=150)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _demo_database(admin: str, incidents: int) -> Iterator[str]:
    name = f"geogrid_abuse_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + "/" + name
    try:
        migrate(url)
        print(f"loading the demo ({incidents} incidents) into {name} …", flush=True)
        load_demo(get_engine(url), incidents=incidents)
        get_engine(url).dispose()
        yield url
    finally:
        get_engine(url).dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def _server(db: str, workers: int = 1, redis: str | None = None) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "GEOGRID_DATABASE_URL": db, "GEOGRID_CITY_FILE": str(DEMO_CITY_FILE)}
    if redis:  # the workers share the rate limits, as deployed
        env["GEOGRID_REDIS_URL"] = redis
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "geogrid.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def run(base: str, seconds: float, rate: float, attackers: int) -> list[Phase]:
    """The two phases against the server at ``base``."""
    for lon, lat in _POINTS:  # warm the locator
        httpx.get(f"{base}/locate", params={"lon": lon, "lat": lat}, timeout=60)
    quiet = Phase("quiet")
    probe(base, rate, seconds, quiet)
    print(quiet.line(), flush=True)
    loud = Phase("attack")
    stop = threading.Event()
    attacker = threading.Thread(target=attack, args=(base, attackers, stop, loud))
    attacker.start()
    time.sleep(2.0)  # the burst is under way
    probe(base, rate, seconds, loud)
    stop.set()
    attacker.join()
    print(loud.line(), flush=True)
    return [quiet, loud]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="a running server (default: serve the demo)")
    ap.add_argument("--db", default=os.environ.get("GEOGRID_DATABASE_URL"))
    ap.add_argument("--admin", help="superuser URL: load the demo into a new database")
    ap.add_argument("--incidents", type=int, default=60_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=20.0, help="probe requests per second")
    ap.add_argument("--attackers", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1, help="server workers")
    ap.add_argument("--redis", default=os.environ.get("GEOGRID_REDIS_URL"), help="rate limits")
    a = ap.parse_args(argv)
    if a.url:
        run(a.url, a.seconds, a.rate, a.attackers)
        return
    if a.admin:
        with (
            _demo_database(a.admin, a.incidents) as db,
            _server(db, a.workers, a.redis) as base,
        ):
            run(base, a.seconds, a.rate, a.attackers)
        return
    if not a.db:
        raise SystemExit("give --url, --db (holding the demo) or --admin")
    with _server(a.db, a.workers, a.redis) as base:
        run(base, a.seconds, a.rate, a.attackers)


if __name__ == "__main__":
    main()
