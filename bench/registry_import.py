"""Registry bulk import (issue 15): geogrid's loader vs GeoDataFrame.to_postgis, same rows.

    python -m bench.registry_import [--records 6620000] [--workers 2]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--keep NAME]

Creates a scratch database with the demo boundaries, generates the demo's synthetic
registry (:mod:`geogrid.demo.registry`: people, households, buildings, organisations in
the documented split) and times, in one run on the same rows:

* geogrid's registry load (:func:`geogrid.services.registry_import.load_registry`):
  vectorised checks (ID and social credit code checksums, phones, uniqueness), every ID
  number and phone sealed with AES-256-GCM + HMAC blind index + mask (in worker
  processes), name/address search grams, binary ``COPY`` of every table, the 40-odd
  secondary indexes (btree, GiST, GIN) built, unit counts refreshed, ANALYZE — one
  transaction;
* ``GeoDataFrame.to_postgis`` of the same rows (ID numbers and phones in clear, no
  checks, no grams, a point per row: its building's), one table per kind, with a GiST
  index each — the usual GeoPandas way.

Prints seconds, rows/s per method and the ratio, geogrid's steps (wall seconds) and its
workers' CPU seconds per step, and the load average before and after (the machine may be
shared). The scratch database is dropped, unless ``--keep NAME``: then it is named NAME
(dropped first if it exists), keeps the registry (not the to_postgis tables) and can be
searched with ``bench.registry_search``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import geopandas as gpd
from sqlalchemy import text

from bench._scratch import ADMIN_URL, scratch_database
from geogrid.demo.boundaries import build_demo
from geogrid.demo.registry import DEFAULT_RECORDS, build_registry
from geogrid.services.boundaries import save_hierarchy
from geogrid.services.database import get_engine
from geogrid.services.registry_import import load_registry
from geogrid.services.registry_keys import vault
from geogrid.settings import Settings


def _frames(reg) -> dict[str, gpd.GeoDataFrame]:
    b = reg.buildings
    lon = b["lon"].to_numpy()
    lat = b["lat"].to_numpy()
    out = {
        "buildings": gpd.GeoDataFrame(
            b.drop(columns=["lon", "lat"]), geometry=gpd.points_from_xy(lon, lat), crs=4326
        )
    }
    for kind in ("households", "people"):
        f = getattr(reg, kind)
        i = f["building_id"].to_numpy() - 1
        out[kind] = gpd.GeoDataFrame(f, geometry=gpd.points_from_xy(lon[i], lat[i]), crs=4326)
    o = reg.orgs
    out["orgs"] = gpd.GeoDataFrame(
        o.drop(columns=["lon", "lat"]), geometry=gpd.points_from_xy(o["lon"], o["lat"]), crs=4326
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--admin-url", default=ADMIN_URL)
    ap.add_argument("--keep", metavar="NAME", help="keep the database under this name")
    args = ap.parse_args()

    print(f"load average before: {os.getloadavg()}", flush=True)
    with scratch_database(args.admin_url, name=args.keep, keep=bool(args.keep)) as url:
        engine = get_engine(url)
        city = build_demo()
        save_hierarchy(engine, city.units, label="bench", source="bench")
        t0 = time.perf_counter()
        reg = build_registry(city.units, city.buildings, n=args.records)
        t_gen = time.perf_counter() - t0
        n = reg.records
        print(
            f"records={n:,} (people {len(reg.people):,}, households {len(reg.households):,}, "
            f"buildings {len(reg.buildings):,}, orgs {len(reg.orgs):,}; care rows "
            f"{len(reg.care):,}) generated in {t_gen:.1f} s",
            flush=True,
        )
        with tempfile.TemporaryDirectory() as home:
            # a kept database is sealed with the configured key (GEOGRID_REGISTRY_KEY or
            # the key file), so bench.registry_search can open its values
            v = vault(Settings() if args.keep else Settings(home=home))
            t0 = time.perf_counter()
            rep = load_registry(engine, reg, vault=v, workers=args.workers, on_progress=print)
            t_geogrid = time.perf_counter() - t0
        assert rep["records"] == n, rep
        print(f"geogrid steps (wall s): {rep['steps']}", flush=True)
        print(f"geogrid workers (CPU s): {rep['worker_cpu']}", flush=True)
        print(f"load average after geogrid: {os.getloadavg()}", flush=True)

        frames = _frames(reg)
        t0 = time.perf_counter()
        for kind, gdf in frames.items():
            gdf.to_postgis(
                f"bench_{kind}", engine, if_exists="replace", index=False, chunksize=100_000
            )
            with engine.begin() as conn:
                conn.execute(text(f"CREATE INDEX ON bench_{kind} USING gist (geometry)"))
        t_gpd = time.perf_counter() - t0

        print(f"{'method':62s} {'seconds':>8s} {'rows/s':>10s}")
        print(
            f"{'geogrid registry load (check+seal+blind+grams+COPY+indexes)':62s} "
            f"{t_geogrid:8.1f} {n / t_geogrid:10,.0f}"
        )
        print(
            f"{'GeoDataFrame.to_postgis (clear values, no checks, GiST only)':62s} "
            f"{t_gpd:8.1f} {n / t_gpd:10,.0f}"
        )
        print(f"geogrid speed-up over to_postgis: {t_gpd / t_geogrid:.2f}x")
        print(f"load average after: {os.getloadavg()}", flush=True)
        if args.keep:
            with engine.begin() as conn:
                for kind in frames:
                    conn.execute(text(f"DROP TABLE IF EXISTS bench_{kind}"))


if __name__ == "__main__":
    main()
