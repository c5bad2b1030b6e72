"""Tile serving benchmark: ``python -m bench.tiles [--db URL] [--redis URL] [--seconds S]``.

Starts ``geogrid serve`` (a subprocess, rate limits off — a load generator is one IP and
the anonymous cheap-request limit is 200/s — and the tile cache's shared level in Redis,
``--redis``, a database number of its own whose keys are dropped first) on the configured
database (``GEOGRID_DATABASE_URL`` or ``--db``), first with one worker and then with
``--workers`` (default 2), and measures over HTTP:

* **cold vs plain**: grid-layer vector tiles at z10 / z12 / z14 around the densest
  district. For every tile, in random order (so the machine's load hits all alike): our
  server's first request of the tile over HTTP (a unique ``from`` makes every run's keys
  cold; the window's metrics frame is built once beforehand and reported separately); the
  same tile as pg_tileserv would make it — one bare ``ST_AsMVT`` statement, no metrics, no
  cache (:func:`geogrid.store.tiles.plain_unit_tile`) — over HTTP from a bare server on
  the same uvicorn (:mod:`bench._bare_tiles`: "measured the same way"); and that statement
  run by this process over a pooled connection in autocommit (no HTTP). Median and p95 ms,
  and the ratios of the medians: cold / bare over HTTP (the target, ≤ 1.5×), our SQL with
  its metrics arrays / the bare SQL (DB only), and cold over HTTP / bare in process. Eight
  tiles of each zoom east of those are drawn first by every path, untimed: "cold" is a
  tile in no cache, not a connection's first statements (plans, PostGIS's caches);
* **overhead**: ``GET /health``, a cached tile (200, and 304 with ``If-None-Match``) and
  the bare server's 404 (the HTTP floor), sequential on one keep-alive connection each;
* **cached throughput**: requests/s of cached z12 + z14 grid tiles with ``wrk`` (C, if
  installed; else an httpx asyncio generator, which needs a core of its own), with one and
  with ``--workers`` server processes sharing Redis;
* **under writes**: the same while a thread reports incidents at ``--writes`` per second
  (default 40; one transaction each: the row and its ``map_change`` row, which NOTIFY
  every worker) at random published grids; the ratio to the read-only figure.

The reports are deleted at the end. The numbers of a loaded machine move together: read
the ratios of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import redis
from sqlalchemy import Engine, text

from geogrid.core.tiles import tile_range
from geogrid.services.mapservice import MapService
from geogrid.services.tilecache import TileCache
from geogrid.settings import get_settings
from geogrid.store import get_engine
from geogrid.store.changes import record_incident_change
from geogrid.store.engine import autocommit
from geogrid.store.tiles import plain_unit_tile, unit_tile

CENTRE = (110.16, 22.64)  # Yuzhou district, where grids are densest
ZOOM_SPAN = {10: 2, 12: 3, 14: 4}  # tiles in each direction around the centre
SOURCE = "bench-tiles-"  # source_id prefix of the reports written (deleted at the end)

Row = tuple[str, str, str, str]


def _tiles(z: int, span: int) -> list[tuple[int, int, int]]:
    x, y = tile_range((*CENTRE, *CENTRE), z)[:2]
    return [(z, x + dx, y + dy) for dx in range(-span, span + 1) for dy in range(-span, span + 1)]


def _stats(ms: list[float]) -> tuple[float, float]:
    a = np.asarray(ms)
    return float(np.median(a)), float(np.percentile(a, 95))


def _fmt(ms: list[float], digits: int = 1) -> tuple[str, str]:
    med, p95 = _stats(ms)
    return f"{med:.{digits}f}", f"{p95:.{digits}f}"


def _port_and_env(db: str | None) -> tuple[int, dict[str, str]]:
    """A free local port, and this process's environment with ``db`` as the database."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ)
    if db:
        env["GEOGRID_DATABASE_URL"] = db
    return port, env


def _start_server(
    db: str | None, redis_url: str, workers: int, access_log: bool
) -> tuple[subprocess.Popen, str]:
    port, env = _port_and_env(db)
    env["GEOGRID_REDIS_URL"] = redis_url
    env["GEOGRID_RATE_LIMITS"] = "false"
    log = open(Path(tempfile.gettempdir()) / f"bench-tiles-server-{port}.log", "wb")  # noqa: SIM115
    exe = shutil.which("geogrid") or str(Path(sys.executable).with_name("geogrid"))
    proc = subprocess.Popen(
        [exe, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        + ([] if access_log else ["--no-access-log"]),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # a loaded machine takes its time to import
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code < 500:
                _quiet(proc.pid, deadline)
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise SystemExit(f"the server did not start (rc {proc.poll()}); see {log.name}")


def _quiet(pid: int, deadline: float) -> None:
    """Wait until the server's processes are idle (under a tenth of a core for a second):
    every worker started, the offload pool's processes done importing (seconds of CPU on
    a busy machine, which would be counted to the first measurement)."""
    last = _tree_cpu(pid)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = _tree_cpu(pid)
        if now - last < 0.1:
            return
        last = now


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _get_ms(client: httpx.Client, path: str, headers: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    r = client.get(path, headers=headers)
    ms = (time.perf_counter() - t) * 1000
    if r.status_code not in (200, 304):
        r.raise_for_status()
    return ms


def _get_404_ms(client: httpx.Client) -> float:
    t = time.perf_counter()
    client.get("/nothing")
    return (time.perf_counter() - t) * 1000


def _plain_ms(engine: Engine, z: int, x: int, y: int) -> float:
    t = time.perf_counter()
    with autocommit(engine) as conn:  # out of the pool per tile, one round trip (pg_tileserv)
        plain_unit_tile(conn, "grid", "grids", z, x, y)
    return (time.perf_counter() - t) * 1000


def _start_bare(db: str | None) -> tuple[subprocess.Popen, httpx.Client]:
    """The bare tile server (:mod:`bench._bare_tiles`) on a free port, one uvicorn worker."""
    port, env = _port_and_env(db)
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench._bare_tiles:app", "--app-dir", str(root)]
        + ["--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"],
        env=env,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            client.get("/grids/0/0/0.mvt").raise_for_status()  # its first connection too
            return proc, client
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit(f"the bare tile server did not start (rc {proc.poll()})")


def _cold_vs_plain(
    client: httpx.Client, bare: httpx.Client, engine: Engine, q: str, rows: list[Row]
) -> list[str]:
    """Per tile, in random order (so the machine's load hits all alike): our cold tile over
    HTTP, the bare server's tile over HTTP, bare ST_AsMVT in this process; then our SQL."""
    cached: list[str] = []
    svc = MapService(engine, get_settings(), cache=TileCache())
    win = svc.window()
    svc.unit_metrics("grid", win)  # not timed
    for z, span in ZOOM_SPAN.items():  # warm-up, not timed: each path's connections
        for tz, tx, ty in _tiles(z, span)[:8]:  # (plans, PostGIS's per-backend caches)
            tx += 2 * span + 1  # tiles east of the measured ones (cold ones stay cold)
            client.get(f"/tiles/grids/{tz}/{tx}/{ty}.mvt{q}").raise_for_status()
            bare.get(f"/grids/{tz}/{tx}/{ty}.mvt").raise_for_status()
            _plain_ms(engine, tz, tx, ty)
            with autocommit(engine) as conn:
                unit_tile(
                    conn,
                    "grid",
                    "grids",
                    tz,
                    tx,
                    ty,
                    metrics=svc.tile_metrics("grid", win, tz, tx, ty),
                )
    for z, span in ZOOM_SPAN.items():
        tiles = _tiles(z, span)
        cold: list[float] = []
        http: list[float] = []
        plain: list[float] = []
        ours: list[float] = []
        for tz, tx, ty in tiles:
            path = f"/tiles/grids/{tz}/{tx}/{ty}.mvt{q}"
            for which in random.sample(range(3), 3):
                if which == 0:
                    cold.append(_get_ms(client, path))
                elif which == 1:
                    http.append(_get_ms(bare, f"/grids/{tz}/{tx}/{ty}.mvt"))
                else:
                    plain.append(_plain_ms(engine, tz, tx, ty))
            m = svc.tile_metrics("grid", win, tz, tx, ty)
            t = time.perf_counter()
            with autocommit(engine) as conn:
                unit_tile(conn, "grid", "grids", tz, tx, ty, metrics=m)
            ours.append((time.perf_counter() - t) * 1000)
            cached.append(path)
        size = np.mean([len(client.get(p).content) for p in cached[-len(tiles) :][:5]])
        rows.append(
            (f"grids z{z} HTTP cold ({len(tiles)} tiles, ~{size / 1024:.0f} KB)", *_fmt(cold), "")
        )
        rows.append((f"grids z{z} bare ST_AsMVT server, HTTP (same uvicorn)", *_fmt(http), ""))
        rows.append(
            (f"grids z{z} cold / bare, both over HTTP", f"{_ratio(cold, http):.2f}×", "", "")
        )
        rows.append((f"grids z{z} bare ST_AsMVT in process (no HTTP)", *_fmt(plain), ""))
        rows.append((f"grids z{z} our SQL + metrics arrays (DB only)", *_fmt(ours), ""))
        rows.append((f"grids z{z} our SQL / bare SQL", f"{_ratio(ours, plain):.2f}×", "", ""))
        rows.append(
            (f"grids z{z} HTTP cold / bare in process", f"{_ratio(cold, plain):.2f}×", "", "")
        )
    svc.close()
    return cached


def _ratio(a: list[float], b: list[float]) -> float:
    """The ratio of the medians."""
    return _stats(a)[0] / _stats(b)[0]


def _overhead(
    client: httpx.Client, path: str, rows: list[Row], bare: httpx.Client, n: int = 200
) -> None:
    tag = client.get(path).headers["etag"]
    hl, ok, nm, bh = [], [], [], []
    for _ in range(n):  # interleaved
        hl.append(_get_ms(client, "/health"))
        ok.append(_get_ms(client, path))
        nm.append(_get_ms(client, path, {"If-None-Match": tag}))
        bh.append(_get_404_ms(bare))
    rows.append(("GET /health (one keep-alive connection)", *_fmt(hl, 2), ""))
    rows.append(("bare server's 404 (the HTTP floor: uvicorn + httpx)", *_fmt(bh, 2), ""))
    rows.append(("cached tile 200 (same connection)", *_fmt(ok, 2), ""))
    rows.append(("cached tile 304 If-None-Match (same connection)", *_fmt(nm, 2), ""))


async def _httpx_rps(base: str, paths: list[str], clients: int, seconds: float) -> float:
    done = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker(i: int) -> None:
            nonlocal done
            k = i
            while time.perf_counter() < stop:
                r = await client.get(paths[k % len(paths)])
                r.raise_for_status()
                done += 1
                k += clients

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        return done / (time.perf_counter() - t0)


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and its descendants
    (the server: uvicorn's supervisor, its workers, their process pools), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        stats[int(d)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    tree, total, grew = {pid}, 0.0, True
    while grew:
        grew = False
        for p, (ppid, _) in stats.items():
            if ppid in tree and p not in tree:
                tree.add(p)
                grew = True
    for p in tree:
        total += stats.get(p, (0, 0.0))[1]
    return total


def _backends_cpu(engine: Engine) -> dict[int, float]:
    """CPU seconds so far of every PostgreSQL backend of the bench's database (the
    server's pooled connections, the writer's), by pid, from /proc (a local server)."""
    with engine.connect() as conn:
        pids = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).scalars()
        tick = os.sysconf("SC_CLK_TCK")
        out: dict[int, float] = {}
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rpartition(")")[2].split()
            except OSError:
                continue
            out[int(pid)] = (int(fields[11]) + int(fields[12])) / tick
        return out


def _rps(
    base: str,
    paths: list[str],
    clients: int,
    seconds: float,
    server: int | None = None,
    engine: Engine | None = None,
) -> tuple[float, str]:
    """Requests/s of cached tiles cycling over ``paths``: ``wrk`` when installed (one
    thread: the machine has few cores), else httpx. Non-2xx answers fail the bench.
    With ``server`` (the server's pid), also prints the CPU per request of the server,
    of the database's backends (``engine``: renders, change polls, the writer's reports)
    and of the load generator."""
    cpu0 = _tree_cpu(server) if server else 0.0
    db0 = _backends_cpu(engine) if engine is not None else {}
    gen0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    self0 = time.process_time()
    rps, tool = _rps_run(base, paths, clients, seconds)
    if server:
        cpu = _tree_cpu(server) - cpu0
        db1 = _backends_cpu(engine) if engine is not None else {}
        db = sum(v - db0.get(k, 0.0) for k, v in db1.items())
        gen1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        gen = (gen1.ru_utime + gen1.ru_stime - gen0.ru_utime - gen0.ru_stime) + (
            time.process_time() - self0 if tool == "httpx" else 0.0
        )
        n = rps * max(int(seconds), 1) if tool == "wrk" else rps * seconds
        print(
            f"    [{tool}: {rps:.0f} req/s; CPU per request: server {cpu / n * 1e6:.0f} µs "
            f"({cpu / seconds:.2f} cores), database {db / n * 1e6:.0f} µs "
            f"({db / seconds:.2f} cores), load generator {gen / n * 1e6:.0f} µs; "
            f"load {os.getloadavg()[0]:.1f}]",
            flush=True,
        )
    return rps, tool


def _rps_run(base: str, paths: list[str], clients: int, seconds: float) -> tuple[float, str]:
    if shutil.which("wrk") is None:
        return asyncio.run(_httpx_rps(base, paths, clients, seconds)), "httpx"
    lua = (
        "local paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n"
        "local i = 0\nrequest = function()\n  i = i % #paths + 1\n"
        "  return wrk.format('GET', paths[i])\nend\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{max(int(seconds), 1)}s", "-s", f.name, base],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    Path(f.name).unlink(missing_ok=True)
    if "Non-2xx" in out.stdout:
        raise SystemExit(f"wrk saw errors:\n{out.stdout}")
    m = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if not m:
        raise SystemExit(f"wrk failed:\n{out.stdout}\n{out.stderr}")
    return float(m.group(1)), "wrk"


class Writer(threading.Thread):
    """Reports incidents at ``rate`` per second at random published grids: one
    transaction each, the row (attributed to the published version, as the service's
    reports are: an unattributed row makes the map rebuild its metrics frames in full)
    and its ``map_change`` row (the triggers NOTIFY)."""

    def __init__(self, engine: Engine, rate: float) -> None:
        super().__init__(daemon=True)
        self.engine, self.rate = engine, rate
        self.stop = threading.Event()
        self.written = 0
        self.late = 0
        with engine.connect() as conn:
            self.grids = conn.execute(
                text(
                    "SELECT u.code, u.parent_code, ST_X(ST_PointOnSurface(u.geom)), "
                    "ST_Y(ST_PointOnSurface(u.geom)), v.id FROM unit u JOIN boundary_version v ON "
                    "v.id = u.version_id WHERE v.status = 'published' AND u.level = 'grid'"
                )
            ).all()
        self.rng = random.Random(12)

    def run(self) -> None:
        t0 = time.perf_counter()
        while not self.stop.is_set():
            g = self.grids[self.rng.randrange(len(self.grids))]
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO incident (source_id, category, reported_at, updated_at, "
                        "status, due_at, version_id, grid_code, community_code, street_code, "
                        "district_code, geom) VALUES (:sid, 'sanitation', now(), now(), "
                        "'reported', now() + interval '1 day', :v, :g, :c, left(:c, 9), "
                        "left(:c, 6), ST_SetSRID(ST_MakePoint(:x, :y), 4326))"
                    ),
                    {
                        "sid": f"{SOURCE}{time.time_ns()}",
                        "g": g[0],
                        "c": g[1],
                        "x": g[2],
                        "y": g[3],
                        "v": g[4],
                    },
                )
                record_incident_change(conn, [g[2]], [g[3]], "create")
            self.written += 1
            wait = t0 + self.written / self.rate - time.perf_counter()
            if wait > 0:
                self.stop.wait(wait)
            else:
                self.late += 1

    def achieved(self, seconds: float) -> float:
        return self.written / seconds


def _throughput(
    base: str,
    engine: Engine,
    paths: list[str],
    args: argparse.Namespace,
    label: str,
    server: int | None = None,
) -> list[Row]:
    rows: list[Row] = []
    with httpx.Client(base_url=base, timeout=120) as c:  # every worker's memory warmed
        for _ in range(3):
            for p in paths:
                c.get(p).raise_for_status()
    ro, tool = _rps(base, paths, args.clients, args.seconds, server, engine)
    rows.append(
        (
            f"cached z12+z14 tiles, {label}, read-only ({tool}, {args.clients} conn)",
            "",
            "",
            f"{ro:.0f}",
        )
    )
    w = Writer(engine, args.writes)
    t0 = time.perf_counter()
    w.start()
    time.sleep(2.0)  # writes under way
    rw, tool = _rps(base, paths, args.clients, args.seconds, server, engine)
    w.stop.set()
    w.join(10)
    took = time.perf_counter() - t0
    rows.append(
        (
            f"  same with reports at {w.achieved(took):.0f}/s ({w.written} written)",
            "",
            "",
            f"{rw:.0f}",
        )
    )
    rows.append((f"  read-only / under writes ({label})", f"{ro / rw:.2f}×", "", ""))
    return rows


def _print(rows: list[Row]) -> None:
    w = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{w}}  {'median ms':>9}  {'p95 ms':>8}  {'req/s':>7}")
    print("-" * (w + 32))
    for name, med, p95, rps in rows:
        print(f"{name:<{w}}  {med:>9}  {p95:>8}  {rps:>7}", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", help="database URL (default: GEOGRID_DATABASE_URL)")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/7", help="the shared cache")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--writes", type=float, default=40.0, help="reports per second")
    ap.add_argument(
        "--access-log", action="store_true", help="serve with uvicorn's access log (default off)"
    )
    args = ap.parse_args(argv)

    engine = get_engine(args.db)
    redis.Redis.from_url(args.redis).flushdb()
    rows: list[Row] = []
    stamp = (
        f"2026-10-28T{random.randrange(24):02d}:{random.randrange(60):02d}:"
        f"{random.randrange(60):02d}Z"
    )
    q = f"?from={stamp}"
    proc, base = _start_server(args.db, args.redis, 1, args.access_log)
    try:
        client = httpx.Client(base_url=base, timeout=120)
        t = time.perf_counter()
        client.get(f"/tiles/grids/8/206/111.mvt{q}").raise_for_status()  # metrics of window
        ms = (time.perf_counter() - t) * 1000
        rows.append(("grid metrics frame for the window (once)", "", f"{ms:.0f}", ""))
        bare_proc, bare = _start_bare(args.db)
        try:
            cached = _cold_vs_plain(client, bare, engine, q, rows)
            load_paths = [p for p in cached if "/12/" in p or "/14/" in p]
            _overhead(client, load_paths[0], rows, bare)
        finally:
            bare.close()
            _stop(bare_proc)
        client.close()
        rows += _throughput(base, engine, load_paths, args, "1 worker", proc.pid)
    finally:
        _stop(proc)
    _print(rows)  # the first server's figures, in case the second fails
    print(flush=True)
    proc, base = _start_server(args.db, args.redis, args.workers, args.access_log)
    try:
        rows += _throughput(
            base, engine, load_paths, args, f"{args.workers} workers + Redis", proc.pid
        )
    finally:
        _stop(proc)
        with engine.begin() as conn:
            n = conn.execute(
                text("DELETE FROM incident WHERE source_id LIKE :p"), {"p": SOURCE + "%"}
            ).rowcount
        rows.append((f"(reports written by the bench, deleted: {n})", "", "", ""))
    _print(rows)
    load = os.getloadavg()
    print(
        f"\n{os.cpu_count()} CPUs, load average {load[0]:.1f} (shared machine); tiles around "
        f"{CENTRE}; window from {stamp}; server: geogrid serve, rate limits off, "
        f"access log {'on' if args.access_log else 'off'}, Redis {args.redis}"
    )


if __name__ == "__main__":
    main()
