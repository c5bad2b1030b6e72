"""Abuse: ``python -m bench.abuse [--url URL | --db URL | --admin URL] [--seconds 20]``.

Can one anonymous caller starve the service? The bench measures ``GET /locate`` (an
open-loop probe at ``--rate`` requests per second: each request is due at a fixed time
and its latency counts from then, so a stalled server shows as latency) twice:

1. **quiet** — the probe alone;
2. **attack** — the probe while ``--attackers`` threads (in a process of their own, so that
   they do not hold the probe's GIL) send expensive anonymous requests
   back to back, each with a fresh window (``/hotspots?permutations=999``, ``/metrics/grid``
   and heat-map tiles with a new ``from``) — the burst of issue 10, item 2.

The windows fall in the demo's year of incidents (it ends today), so the hot spots run
their 999 permutations. Printed: the probe's p50 / p99 / max (ms) and errors in each
phase, the attackers' answers by status (429: rate-limited, 503: the expensive gate was
full, 200: served), the load average, and — when the bench serves — the CPU seconds each
part used in the phase: the serving processes, the offload workers (niced), the
database's backends and the bench itself.

``--compare`` (issue 10) serves twice in one run: *before* — the settings of the old
design (``GEOGRID_EXPENSIVE_PROCESSES=0``: expensive work in the serving process;
``GEOGRID_EXPENSIVE_GATE=process`` with one slot per process; no anonymous statement
budget) — then *after*, the defaults. The rate limits' and the gate's keys in ``--redis``
are emptied before each server starts.

Without ``--url`` the bench serves the demo with ``geogrid serve`` (a subprocess) on
``--db`` (default ``GEOGRID_DATABASE_URL``; it must hold the demo: ``geogrid demo load``)
or, with ``--admin URL`` (a PostgreSQL superuser URL), on a new database holding the demo
with ``--incidents`` incidents, dropped at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing
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
from typing import Any

import httpx
import numpy as np
import psycopg
import redis

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
    #: CPU seconds per part in the phase (when the bench serves), load average at its end
    cpu: dict[str, float] = field(default_factory=dict)
    load: float = float("nan")

    def line(self) -> str:
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.asarray([np.nan])
        p50, p99 = np.percentile(lat, [50, 99])
        attack = ", ".join(f"{k}: {v}" for k, v in sorted(self.attackers.items())) or "-"
        cpu = "  ".join(f"{k} {v:.1f}" for k, v in self.cpu.items())
        return (
            f"{self.name:<14} /locate n={len(self.latencies_ms):>5}  p50 {p50:7.1f} ms  "
            f"p99 {p99:7.1f} ms  max {lat.max():7.1f} ms  errors {dict(self.errors) or 0}  "
            f"| attackers {attack} | load {self.load:.2f}" + (f" | CPU s: {cpu}" if cpu else "")
        )


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu(server_pid: int | None, database: str | None) -> dict[tuple[str, int], float]:
    """CPU seconds used so far per process: the server's (``server``: serving ones;
    ``offload``: niced ones, the offload workers), the database's backends and this
    bench's, keyed by (part, pid)."""
    out: dict[tuple[str, int], float] = {}
    if server_pid is None:
        return out
    procs: dict[int, tuple[int, float, int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        ppid, ticks, nice = int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[16])
        procs[int(entry)] = (ppid, ticks / _TICK, nice, cmd)

    def under(pid: int) -> bool:
        while pid > 1:
            if pid == server_pid:
                return True
            pid = procs[pid][0] if pid in procs else 1
        return False

    me = os.getpid()
    for pid, (ppid, seconds, nice, cmd) in procs.items():
        if under(pid):
            out[("offload" if nice > 0 else "server", pid)] = seconds
        elif ppid == me:  # the attackers' process
            out[("attackers", pid)] = seconds
        elif database and cmd.startswith("postgres:") and f" {database} " in cmd:
            out[("postgres", pid)] = seconds
    times = os.times()
    out[("bench", os.getpid())] = times.user + times.system
    return out


def _delta(a: dict[tuple[str, int], float], b: dict[tuple[str, int], float]) -> dict[str, float]:
    """CPU seconds per part between two looks (a process that ended meanwhile is lost)."""
    if not b:
        return {}
    parts = {"server": 0.0, "offload": 0.0, "postgres": 0.0, "bench": 0.0, "attackers": 0.0}
    for key, seconds in b.items():
        parts[key[0]] += seconds - a.get(key, 0.0)
    return parts


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
    """The i-th expensive request, each with a window never asked before, in the demo's
    year of incidents (the year up to today)."""
    start = date.today() - timedelta(days=340) + timedelta(days=i % 300)
    end = start + timedelta(days=30 + i % 7)
    fresh = {"from": f"{start}T{i % 24:02d}:{i % 60:02d}:00", "to": str(end)}
    kind = i % 3
    if kind == 0:
        return "/hotspots", {"level": "grid", "permutations": 999, **fresh}
    if kind == 1:
        return "/metrics/grid", dict(fresh)
    x, y = 3299 + i % 8, 1786 + i % 8
    return f"/heatmap/13/{x * 2}/{y * 2}.png", dict(fresh)


def _attack_process(base: str, attackers: int, stop: Any, out: Any, ready: Any) -> None:
    """:func:`attack` in a process of its own; its answers by status put on ``out``."""
    phase = Phase("attack")
    ready.set()
    attack(base, attackers, stop, phase)
    out.put(dict(phase.attackers))


def attack(base: str, attackers: int, stop: Any, phase: Phase) -> None:
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


#: the settings of the design before issue 10 (ABUSE), for ``--compare``
BEFORE = {
    "GEOGRID_EXPENSIVE_PROCESSES": "0",
    "GEOGRID_EXPENSIVE_GATE": "process",
    "GEOGRID_EXPENSIVE_CONCURRENCY": "1",
    "GEOGRID_EXPENSIVE_CONCURRENCY_ANONYMOUS": "1",
    "GEOGRID_STATEMENT_TIMEOUTS_ANONYMOUS": "{}",
}


def _reset_redis(url: str) -> None:
    """Empty the rate limits' and the gate's keys (``geogrid-*``) of the bench's database."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match="geogrid-*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@dataclass
class Served:
    """A server the bench started: its address and process id."""

    base: str
    pid: int | None = None
    database: str | None = None


@contextmanager
def _server(
    db: str, workers: int = 1, redis_url: str | None = None, extra: dict[str, str] | None = None
) -> Iterator[Served]:
    port = _free_port()
    env = {**os.environ, "GEOGRID_DATABASE_URL": db, "GEOGRID_CITY_FILE": str(DEMO_CITY_FILE)}
    env.update(extra or {})
    if redis_url:  # the workers share the rate limits, as deployed
        env["GEOGRID_REDIS_URL"] = redis_url
        _reset_redis(redis_url)
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
        yield Served(base, proc.pid, db.rsplit("/", 1)[-1].split("?")[0])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def run(
    server: Served, seconds: float, rate: float, attackers: int, label: str = ""
) -> list[Phase]:
    """The two phases against ``server``."""
    base = server.base
    for lon, lat in _POINTS:  # warm the locator
        httpx.get(f"{base}/locate", params={"lon": lon, "lat": lat}, timeout=60)
    _settle(server)
    prefix = f"{label} " if label else ""
    quiet = Phase(prefix + "quiet")
    before = _cpu(server.pid, server.database)
    probe(base, rate, seconds, quiet)
    quiet.cpu = _delta(before, _cpu(server.pid, server.database))
    quiet.load = os.getloadavg()[0]
    print(quiet.line(), flush=True)
    loud = Phase(prefix + "attack")
    # the attackers in a process of their own: their threads would otherwise hold the
    # probe's GIL, and the probe would measure the bench as well as the server
    mp = multiprocessing.get_context("spawn")
    stop, answers, ready = mp.Event(), mp.Queue(), mp.Event()
    attacker = mp.Process(target=_attack_process, args=(base, attackers, stop, answers, ready))
    attacker.start()
    ready.wait(300)  # its imports take a while on a busy machine
    time.sleep(2.0)  # the burst is under way
    before = _cpu(server.pid, server.database)
    probe(base, rate, seconds, loud)
    loud.cpu = _delta(before, _cpu(server.pid, server.database))
    loud.load = os.getloadavg()[0]
    stop.set()
    loud.attackers.update(answers.get(timeout=300))
    attacker.join(timeout=30)
    print(loud.line(), flush=True)
    return [quiet, loud]


def _settle(server: Served, most: float = 120.0) -> None:
    """Wait (at most ``most`` s) until the server's processes are idle: the offload workers
    import the analytics when the app starts, which is not the quiet phase's load."""
    if server.pid is None:
        return
    deadline = time.monotonic() + most
    last = _cpu(server.pid, None)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = _cpu(server.pid, None)
        used = _delta(last, now)
        last = now
        if used["server"] + used["offload"] < 0.1:
            return


def _serve_and_run(db: str, a: argparse.Namespace) -> None:
    configs = [("before", BEFORE), ("after", {})] if a.compare else [("", {})]
    for label, extra in configs:
        with _server(db, a.workers, a.redis, extra) as served:
            run(served, a.seconds, a.rate, a.attackers, label)


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
    ap.add_argument(
        "--compare", action="store_true", help="serve the old design's settings, then the new"
    )
    a = ap.parse_args(argv)
    if a.url:
        run(Served(a.url), a.seconds, a.rate, a.attackers)
        return
    if a.admin:
        with _demo_database(a.admin, a.incidents) as db:
            _serve_and_run(db, a)
        return
    if not a.db:
        raise SystemExit("give --url, --db (holding the demo) or --admin")
    _serve_and_run(a.db, a)


if __name__ == "__main__":
    main()
