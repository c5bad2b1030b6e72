"""A province-sized benchmark (issue 12): 14 cities, ~100,000 grids, a year of incidents
as partitioned GeoParquet; the locator, Dask with 1 and 2 workers, ingest, PostGIS
metrics and tiles.

    python -m bench.province [--grids 100000] [--incidents 100000000] [--scale-down 20]
        [--cities 14] [--ingest-months 2] [--keep FOLDER] [--no-tiles] [--no-dask]
        [--keep-db NAME]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

``--incidents`` is the province's year (Guangxi: ~100 M); ``--scale-down N`` writes
``incidents / N`` of them (default 20: 5 M rows; the 14 city builds alone take ~2 min
of CPU; on a loaded 2-core machine the whole run takes half an hour and more). Phases, each
printing its figure as it ends:

1. **build**: :func:`geogrid.demo.province.build_province` (14 demo builds moved onto a
   lattice, see its docstring) and the hierarchy saved as the published version of a
   scratch database (the categories too);
2. **locator**: :class:`~geogrid.core.attribution.Attributor` (a ``GridLocator`` over
   every grid) built from the layers, its bytes, and points/s over 2 M incident points
   (each checked against the grid it was drawn in: must be 100 %);
3. **GeoParquet**: the year written as ``incidents-YYYY-MM-CCCC.parquet`` in chunks
   (rows/s, bytes per row on disk);
4. **ingest**: the last ``--ingest-months`` months imported into PostGIS with
   :func:`geogrid.services.ingest.import_incidents`, one file per month (rows/s), and the
   table's bytes per row with its indexes;
5. **Dask**: :func:`geogrid.services.scale.dask_metrics` — attribution of every row
   (the join) and the last month's grid metrics — over the whole year on a
   ``LocalCluster`` of 1 and of 2 worker processes (warm runs; rows/s per worker, the
   workers' memory, speed-up = t1 / t2);
6. **equal**: over the ingested months, Dask (2 workers) vs the PostGIS path
   (:func:`geogrid.services.metrics.load_metrics` / ``unit_hotspots``): counts exactly,
   rates and Gi* to 1e-9;
7. **PostGIS month**: ``load_metrics`` of the last month at grid / community / district
   level (median of 5 warm runs) on the ingested rows;
8. **tiles**: ``python -m bench.tiles --db <scratch>`` (cold vs bare ``ST_AsMVT``, cached
   req/s with 1 and 2 workers sharing Redis; Yulin, city 4509, is where bench.tiles looks)
   — its output is printed as it comes.

The scratch database is dropped at the end unless ``--keep-db NAME`` (then it is named
NAME and kept, e.g. for ``bench.tiles --db``); the GeoParquet folder too unless
``--keep``. ``--no-dask`` skips phases 5 and 6.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
from distributed import Client
from sqlalchemy import text

from bench._dask import local_client
from bench._scratch import ADMIN_URL, scratch_database
from geogrid.core.attribution import Attributor
from geogrid.core.catalogue import load_categories
from geogrid.core.unitmetrics import AGGREGATE_COUNTS
from geogrid.demo.city import CITY_FILE, TIMEZONE
from geogrid.demo.province import build_province, import_frame, incident_chunks, write_incidents
from geogrid.services import metrics, scale
from geogrid.services.boundaries import save_hierarchy
from geogrid.services.database import get_engine
from geogrid.services.incidents import save_categories
from geogrid.services.ingest import import_incidents
from geogrid.services.unitcache import UnitCache

_COUNTS = [c for c in AGGREGATE_COUNTS if c in metrics.METRIC_COLUMNS]
_RATES = [
    "per_1000_residents",
    "per_km2",
    "median_hours_to_resolve",
    "p90_hours_to_resolve",
    "resolved_within_limit_share",
    "change_pct",
    "load_index",
]


def _say(phase: str, figure: str) -> None:
    print(f"[{phase}] {figure}", flush=True)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _load() -> str:
    a, b, c = os.getloadavg()
    return f"load average {a:.2f} {b:.2f} {c:.2f} on {os.cpu_count()} CPUs"


def _month_bounds(end: str, months: int) -> list[pd.Timestamp]:
    stop = pd.Timestamp(end, tz=TIMEZONE).normalize().replace(day=1)
    return [stop - pd.DateOffset(months=months - k) for k in range(months + 1)]


def _locator(prov, n_points: int, seed: int) -> Attributor:
    att, t_build = _timed(lambda: Attributor.from_layers(prov.units))
    _say(
        "locator",
        f"built over {att.locator.n:,} grids in {t_build:.1f} s, "
        f"{att.locator.nbytes / 2**20:.0f} MiB of index arrays",
    )
    # incident points of the first month (any city), with the grid each was drawn in
    lon, lat, grid = [], [], []
    got = 0
    for _, _, _, extra in incident_chunks(prov, n_points, months=1, seed=seed):
        lon.append(extra["lon"])
        lat.append(extra["lat"])
        grid.append(extra["grid"])
        got += len(extra["lon"])
    x, y, g = np.concatenate(lon), np.concatenate(lat), np.concatenate(grid)
    att.locator.locate(x[:1000], y[:1000])  # threads started
    pos, t = _timed(lambda: att.locator.locate(x, y))
    same = float(np.mean(pos == g))
    _say(
        "locator",
        f"{got:,} points in {t:.2f} s = {got / t:,.0f} points/s "
        f"({att.locator.threads} threads); "
        f"in the grid they were drawn in: {same:.4%}",
    )
    return att


def _ingest(engine, prov, months: list[str], args, tmp: Path) -> tuple[int, float]:
    rows, took = 0, 0.0
    cache = UnitCache()  # the attributor of 100,000 grids built once, as a service keeps it
    for month in months:
        parts = [
            import_frame(table, extra)
            for _, _, table, extra in incident_chunks(
                prov, args.n, months=args.months, end=args.end, seed=args.seed, only={month}
            )
        ]
        frame = pd.concat(parts, ignore_index=True)
        csv = tmp / f"import-{month}.csv"
        frame.to_csv(csv, index=False)
        rep, t = _timed(partial(import_incidents, engine, csv, tz=TIMEZONE, cache=cache))
        if rep.loaded != len(frame):
            raise SystemExit(f"import of {month}: {rep}")
        rows += rep.loaded
        took += t
        csv.unlink()
        _say(
            "ingest",
            f"{month}: {rep.loaded:,} rows in {t:.1f} s = {rep.loaded / t:,.0f} rows/s "
            f"(geogrid incidents import of a CSV: checks, attribution, COPY, one transaction)",
        )
    return rows, took


def _pg_bytes(engine) -> dict[str, int]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE true), sum(pg_table_size(relid)), "
                "sum(pg_indexes_size(relid)), sum(pg_total_relation_size(relid)) "
                "FROM pg_partition_tree('incident')"
            )
        ).one()
        n = conn.execute(text("SELECT count(*) FROM incident")).scalar_one()
    return {"relations": row[0], "table": row[1], "indexes": row[2], "total": row[3], "rows": n}


def _cpu() -> float:
    t = psutil.Process().cpu_times()
    return float(t.user + t.system)


def _rss(client: Client) -> list[float]:
    got = client.run(lambda: psutil.Process().memory_info().rss)
    return [v / 2**20 for v in got.values()]


def _dask(engine, folder: Path, window: dict, rows: int, att: Attributor) -> dict[int, float]:
    times: dict[int, float] = {}
    efforts = {str(c): float(e) for c, e in load_categories()["effort"].items()}
    s, e = window["start"], window["end"]
    span = {"prev_start": s - (e - s), "start": s, "end": e, "t": e}
    for n in (1, 2):
        with local_client(n) as client:
            cache = UnitCache()
            run = partial(
                scale.dask_metrics, engine, folder, "grid", client=client, cache=cache, **window
            )
            _, cold = _timed(run)
            m, warm = _timed(run)
            # the distributed part alone: read, attribute (the join) and sum every partition;
            # the workers' CPU seconds too, which a loaded machine does not inflate
            cpu0 = sum(client.run(_cpu).values())
            _, t_agg = _timed(
                partial(
                    scale.aggregate_partitions,
                    scale.read_history(folder),
                    att,
                    "grid",
                    efforts=efforts,
                    categories=None,
                    client=client,
                    **span,
                )
            )
            used = sum(client.run(_cpu).values()) - cpu0
            times[n] = t_agg
            rss = _rss(client)
            _say(
                "dask",
                f"{n} worker(s): {rows:,} rows attributed + last month's grid metrics in "
                f"{warm:.1f} s warm ({cold:.1f} s cold, with the attributor's build and "
                f"scatter) = {rows / warm:,.0f} rows/s, {rows / warm / n:,.0f} rows/s per "
                f"worker; worker RSS {', '.join(f'{r:,.0f}' for r in rss)} MiB; "
                f"{int(m['incidents'].sum()):,} incidents in the month",
            )
            _say(
                "dask",
                f"{n} worker(s): read + attribute + per-grid sums alone {t_agg:.1f} s = "
                f"{rows / t_agg:,.0f} rows/s, {rows / t_agg / n:,.0f} rows/s per worker; workers' "
                f"CPU {used:.0f} s = {rows / used:,.0f} rows per CPU-second",
            )
    _say(
        "dask",
        f"speed-up with 2 workers (read + attribute + sums): {times[1] / times[2]:.2f}x "
        f"({_load()})",
    )
    return times


def _equal(engine, sub: Path, window: dict) -> None:
    with local_client(2) as client:
        cache = UnitCache()
        ref = metrics.load_metrics(engine, "grid", cache=cache, **window)
        got = scale.dask_metrics(engine, sub, "grid", client=client, cache=cache, **window)
        same_codes = list(got["code"]) == list(ref["code"])
        differ = {
            c: int((got[c].to_numpy() != ref[c].to_numpy()).sum())
            for c in _COUNTS
            if not (got[c].to_numpy() == ref[c].to_numpy()).all()
        }
        counts = not differ
        if differ:
            _say("equal", f"units differing per count: {differ}")
            c = next(iter(differ))
            bad = got[c].to_numpy() != ref[c].to_numpy()
            print(
                pd.DataFrame({"dask": got[c].to_numpy()[bad], "postgis": ref[c].to_numpy()[bad]})
                .head(3)
                .to_string(),
                flush=True,
            )
        rates = {
            c: float(
                np.nanmax(np.abs(got[c].to_numpy(float) - ref[c].to_numpy(float)), initial=0.0)
            )
            for c in _RATES
        }
        _say(
            "equal",
            f"grid metrics, Dask vs PostGIS over {int(ref['incidents'].sum()):,} incidents "
            f"of the month: same units {same_codes}; {len(_COUNTS)} counts equal {counts}; "
            f"largest rate difference {max(rates.values()):.2e}",
        )
        t0 = time.perf_counter()
        gi_ref = metrics.unit_hotspots(engine, "grid", cache=cache, **window)
        t_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        gi = scale.dask_hotspots(engine, sub, "grid", client=client, cache=cache, **window)
        t_gi = time.perf_counter() - t0
        dz = float(np.nanmax(np.abs(gi["z"].to_numpy(float) - gi_ref["z"].to_numpy(float))))
        same_class = bool((gi["class"].to_numpy() == gi_ref["class"].to_numpy()).all())
        _say(
            "equal",
            f"Gi* over {len(gi):,} grids: largest |Δz| {dz:.2e}, same classes {same_class} "
            f"(PostGIS path {t_ref:.1f} s, Dask path {t_gi:.1f} s)",
        )


def _postgis_month(engine, window: dict) -> None:
    cache = UnitCache()
    for level in ("grid", "community", "district"):
        runs = []
        m = None
        for _ in range(6):
            m, t = _timed(partial(metrics.load_metrics, engine, level, cache=cache, **window))
            runs.append(t)
        assert m is not None
        _say(
            "postgis",
            f"a month of {level} metrics ({len(m):,} units, {int(m['incidents'].sum()):,} "
            f"incidents): median {statistics.median(runs[1:]) * 1000:.0f} ms of 5 warm "
            f"(cold {runs[0] * 1000:.0f} ms, path {m.attrs.get('path')})",
        )


def _tiles(url: str, seconds: float) -> None:
    env = {**os.environ, "GEOGRID_DATABASE_URL": url, "GEOGRID_CITY_FILE": str(CITY_FILE)}
    cmd = [sys.executable, "-m", "bench.tiles", "--db", url, "--seconds", str(seconds)]
    _say("tiles", " ".join(cmd[1:]))
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(f"[tiles] {line.rstrip()}", flush=True)
    if proc.returncode:
        _say("tiles", f"bench.tiles exited with {proc.returncode}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--grids", type=int, default=100_000)
    ap.add_argument("--incidents", type=int, default=100_000_000, help="the province's year")
    ap.add_argument("--scale-down", type=int, default=20, help="write incidents / N rows")
    ap.add_argument("--cities", type=int, default=14)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--end", default="2026-12-01", help="the history ends before this date")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--ingest-months", type=int, default=2)
    ap.add_argument("--locate-points", type=int, default=2_000_000)
    ap.add_argument("--keep", type=Path, help="write the GeoParquet here and keep it")
    ap.add_argument("--no-tiles", action="store_true")
    ap.add_argument(
        "--no-dask", action="store_true", help="skip the Dask and Dask = PostGIS phases"
    )
    ap.add_argument(
        "--keep-db",
        metavar="NAME",
        help="name the scratch database NAME (dropped first if it exists) and keep it",
    )
    ap.add_argument("--tiles-seconds", type=float, default=5.0)
    ap.add_argument("--admin-url", default=ADMIN_URL)
    ap.add_argument("--counties", nargs="*", help="Yulin county codes per build (smoke runs)")
    args = ap.parse_args(argv)
    args.n = args.incidents // max(args.scale_down, 1)
    print(
        f"province: {args.cities} cities, {args.grids:,} grids, {args.n:,} incidents "
        f"({args.incidents:,} / {args.scale_down}) over {args.months} months; {_load()}",
        flush=True,
    )
    t_all = time.perf_counter()
    prov, t = _timed(
        lambda: build_province(args.cities, args.grids, seed=2026, counties=args.counties)
    )
    _say(
        "build",
        f"{len(prov.units['grid']):,} grids, {len(prov.units['community']):,} communities, "
        f"{len(prov.units['street']):,} streets, {len(prov.units['district']):,} districts "
        f"in {args.cities} cities; {len(prov.pool):,} buildings; {t:.0f} s",
    )
    with scratch_database(
        args.admin_url, prefix="geogrid_province", name=args.keep_db, keep=bool(args.keep_db)
    ) as url:
        engine = get_engine(url)
        _, t = _timed(lambda: save_hierarchy(engine, prov.units, label="province", source="bench"))
        save_categories(engine, load_categories())
        _say("build", f"hierarchy saved and published in PostGIS in {t:.0f} s")

        att = _locator(prov, args.locate_points, args.seed)

        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            folder = args.keep or tmp / "history"
            written, t = _timed(
                lambda: write_incidents(
                    prov, folder, args.n, months=args.months, end=args.end, seed=args.seed
                )
            )
            size = sum((Path(folder) / f).stat().st_size for f in written)
            _say(
                "parquet",
                f"{args.n:,} rows in {len(written)} files in {t:.0f} s = {args.n / t:,.0f} "
                f"rows/s (generated + written); {size / 2**20:,.0f} MiB = "
                f"{size / max(args.n, 1):.1f} bytes/row",
            )
            bounds = _month_bounds(args.end, args.months)
            months = [b.strftime("%Y-%m") for b in bounds[:-1]]
            window = {"start": bounds[-2], "end": bounds[-1], "now": bounds[-1]}

            ingest = months[-args.ingest_months :]
            rows, took = _ingest(engine, prov, ingest, args, tmp)
            sizes = _pg_bytes(engine)
            _say(
                "ingest",
                f"{rows:,} rows in {took:.0f} s = {rows / took:,.0f} rows/s; PostgreSQL "
                f"{sizes['table'] / rows:.0f} bytes/row table + {sizes['indexes'] / rows:.0f} "
                f"indexes = {sizes['total'] / rows:.0f} bytes/row "
                f"({sizes['relations']} relation(s) under incident)",
            )
            if not args.no_dask:
                _dask(engine, Path(folder), window, args.n, att)
                sub = tmp / "ingested"
                sub.mkdir()
                for f in written:
                    if f[10:17] in ingest:
                        (sub / f).symlink_to(Path(folder) / f)
                _equal(engine, sub, window)
            _postgis_month(engine, window)
        if not args.no_tiles:
            _tiles(url, args.tiles_seconds)
    kept = f"database {args.keep_db} kept" if args.keep_db else "scratch DB dropped"
    _say("done", f"{time.perf_counter() - t_all:.0f} s in all; {_load()}; {kept}")


if __name__ == "__main__":
    main()
