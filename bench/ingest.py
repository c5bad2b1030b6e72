"""Bulk incident import: geogrid's streaming COPY pipeline vs GeoDataFrame.to_postgis.

    python -m bench.ingest [--rows 1000000] [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Creates a scratch database with the demo boundaries and categories, writes the demo's
synthetic incidents as CSV, and times in one run on the same rows:

* ``geogrid incidents import`` (read CSV in batches, check every row, convert CRS,
  attribute every point to grid/community/street/district, COPY into the indexed
  ``incident`` table, all in one transaction);
* ``GeoDataFrame.to_postgis`` of the same rows (already parsed, no checks, no
  attribution) into a plain table with a GiST index, the usual GeoPandas way.

Prints rows/s and the ratio. The scratch database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import geopandas as gpd
import psycopg
from sqlalchemy import text

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
            t0 = time.perf_counter()
            rep = import_incidents(engine, csv, tz=LOCAL_TZ)
            t_geogrid = time.perf_counter() - t0
        assert rep.loaded == args.rows, rep

        gdf = gpd.GeoDataFrame(
            frame[cols].drop(columns=["lon", "lat"]),
            geometry=gpd.points_from_xy(frame["lon"], frame["lat"]),
            crs="EPSG:4326",
        )
        t0 = time.perf_counter()
        gdf.to_postgis(
            "incident_to_postgis", engine, if_exists="replace", index=False, chunksize=100_000
        )
        with engine.begin() as conn:
            conn.execute(text("CREATE INDEX ON incident_to_postgis USING gist (geometry)"))
        t_gpd = time.perf_counter() - t0

        print(f"rows={args.rows:,}  CSV {size_mb:.0f} MB")
        print(f"{'method':58s} {'seconds':>8s} {'rows/s':>10s}")
        print(
            f"{'geogrid incidents import (check+CRS+attribute+COPY, 1 tx)':58s} "
            f"{t_geogrid:8.1f} {args.rows / t_geogrid:10,.0f}"
        )
        print(
            f"{'GeoDataFrame.to_postgis (parsed rows, no checks/attribution)':58s} "
            f"{t_gpd:8.1f} {args.rows / t_gpd:10,.0f}"
        )
        print(f"geogrid speed-up over to_postgis: {t_gpd / t_geogrid:.2f}x")
    finally:
        get_engine(url).dispose()
        with psycopg.connect(args.admin_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
