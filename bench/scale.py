"""Analysts past one machine: per-grid monthly metrics and Gi* over a partitioned
GeoParquet history on a Dask LocalCluster with 1 and 2 worker processes (speed-up), and
the same month from PostGIS for reference.

    python -m bench.scale [--rows 2000000] [--months 12] [--postgis-rows 200000]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Builds a scratch database with the demo boundaries, categories and workers; writes
``--rows`` synthetic demo incidents as one GeoParquet file per month (the layout of
``geogrid scale export``); times :func:`geogrid.services.scale.dask_metrics` and
:func:`~geogrid.services.scale.dask_hotspots` of the last month with 1 and 2 workers;
then imports the last ``--postgis-rows`` rows into PostGIS and checks that the Dask
result over those same rows equals :func:`geogrid.services.metrics.load_metrics`.
Prints seconds, rows/s and the speed-up. The scratch database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from bench._dask import local_client
from bench._scratch import ADMIN_URL, scratch_database
from geogrid.core.catalogue import load_categories
from geogrid.demo.boundaries import build_demo
from geogrid.demo.incidents import LOCAL_TZ, build_incidents
from geogrid.demo.people import build_workers
from geogrid.services import metrics, scale
from geogrid.services.boundaries import save_hierarchy
from geogrid.services.database import get_engine
from geogrid.services.incidents import save_categories
from geogrid.services.ingest import import_incidents
from geogrid.services.unitcache import UnitCache


def _write_months(frame: pd.DataFrame, cats: pd.DataFrame, folder: Path) -> int:
    """The demo rows as the export's monthly files (due from the category's limit)."""
    limit = frame["category"].map(cats["limit_hours"]).astype(float)
    done = frame["resolved_at"].fillna(frame["closed_at"]).fillna(frame["reported_at"])
    gdf = gpd.GeoDataFrame(
        {
            "id": np.arange(1, len(frame) + 1, dtype=np.int64),
            "category": frame["category"].to_numpy(),
            "status": frame["status"].to_numpy(),
            "reported_at": frame["reported_at"],
            "resolved_at": frame["resolved_at"],
            "due_at": frame["reported_at"] + pd.to_timedelta(limit, unit="h"),
            "done_at": done,
        },
        geometry=gpd.points_from_xy(frame["lon"], frame["lat"]),
        crs="EPSG:4326",
    )
    month = gdf["reported_at"].dt.tz_convert(LOCAL_TZ).dt.strftime("%Y-%m")
    for m, part in gdf.groupby(month.to_numpy()):
        part.to_parquet(folder / f"incidents-{m}.parquet", index=False)
    return int(month.nunique())


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--postgis-rows", type=int, default=200_000)
    ap.add_argument("--admin-url", default=ADMIN_URL)
    args = ap.parse_args()

    with scratch_database(args.admin_url) as url:
        engine = get_engine(url)
        city = build_demo()
        save_hierarchy(engine, city.units, label="bench", source="bench")
        cats = load_categories()
        save_categories(engine, cats)
        workers, _ = build_workers(city.units["grid"], seed=2016)
        frame = build_incidents(
            city.units["grid"], city.buildings, workers, cats, n=args.rows, seed=7
        )
        end = frame["reported_at"].max().tz_convert(LOCAL_TZ).normalize()
        window = {"start": end - pd.Timedelta(days=30), "end": end, "now": end}
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            months = _write_months(frame, cats, folder)  # indexed by code
            print(f"history: {args.rows:,} incidents in {months} monthly GeoParquet files")
            print(f"{'run':40s} {'seconds':>8s} {'rows/s':>12s}")
            times = {}
            for n in (1, 2):
                with local_client(n) as client:
                    cache = UnitCache()
                    scale.dask_metrics(engine, folder, "grid", client=client, cache=cache, **window)
                    t0 = time.perf_counter()  # second run: the attributor is built and cached
                    scale.dask_metrics(engine, folder, "grid", client=client, cache=cache, **window)
                    times[n] = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    scale.dask_hotspots(
                        engine, folder, "grid", client=client, cache=cache, **window
                    )
                    t_gi = time.perf_counter() - t0
                print(
                    f"{f'grid metrics, {n} worker(s)':40s} {times[n]:8.2f} {args.rows / times[n]:12,.0f}"
                )
                print(f"{f'grid metrics + Gi*, {n} worker(s)':40s} {t_gi:8.2f}")
            print(f"speed-up with 2 workers: {times[1] / times[2]:.2f}x")

            # the same rows in PostGIS: equal results (the check the tests make on the demo)
            tail = frame.tail(args.postgis_rows)
            sub = Path(tmp) / "sub"
            sub.mkdir()
            _write_months(tail, cats, sub)
            csv = Path(tmp) / "tail.csv"
            cols = ["source_id", "category", "description", "lon", "lat", "reported_at", "status"]
            cols += ["accepted_at", "dispatched_at", "resolved_at", "closed_at"]
            tail[cols].to_csv(csv, index=False)
            import_incidents(engine, csv, tz=LOCAL_TZ)
            t0 = time.perf_counter()
            ref = metrics.load_metrics(engine, "grid", **window)
            t_pg = time.perf_counter() - t0
            got = scale.dask_metrics(engine, sub, "grid", **window)
            same = bool((ref["incidents"].to_numpy() == got["incidents"].to_numpy()).all())
            print(
                f"PostGIS month of grid metrics at {len(tail):,} rows: {t_pg:.2f} s; "
                f"Dask equal: {same}"
            )


if __name__ == "__main__":
    main()
