"""Tile serving benchmark: ``python -m bench.tiles [--url http://host:port] [--db URL]``.

Without ``--url`` a uvicorn server (one worker, a subprocess) is started on the configured
database (``GEOGRID_DATABASE_URL`` or ``--db``) and stopped at the end. Measured over HTTP:

* grid-layer vector tiles at z10 / z12 / z14, cold (first request; the window's metrics are
  built beforehand and reported separately) and cached: median and p95 ms per tile;
* heat-map PNG tiles at z12, cold and cached;
* requests/s for cached tiles with ``--clients`` concurrent httpx clients (bounded by
  ``--requests`` and ``--seconds``);

and, for comparison, the same tiles straight from PostGIS as pg_tileserv serves them (one
``ST_AsMVT`` query per tile, no metrics, no cache: the database query alone), sequentially
and with the same number of concurrent connections; plus our own tile query with the
metrics arrays (DB time only). A unique ``from`` instant makes every run's keys cold.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import Engine

from geogrid.core.tiles import UNIT_METRIC_FIELDS, padded_tile_bounds_lonlat, tile_range
from geogrid.services.mapservice import MapService
from geogrid.services.tilecache import TileCache
from geogrid.settings import get_settings
from geogrid.store import get_engine
from geogrid.store.tiles import plain_unit_tile, unit_tile

CENTRE = (110.16, 22.64)  # Yuzhou district, where grids are densest
ZOOM_SPAN = {10: 2, 12: 3, 14: 4}  # tiles in each direction around the centre


def _tiles(z: int, span: int) -> list[tuple[int, int, int]]:
    x, y = tile_range((*CENTRE, *CENTRE), z)[:2]
    return [(z, x + dx, y + dy) for dx in range(-span, span + 1) for dy in range(-span, span + 1)]


def _stats(ms: list[float]) -> tuple[float, float]:
    a = np.asarray(ms)
    return float(np.median(a)), float(np.percentile(a, 95))


def _start_server(db: str | None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ)
    if db:
        env["GEOGRID_DATABASE_URL"] = db
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.main:app_from_env",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code < 500:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise SystemExit("the server did not start")


def _fetch_all(client: httpx.Client, paths: list[str]) -> list[float]:
    out = []
    for p in paths:
        t = time.perf_counter()
        r = client.get(p)
        out.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
    return out


async def _load(
    base: str, paths: list[str], clients: int, requests: int, seconds: float
) -> tuple[float, int]:
    done = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker(i: int) -> None:
            nonlocal done
            k = i
            while done < requests and time.perf_counter() < stop:
                r = await client.get(paths[k % len(paths)])
                r.raise_for_status()
                done += 1
                k += clients

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        return done / (time.perf_counter() - t0), done


def _wrk_rps(base: str, paths: list[str], clients: int, seconds: float) -> tuple[float, int] | None:
    """Requests/s of ``wrk`` (a C load generator, if installed) cycling over ``paths``:
    the Python load generator above saturates a core of its own on a 2-core machine."""
    if shutil.which("wrk") is None:
        return None
    lua = (
        "local paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n"
        "local i = 0\nrequest = function()\n  i = i % #paths + 1\n"
        "  return wrk.format('GET', paths[i])\nend\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{clients}", f"-d{max(int(seconds), 1)}s", "-s", f.name, base],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    )
    Path(f.name).unlink(missing_ok=True)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    n = re.search(r"(\d+) requests in", out.stdout)
    return (float(rps.group(1)), int(n.group(1))) if rps and n else None


def _db_rps(
    engine: Engine, tiles: list[tuple[int, int, int]], clients: int, requests: int, seconds: float
) -> float:
    stop = time.perf_counter() + seconds
    per = max(requests // clients, 1)

    def work(i: int) -> int:
        n = 0
        with engine.connect() as conn:
            for k in range(per):
                if time.perf_counter() > stop:
                    break
                z, x, y = tiles[(i + k * clients) % len(tiles)]
                plain_unit_tile(conn, "grid", "grids", z, x, y)
                n += 1
        return n

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        n = sum(pool.map(work, range(clients)))
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="an already running geogrid server (default: start one)")
    ap.add_argument("--db", help="database URL (default: GEOGRID_DATABASE_URL)")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--seconds", type=float, default=15.0)
    args = ap.parse_args(argv)

    engine = get_engine(args.db)
    settings = get_settings()
    proc = None
    base = args.url
    if base is None:
        proc, base = _start_server(args.db)
    rows: list[tuple[str, str, str, str]] = []
    try:
        stamp = (
            f"2026-10-28T{random.randrange(24):02d}:{random.randrange(60):02d}:"
            f"{random.randrange(60):02d}Z"
        )
        q = f"?from={stamp}"
        client = httpx.Client(base_url=base, timeout=120)
        t = time.perf_counter()
        client.get(f"/tiles/grids/8/206/111.mvt{q}").raise_for_status()  # metrics of window
        rows.append(
            (
                "grid metrics for the window (once)",
                "",
                f"{(time.perf_counter() - t) * 1000:.0f}",
                "",
            )
        )
        all_cached: list[str] = []
        for z, span in ZOOM_SPAN.items():
            tiles = _tiles(z, span)
            paths = [f"/tiles/grids/{z}/{x}/{y}.mvt{q}" for z, x, y in tiles]
            cold = _fetch_all(client, paths)
            warm = _fetch_all(client, paths)
            sizes = [len(client.get(p).content) for p in paths[:5]]
            with engine.connect() as conn:
                db = []
                for tz, tx, ty in tiles:
                    t = time.perf_counter()
                    plain_unit_tile(conn, "grid", "grids", tz, tx, ty)
                    db.append((time.perf_counter() - t) * 1000)
                svc = MapService(engine, settings, cache=TileCache())
                win = svc.window()
                df = svc.unit_metrics("grid", win)  # not timed
                ours = []
                for tz, tx, ty in tiles:
                    w, s, e, n = padded_tile_bounds_lonlat(tz, tx, ty)
                    sel = df[(df.xmax >= w) & (df.xmin <= e) & (df.ymax >= s) & (df.ymin <= n)]
                    m = {
                        "code": sel["code"].tolist(),
                        **{f: sel[f].tolist() for f in UNIT_METRIC_FIELDS},
                    }
                    t = time.perf_counter()
                    unit_tile(conn, "grid", "grids", tz, tx, ty, metrics=m)
                    ours.append((time.perf_counter() - t) * 1000)
            n = len(tiles)
            rows.append(
                (
                    f"grids z{z} HTTP cold ({n} tiles, ~{np.mean(sizes) / 1024:.0f} KB)",
                    *(f"{v:.1f}" for v in _stats(cold)),
                    "",
                )
            )
            rows.append((f"grids z{z} HTTP cached", *(f"{v:.1f}" for v in _stats(warm)), ""))
            rows.append(
                (
                    f"grids z{z} PostGIS ST_AsMVT plain (DB only)",
                    *(f"{v:.1f}" for v in _stats(db)),
                    "",
                )
            )
            rows.append(
                (
                    f"grids z{z} our SQL + metrics unnest (DB only)",
                    *(f"{v:.1f}" for v in _stats(ours)),
                    "",
                )
            )
            all_cached += paths
        heat = [f"/heatmap/12/{x}/{y}.png{q}" for _, x, y in _tiles(12, 3)]
        t = time.perf_counter()
        client.get(f"/heatmap/8/206/111.png{q}").raise_for_status()
        rows.append(
            ("heat source + z8 scale (once)", "", f"{(time.perf_counter() - t) * 1000:.0f}", "")
        )
        cold = _fetch_all(client, heat)
        warm = _fetch_all(client, heat)
        rows.append(
            (f"heat z12 HTTP cold ({len(heat)} tiles)", *(f"{v:.1f}" for v in _stats(cold)), "")
        )
        rows.append(("heat z12 HTTP cached", *(f"{v:.1f}" for v in _stats(warm)), ""))
        hl = _fetch_all(client, ["/health"] * 30)
        rows.append(("HTTP baseline: GET /health", *(f"{v:.1f}" for v in _stats(hl)), ""))
        svc = MapService(engine, settings, cache=TileCache())
        win = svc.window()
        svc.vector_tile("grids", 14, *_tiles(14, 0)[0][1:], win)
        inproc = []
        for _ in range(200):
            t = time.perf_counter()
            svc.vector_tile("grids", 14, *_tiles(14, 0)[0][1:], win)
            inproc.append((time.perf_counter() - t) * 1000)
        rows.append(
            ("cached tile, in-process MapService lookup", *(f"{v:.3f}" for v in _stats(inproc)), "")
        )
        client.close()
        load_paths = [p for p in all_cached if "/12/" in p or "/14/" in p]
        rps, n = asyncio.run(_load(base, load_paths, args.clients, args.requests, args.seconds))
        rows.append(
            (f"cached grid tiles z12+z14, {args.clients} clients ({n} req)", "", "", f"{rps:.0f}")
        )
        wrk = _wrk_rps(base, load_paths, args.clients, min(args.seconds, 10.0))
        if wrk is not None:
            rows.append(
                (
                    f"cached grid tiles z12+z14, wrk {args.clients} connections ({wrk[1]} req)",
                    "",
                    "",
                    f"{wrk[0]:.0f}",
                )
            )
        tiles = [
            (int(p.split("/")[3]), int(p.split("/")[4]), int(p.split("/")[5].split(".")[0]))
            for p in load_paths
        ]
        drps = _db_rps(engine, tiles, args.clients, args.requests // 4, args.seconds)
        rows.append((f"PostGIS ST_AsMVT plain, {args.clients} connections", "", "", f"{drps:.0f}"))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
    w = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{w}}  {'median ms':>9}  {'p95 ms':>8}  {'req/s':>7}")
    print("-" * (w + 32))
    for name, med, p95, rps in rows:
        print(f"{name:<{w}}  {med:>9}  {p95:>8}  {rps:>7}")
    print(f"\nserver {base}; {os.cpu_count()} CPUs; tiles around {CENTRE}; window from {stamp}")


if __name__ == "__main__":
    main()
