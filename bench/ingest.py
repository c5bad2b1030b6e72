"""Bulk incident import: geogrid's streaming COPY pipeline vs GeoDataFrame.to_postgis.

    python -m bench.ingest [--rows 1000000] [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Creates a scratch database with the demo boundaries and categories, writes the demo's
synthetic incidents as CSV, and times in one run on the same rows:

* ``geogrid incidents import`` (read CSV in batches, check every row, convert CRS,
  attribute every point to grid/community/street/district, COPY into the indexed
  ``incident`` table, all in one transaction);
* ``GeoDataFrame.to_postgis`` of the same rows (already parsed, no checks, no
  attribution) into a plain table with a GiST index, the usual GeoPandas way;
* raw binary ``COPY`` of the same stored rows (every column, the body already encoded:
  ``COPY … TO STDOUT (FORMAT BINARY)`` of what geogrid stored) into an unindexed table —
  the server's floor for writing these rows — on one connection, then split over one
  connection per core at once (the most this machine can write durably, with no
  checking, attribution, index, key or rollup at all), then the same UNLOGGED (no WAL).
  The issue's targets (1 M rows/s, 20× ``to_postgis``) are printed against those
  ceilings.

Prints rows/s and the ratios, and geogrid's time per phase (read/check/attribute/encode
in the reading thread, which overlaps the COPY; copy/keys/insert/index/attach in the
transaction). The scratch database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import uuid
from pathlib import Path

import geopandas as gpd
import psycopg
from sqlalchemy import text

from bench._scratch import raw_copy_seconds
from geogrid.core.catalogue import load_categories
from geogrid.demo.boundaries import build_demo
from geogrid.demo.incidents import LOCAL_TZ, build_incidents
from geogrid.demo.people import build_workers
from geogrid.services.boundaries import save_hierarchy
from geogrid.services.database import get_engine, migrate
from geogrid.services.incidents import save_categories
from geogrid.services.ingest import import_incidents


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()

    name = f"geogrid_bench_{uuid.uuid4().hex[:8]}"
    base = args.admin_url.rsplit("/", 1)[0]
    with psycopg.connect(args.admin_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        migrate(url)
        engine = get_engine(url)
        city = build_demo()
        save_hierarchy(engine, city.units, label="bench", source="bench")
        cats = load_categories()
        save_categories(engine, cats)
        workers, _ = build_workers(city.units["grid"], seed=2016)
        frame = build_incidents(
            city.units["grid"], city.buildings, workers, cats, n=args.rows, seed=7
        )
        cols = [
            "source_id",
            "category",
            "description",
            "lon",
            "lat",
            "reported_at",
            "status",
            "accepted_at",
            "dispatched_at",
            "resolved_at",
            "closed_at",
        ]
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "incidents.csv"
            frame[cols].to_csv(csv, index=False)
            size_mb = csv.stat().st_size / 1e6
            load_before = os.getloadavg()[0]
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            rep = import_incidents(engine, csv, tz=LOCAL_TZ)
            t_geogrid = time.perf_counter() - t0
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu_geogrid = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        assert rep.loaded == args.rows, rep

        gdf = gpd.GeoDataFrame(
            frame[cols].drop(columns=["lon", "lat"]),
            geometry=gpd.points_from_xy(frame["lon"], frame["lat"]),
            crs="EPSG:4326",
        )
        # raw binary COPY of the very rows geogrid stored, into an unindexed table: on one
        # connection; on every core at once (the machine's ceiling for rows kept durably);
        # and on every core without WAL (the ceiling with durability given up too)
        cores = os.cpu_count() or 1
        t_raw = raw_copy_seconds(url, ["incident"])
        t_par = raw_copy_seconds(url, ["incident"], connections=cores)
        t_nowal = raw_copy_seconds(url, ["incident"], connections=cores, logged=False)

        t0 = time.perf_counter()
        gdf.to_postgis(
            "incident_to_postgis", engine, if_exists="replace", index=False, chunksize=100_000
        )
        with engine.begin() as conn:
            conn.execute(text("CREATE INDEX ON incident_to_postgis USING gist (geometry)"))
        t_gpd = time.perf_counter() - t0

        print(
            f"rows={args.rows:,}  CSV {size_mb:.0f} MB  load average {load_before:.1f} before "
            f"the import, {os.getloadavg()[0]:.1f} at the end (2 CPUs shared)"
        )
        print(f"{'method':58s} {'seconds':>8s} {'rows/s':>10s}")
        print(
            f"{'geogrid incidents import (check+CRS+attribute+COPY, 1 tx)':58s} "
            f"{t_geogrid:8.1f} {args.rows / t_geogrid:10,.0f}"
        )
        print(
            f"{'GeoDataFrame.to_postgis (parsed rows, no checks/attribution)':58s} "
            f"{t_gpd:8.1f} {args.rows / t_gpd:10,.0f}"
        )
        print(
            f"{'raw binary COPY of the stored rows into an unindexed table':58s} "
            f"{t_raw:8.1f} {args.rows / t_raw:10,.0f}"
        )
        print(
            f"{f'raw binary COPY on {cores} connections at once (the durable ceiling)':58s} "
            f"{t_par:8.1f} {args.rows / t_par:10,.0f}"
        )
        print(
            f"{f'raw binary COPY on {cores} connections, UNLOGGED (no WAL)':58s} "
            f"{t_nowal:8.1f} {args.rows / t_nowal:10,.0f}"
        )
        print(f"geogrid speed-up over to_postgis: {t_gpd / t_geogrid:.2f}x")
        print(f"geogrid / raw binary COPY: {t_raw / t_geogrid:.2f}x of the COPY floor")
        # the targets against what this machine can write at all, same run
        for label, need in (
            ("1,000,000 rows/s", 1_000_000.0),
            ("20x to_postgis", 20 * args.rows / t_gpd),
        ):
            ceiling, bare = args.rows / t_par, args.rows / t_nowal
            verdict = "reachable" if need <= ceiling else "above the machine's ceiling"
            print(
                f"target {label} = {need:,.0f} rows/s: durable COPY ceiling "
                f"{ceiling:,.0f} ({ceiling / need:.2f}x of it), no-WAL ceiling {bare:,.0f} "
                f"({bare / need:.2f}x) -> {verdict}"
            )
        print(
            f"geogrid client CPU (read, check, attribute, encode, on 2 threads): "
            f"{cpu_geogrid:.1f} s = {args.rows / cpu_geogrid:,.0f} rows per CPU-second"
        )
        print(
            f"months loaded standalone + attached: {len(rep.months_new)}, rows through the "
            f"parent: {rep.months_existing:,}"
        )
        print(
            "geogrid phases (wall s; the reading thread overlaps the COPY; index/analyze run "
            "on the side connections, overlapping keys/rollup):"
        )
        for phase in (
            "read",
            "check",
            "dedupe",
            "attribute",
            "encode",
            "copy",
            "insert",
            "wait",
            "keys",
            "rollup",
            "index",
            "analyze",
            "attach",
        ):
            if phase in rep.phases:
                print(f"  {phase:10s} {rep.phases[phase]:7.2f}")
        print(f"  {'wall':10s} {t_geogrid:7.2f}")
    finally:
        get_engine(url).dispose()
        with psycopg.connect(args.admin_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
