"""Report load: ``python -m bench.report_load [--url URL | --db URL] [--rate 200] [--seconds 60]``.

An **open-loop** generator: request *i* is due at ``t0 + i / rate`` whatever happened to
the earlier ones, and its latency is measured from that due time (so a stalled server
shows up as latency instead of silently lowering the offered rate — no coordinated
omission). Requests go over plain HTTP/1.1 keep-alive connections (asyncio streams: a few
tens of microseconds of client CPU per request, so the generator does not compete with
the server on a small machine); a new connection is opened whenever every open one is
busy.

Each request is a ``POST /incidents`` (the bearer tokens of ``--accounts`` admins in
turn) at a WGS84 point inside the demo city (Gaussian around the demo's grid seats, kept
inside the city outline), with
an ``Idempotency-Key`` header (``--no-keys`` to leave it out). Printed: offered and
achieved rate, p50 / p90 / p99 / max latency (ms) and errors (non-2xx answers, timeouts,
broken connections).

Without ``--url`` the bench starts ``geogrid serve --workers N --no-access-log`` (a
subprocess, default two workers; ``--redis URL``: the rate limits shared in Redis, as
deployed) on ``--db`` (default ``GEOGRID_DATABASE_URL``), which must hold the demo
(``geogrid demo load``), and stops it at the end. ``--checkout NAME=DIR`` (repeated)
serves each source tree in turn on the same database in one run — e.g. the code before
a change (``git archive <rev> | tar -x -C DIR``) and after — and prints the ratio.

Also printed: the CPU each acknowledged report cost the server (its processes) and the
database (the backends connected to ``--db``), from ``/proc``, and the generator's own CPU
(seconds, and its share of the machine: the machine is small, the generator competes
with the server); the 1-minute load average before and after (others' work shows there).

    python -m bench.report_load --db postgresql://…/demo --rate 200 --seconds 60 \
        --redis redis://127.0.0.1:6379/5 --checkout before=/tmp/before --checkout after=.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np
import psycopg
import shapely

from bench._data import clustered_points, yulin_outline
from geogrid.services.accounts import add_user
from geogrid.services.demo import DEMO_CITY_FILE
from geogrid.store import get_engine
from geogrid.store.engine import database_url, raw_dsn

__all__ = ["LoadResult", "run_load", "report_points", "main"]

#: categories of the demo's catalogue the reports use
_CATEGORIES = ("sanitation", "road_occupation", "facility_damage", "greening", "noise")


@dataclass
class LoadResult:
    """What one run measured (latencies in ms from each request's due time)."""

    offered: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    #: when each answered request was due, seconds from the run's start (same order)
    due_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    #: CPU seconds the generator (this process) used during the run
    generator_cpu_s: float = 0.0

    @property
    def ok(self) -> int:
        """Answers with a 2xx status."""
        return len(self.latencies_ms)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0–100) of the latencies (ms); NaN when none."""
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def timeline(self, step: float = 10.0) -> list[tuple[int, float, float]]:
        """``(start s, p50, p99)`` of the requests due in each ``step`` seconds of the run:
        where in the run a tail comes from (a stall, a burst of cache refreshes)."""
        if not self.latencies_ms:
            return []
        due, lat = np.asarray(self.due_s), np.asarray(self.latencies_ms)
        out = []
        for lo in np.arange(0.0, max(self.seconds, float(due.max()) + 1e-9), step):
            sel = lat[(due >= lo) & (due < lo + step)]
            if sel.size:
                out.append((int(lo), round(float(np.percentile(sel, 50)), 1),
                            round(float(np.percentile(sel, 99)), 1)))  # fmt: skip
        return out

    def summary(self) -> dict[str, float | int | dict[str, int] | list[str]]:
        """Offered/achieved rates, p50/p90/p99/max (ms) and error counts."""
        return {
            "offered": self.offered,
            "ok": self.ok,
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
            "achieved_per_s": round(self.ok / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(self.percentile(50), 1),
            "p90_ms": round(self.percentile(90), 1),
            "p99_ms": round(self.percentile(99), 1),
            "max_ms": round(max(self.latencies_ms), 1) if self.latencies_ms else float("nan"),
            "p50_p99_per_10s": [f"{t}s {a}/{b}" for t, a, b in self.timeline()],
            "generator_cpu_s": round(self.generator_cpu_s, 2),
            # the generator's share of the machine's CPU time during the run
            "generator_cpu_share": round(
                self.generator_cpu_s / (self.seconds * (os.cpu_count() or 1)), 3
            ),
        }


def report_points(n: int, seed: int = 7) -> np.ndarray:
    """``n`` WGS84 (lon, lat) points inside the demo city's outline, shape (n, 2)."""
    outline = yulin_outline()
    shapely.prepare(outline)
    out = np.empty((0, 2))
    k = 0
    while len(out) < n:
        lon, lat = clustered_points(2 * n + 64, seed=seed + k)
        inside = shapely.contains_xy(outline, lon, lat)
        out = np.vstack([out, np.column_stack([lon[inside], lat[inside]])])
        k += 1
    return out[:n]


class _Pool:
    """Idle HTTP/1.1 keep-alive connections to one host, most recently used first."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def get(
        self, fresh: bool = False
    ) -> tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter], bool]:
        """A connection (a new one when ``fresh``), and whether it was reused (it may have
        been closed meanwhile)."""
        if self.idle and not fresh:
            return self.idle.pop(), True
        return await asyncio.open_connection(self.host, self.port), False

    def put(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.idle.append(conn)

    def close(self) -> None:
        for _, w in self.idle:
            w.close()
        self.idle.clear()


async def _exchange(pool: _Pool, request: bytes, timeout: float) -> int:
    """Send one request and read its answer; returns the HTTP status.

    A kept-alive connection the server closed while it was idle (uvicorn closes them
    after 5 s) fails before any byte of an answer: the request is sent again once on a
    new connection, as HTTP clients do (the ``Idempotency-Key`` makes that safe).
    """
    for attempt in (0, 1):
        conn, reused = await pool.get(fresh=attempt > 0)
        reader, writer = conn
        try:
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            writer.close()
            stale = reused and (not isinstance(exc, asyncio.IncompleteReadError) or not exc.partial)
            if stale and attempt == 0:
                continue
            raise
        except BaseException:
            writer.close()
            raise
        break
    try:
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
        if length:
            await asyncio.wait_for(reader.readexactly(length), timeout)
    except BaseException:
        writer.close()
        raise
    if close:
        writer.close()
    else:
        pool.put(conn)
    return status


async def _run(
    url: str,
    tokens: list[str],
    rate: float,
    seconds: float,
    *,
    keys: bool,
    timeout: float,
    seed: int,
) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    n = int(rate * seconds)
    points = report_points(n, seed)
    run_id = uuid.uuid4().hex[:12]
    pool = _Pool(host, port)
    result = LoadResult(offered=n, seconds=seconds)

    def request(i: int) -> bytes:
        body = json.dumps(
            {
                "category": _CATEGORIES[i % len(_CATEGORIES)],
                "lon": round(float(points[i, 0]), 7),
                "lat": round(float(points[i, 1]), 7),
                "description": f"bench {run_id} #{i}",
            }
        ).encode()
        head = (
            f"POST /incidents HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {tokens[i % len(tokens)]}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
        )
        if keys:
            head += f"Idempotency-Key: bench-{run_id}-{i}\r\n"
        return (head + "\r\n").encode() + body

    # every request made before the clock starts: the generator's work during the run is
    # the socket I/O and the bookkeeping only
    requests = [request(i) for i in range(n)]

    async def one(i: int, due: float) -> None:
        try:
            status = await _exchange(pool, requests[i], timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            kind = type(exc).__name__
            result.errors[kind] = result.errors.get(kind, 0) + 1
            return
        if 200 <= status < 300:
            result.latencies_ms.append((time.perf_counter() - due) * 1000.0)
            result.due_s.append(due - t0)
        else:
            result.errors[str(status)] = result.errors.get(str(status), 0) + 1

    # one loop starts each request at its due time (not n sleeping tasks at once); a
    # request started late still counts its latency from its due time
    cpu0 = time.process_time()
    t0 = time.perf_counter() + 0.5
    tasks = set()
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    result.generator_cpu_s = time.process_time() - cpu0
    pool.close()
    return result


def run_load(
    url: str,
    tokens: str | list[str],
    *,
    rate: float = 200.0,
    seconds: float = 60.0,
    keys: bool = True,
    timeout: float = 30.0,
    seed: int = 7,
) -> LoadResult:
    """Post reports to ``url`` at ``rate`` per second for ``seconds`` (open loop), the
    bearer ``tokens`` taken in turn (many reporters, as in a city: the service's limits
    are per caller)."""
    many = [tokens] if isinstance(tokens, str) else list(tokens)
    return asyncio.run(_run(url, many, rate, seconds, keys=keys, timeout=timeout, seed=seed))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(
    db: str, workers: int, checkout: str | None = None, redis: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``geogrid serve`` on ``db`` (from the source tree ``checkout`` when given: another
    version of the code, e.g. the one before a change), rate limits in ``redis`` when
    given (shared by the workers, as deployed), access log off."""
    port = _free_port()
    env = {
        **os.environ,
        "GEOGRID_DATABASE_URL": db,
        "GEOGRID_CITY_FILE": str(DEMO_CITY_FILE),
    }
    if checkout:
        env["PYTHONPATH"] = checkout
        env["GEOGRID_CITY_FILE"] = os.path.join(checkout, "geogrid", "demo", "yulin.toml")
    if redis:
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
        cwd=checkout or None,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.25)
    else:  # pragma: no cover
        proc.kill()
        raise RuntimeError("the server did not start")
    time.sleep(2.0)  # every worker up
    return proc, base


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user + system) used so far by each of the processes ``pids`` (Linux
    /proc; the ones gone are left out)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def _used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two readings (a process new in ``after``: all of its)."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def _group(pgid: int) -> list[int]:
    """The processes of a process group (the server and its workers)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.getpgid(int(name)) == pgid:
                    out.append(int(name))
            except OSError:
                pass
    return out


def _backends(db: str) -> list[int]:
    """The PostgreSQL backends connected to ``db`` (their CPU is the database's share)."""
    with psycopg.connect(raw_dsn(db)) as c:
        rows = c.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(r[0]) for r in rows]


def main(argv: list[str] | None = None) -> None:
    """Command line: run the load (per version with ``--checkout``) and print the summaries
    as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="a running server (default: start one on --db)")
    ap.add_argument("--db", default=os.environ.get("GEOGRID_DATABASE_URL"), help="database URL")
    ap.add_argument("--token", help="an admin's bearer token (default: new admins on --db)")
    ap.add_argument(
        "--accounts", type=int, default=20, help="reporting accounts made on --db (their turn)"
    )
    ap.add_argument("--rate", type=float, default=200.0, help="reports per second")
    ap.add_argument("--seconds", type=float, default=60.0, help="duration of the load (s)")
    ap.add_argument("--workers", type=int, default=2, help="server workers when started here")
    ap.add_argument(
        "--warmup",
        type=float,
        default=10.0,
        help="seconds at the rate first (10 s: every token seen by every worker, as a "
        "fleet in service is)",
    )
    ap.add_argument("--no-keys", action="store_true", help="no Idempotency-Key headers")
    ap.add_argument(
        "--checkout",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="serve from this source tree (repeat: e.g. before=/tmp/old after=. — each "
        "version in turn on the same database, in one run)",
    )
    ap.add_argument(
        "--redis", default=os.environ.get("GEOGRID_REDIS_URL"), help="rate limits in Redis"
    )
    args = ap.parse_args(argv)
    if args.url is None and not args.db:
        ap.error("--url or --db (or GEOGRID_DATABASE_URL) is required")
    tokens = [args.token] if args.token else []
    if not tokens:
        if not args.db:
            ap.error("--token is required with --url and no --db")
        engine = get_engine(args.db)
        run = uuid.uuid4().hex[:6]
        tokens = [
            add_user(engine, f"bench {run} {k}", "admin")[1] for k in range(max(1, args.accounts))
        ]
    if args.db:
        # fresh statistics: a demo database on a cluster without autovacuum has none for
        # the accounts, and the assignee lookup then seq-scans them (30 ms a report)
        with psycopg.connect(raw_dsn(database_url(args.db)), autocommit=True) as c:
            c.execute("ANALYZE")
    versions = [tuple(c.split("=", 1)) for c in args.checkout] or [("current", "")]
    results = {}
    for name, tree in versions:
        summary = _one(args, tokens, tree or None)
        summary["version"] = name
        results[name] = summary
        print(json.dumps(summary, indent=1), flush=True)
    if len(results) > 1:
        (a, ra), (b, rb) = list(results.items())[:2]
        print(
            f"{b} vs {a}: achieved {rb['achieved_per_s']} vs {ra['achieved_per_s']}/s, "
            f"p99 {rb['p99_ms']} vs {ra['p99_ms']} ms, server CPU/report "
            f"{rb.get('server_cpu_ms_per_report')} vs {ra.get('server_cpu_ms_per_report')} ms"
        )


def _one(args: argparse.Namespace, tokens: list[str], tree: str | None) -> dict[str, object]:
    """One version: serve it (unless --url), warm up, load, and account the CPU used."""
    proc = None
    url = args.url
    if url is None:
        proc, url = _serve(args.db, args.workers, tree, args.redis)
    try:
        if args.warmup > 0:
            run_load(url, tokens, rate=args.rate, seconds=args.warmup, keys=not args.no_keys)
        server = _group(proc.pid) if proc is not None else []
        db = database_url(args.db) if args.db else None
        cpu0 = _cpu_seconds(server), _cpu_seconds(_backends(db) if db else [])
        load0 = os.getloadavg()[0]
        res = run_load(url, tokens, rate=args.rate, seconds=args.seconds, keys=not args.no_keys)
        cpu1 = _cpu_seconds(server), _cpu_seconds(_backends(db) if db else [])
    finally:
        if proc is not None:
            _stop(proc)
    summary: dict[str, object] = {"rate": args.rate, "seconds": args.seconds, **res.summary()}
    if res.ok:
        # CPU per acknowledged report: the server's processes and the database's backends
        # (a backend that ended during the run is missed: the pool is warm after warm-up)
        summary["server_cpu_ms_per_report"] = round(1000 * _used(cpu0[0], cpu1[0]) / res.ok, 2)
        summary["db_cpu_ms_per_report"] = round(1000 * _used(cpu0[1], cpu1[1]) / res.ok, 2)
    # the machine's load (1 min) before and at the end: other work on a small machine
    summary["load_average_1min"] = [round(load0, 1), round(os.getloadavg()[0], 1)]
    return summary


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and its workers: SIGTERM, then SIGKILL after 10 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
