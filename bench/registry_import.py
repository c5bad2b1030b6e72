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
* raw binary ``COPY`` of the rows geogrid stored (every ``reg_*`` table, the bodies
  already encoded) into unindexed tables: the database's floor for writing them — on
  one connection, then split over one connection per core at once (the most this
  machine can write durably, with no check, seal, gram or index at all), then the same
  UNLOGGED (no WAL); the issue's 10× ``to_postgis`` is printed against that ceiling;
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
import threading
import time

import geopandas as gpd
from sqlalchemy import text

from bench._scratch import ADMIN_URL, raw_copy_seconds, scratch_database
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


class ServerCpu:
    """CPU seconds of one database's server processes (its backends and the parallel
    workers they start), from ``/proc`` sampled every ``interval`` s by a thread: a
    figure of the server's work that the shared machine's load does not inflate. Only
    when the server runs on this machine (else 0)."""

    def __init__(self, dbname: str, interval: float = 0.2) -> None:
        self.dbname, self.interval = dbname, interval
        self._tick = os.sysconf("SC_CLK_TCK")
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sample()
        self._first = dict(self._last)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _ours(self) -> set[int]:
        mine: set[int] = set()
        workers: dict[int, int] = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read().decode(errors="replace")
            except OSError:
                continue
            if not cmd.startswith("postgres: "):
                continue
            if f" {self.dbname} " in cmd:
                mine.add(int(d))
            elif "parallel worker for PID " in cmd:
                workers[int(d)] = int(cmd.rsplit("PID ", 1)[1].split()[0])
        return mine | {w for w, leader in workers.items() if leader in mine}

    def _sample(self) -> None:
        for pid in self._ours():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            cpu = (int(fields[11]) + int(fields[12])) / self._tick
            with self._lock:
                self._last[pid] = max(cpu, self._last.get(pid, 0.0))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __call__(self) -> float:
        """CPU seconds used since this was made."""
        self._sample()
        with self._lock:
            return sum(v - self._first.get(p, 0.0) for p, v in self._last.items())

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--admin-url", default=ADMIN_URL)
    ap.add_argument("--keep", metavar="NAME", help="keep the database under this name")
    ap.add_argument(
        "--no-to-postgis", action="store_true", help="time geogrid's load only (no comparison)"
    )
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
            server = ServerCpu(url.rsplit("/", 1)[1])
            t0, c0 = time.perf_counter(), time.process_time()
            rep = load_registry(
                engine, reg, vault=v, workers=args.workers, on_progress=print, server_cpu=server
            )
            t_geogrid = time.perf_counter() - t0
            server.close()
        assert rep["records"] == n, rep
        print(f"geogrid steps (wall s): {rep['steps']}", flush=True)
        print(f"geogrid loader process (CPU s): {rep['loader_cpu']}", flush=True)
        print(f"geogrid server processes (CPU s): {rep['server_cpu']}", flush=True)
        print(f"geogrid workers (CPU s): {rep['worker_cpu']}", flush=True)
        total = (
            sum(rep["server_cpu"].values())
            + sum(rep["worker_cpu"].values())
            + time.process_time()
            - c0
        )
        print(
            f"geogrid CPU s in all: {total:.1f} (server {sum(rep['server_cpu'].values()):.1f}, "
            f"workers {sum(rep['worker_cpu'].values()):.1f}, loader "
            f"{time.process_time() - c0:.1f})",
            flush=True,
        )
        print(f"load average after geogrid: {os.getloadavg()}", flush=True)
        print(f"geogrid registry load: {t_geogrid:.1f} s = {n / t_geogrid:,.0f} rows/s", flush=True)
        if args.no_to_postgis:
            return

        # the database's floor: the rows geogrid stored, binary COPY into unindexed tables
        with engine.connect() as conn:
            tables = list(
                conn.execute(
                    text(
                        "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') "
                        "AND relname LIKE 'reg\\_%' AND relnamespace = 'public'::regnamespace "
                        "AND NOT relispartition ORDER BY relname"
                    )
                ).scalars()
            )
        cores = os.cpu_count() or 1
        t_raw = raw_copy_seconds(url, tables)
        # every core at once: the most this machine can write durably; then without WAL
        t_par = raw_copy_seconds(url, tables, connections=cores)
        t_nowal = raw_copy_seconds(url, tables, connections=cores, logged=False)
        print(f"raw COPY floor of the stored tables: {', '.join(tables)}", flush=True)

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
        print(
            f"{'raw binary COPY of the stored rows into unindexed tables':62s} "
            f"{t_raw:8.1f} {n / t_raw:10,.0f}"
        )
        print(
            f"{f'raw binary COPY on {cores} connections at once (the durable ceiling)':62s} "
            f"{t_par:8.1f} {n / t_par:10,.0f}"
        )
        print(
            f"{f'raw binary COPY on {cores} connections, UNLOGGED (no WAL)':62s} "
            f"{t_nowal:8.1f} {n / t_nowal:10,.0f}"
        )
        print(f"geogrid speed-up over to_postgis: {t_gpd / t_geogrid:.2f}x")
        print(
            f"raw binary COPY over to_postgis: {t_gpd / t_raw:.2f}x on one connection, "
            f"{t_gpd / t_par:.2f}x on {cores} (durable), {t_gpd / t_nowal:.2f}x without WAL "
            f"(no loader can pass these); geogrid / raw COPY: {t_raw / t_geogrid:.2f}x of "
            "the one-connection floor"
        )
        verdict = "reachable" if t_gpd / t_par >= 10 else "above the machine's ceiling"
        print(f"target 10x to_postgis = {t_gpd / 10:.1f} s for {n:,} rows -> {verdict}")
        print(f"load average after: {os.getloadavg()}", flush=True)
        if args.keep:
            with engine.begin() as conn:
                for kind in frames:
                    conn.execute(text(f"DROP TABLE IF EXISTS bench_{kind}"))


if __name__ == "__main__":
    main()
