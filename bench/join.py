"""Point -> grid join benchmark: geogrid's GridLocator against the usual tools.

    python -m bench.join [--sizes 1000000,10000000] [--grids voronoi|db] [--pg-url URL]

Every method runs on the same points (or on a stated prefix of them when a method is
too slow for the full size) and must give the same assignment as GridLocator: the
table counts the disagreements on points that are not within 1e-9 deg of a grid
boundary (where "within" and "covers" legitimately differ).

Timed: GridLocator.locate (build time reported apart); geopandas.sjoin(predicate="within")
on ready GeoDataFrames; shapely STRtree query + contains_xy including the creation of
the point geometries (tree built beforehand); PostGIS: only the join query (the points
are COPYed into a temp table beforehand), in two plans: GiST on the grids only (one index
probe per point) and GiST on the points too (the planner loops over grids); DuckDB
spatial if the extension can be loaded (it needs a download, so usually skipped).
Fast methods: median of 3 runs; slow ones: one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from functools import partial

import geopandas as gpd
import numpy as np
import psycopg
import shapely

from bench._data import clustered_points, grids_from_db, voronoi_grids
from bench._scratch import ADMIN_URL, create_scratch, drop_scratch
from geogrid.core.locator import GridLocator


def _timed(fn: Callable[[], np.ndarray], repeat: int) -> tuple[float, np.ndarray]:
    """Median wall time of ``repeat`` runs (one run if the first takes over 5 s)."""
    times = []
    result = np.empty(0)
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
        if times[0] > 5:
            break
    return statistics.median(times), result


def _lowest(n: int, pi: np.ndarray, gi: np.ndarray) -> np.ndarray:
    big = np.iinfo(np.int64).max
    out = np.full(n, big, dtype=np.int64)
    np.minimum.at(out, pi, gi)
    out[out == big] = -1
    return out


def _off_edge_disagreements(bounds_tree, x, y, got, ref) -> int:
    diff = np.flatnonzero(got != ref)
    if diff.size == 0:
        return 0
    hit, _ = bounds_tree.query(shapely.points(x[diff], y[diff]), predicate="dwithin", distance=1e-9)
    on_edge = np.zeros(diff.size, dtype=bool)
    on_edge[hit] = True
    return int((~on_edge).sum())


# ---------------------------------------------------------------------- methods


def run_sjoin(grids: gpd.GeoDataFrame, x, y) -> tuple[float, np.ndarray]:
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=4326)  # not timed
    right = grids[["geometry"]]

    def go():
        j = gpd.sjoin(pts, right, predicate="within", how="inner")
        return _lowest(len(x), j.index.to_numpy(), j["index_right"].to_numpy())

    return _timed(go, 1)


def run_strtree(grids: gpd.GeoDataFrame, x, y, repeat: int) -> tuple[float, np.ndarray]:
    geoms = np.asarray(grids.geometry.values)
    tree = shapely.STRtree(geoms)
    shapely.prepare(geoms)

    def go():
        pi, gi = tree.query(shapely.points(x, y))
        hit = shapely.contains_xy(geoms[gi], x[pi], y[pi])
        return _lowest(len(x), pi[hit], gi[hit])

    return _timed(go, repeat)


class PostGIS:
    """Grids in a temp table of ``url``'s database, or of a scratch database with PostGIS."""

    def __init__(self, url: str, grids: gpd.GeoDataFrame):
        self.admin_url = url
        self.scratch: str | None = None
        conn = psycopg.connect(url, autocommit=True)
        has = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone()
        if not has:  # leave the given database alone: work in a scratch one
            conn.close()
            self.scratch = create_scratch(url, schema=False)
            conn = psycopg.connect(
                self.scratch.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True
            )
            conn.execute("CREATE EXTENSION postgis")
        self.conn = conn
        conn.execute("SET jit = off")
        wkb = shapely.to_wkb(
            shapely.set_srid(np.asarray(grids.geometry.values), 4326),
            hex=True,
            include_srid=True,
        )
        conn.execute(
            "CREATE TEMP TABLE b_grids (idx int PRIMARY KEY, geom geometry(Geometry, 4326))"
        )
        with conn.cursor().copy("COPY b_grids (idx, geom) FROM STDIN") as cp:
            cp.write("".join(f"{i}\t{h}\n" for i, h in enumerate(wkb)))
        conn.execute("CREATE INDEX ON b_grids USING gist (geom)")
        conn.execute("ANALYZE b_grids")

    def load_points(self, x, y) -> float:
        c = self.conn
        t = time.perf_counter()
        c.execute("DROP TABLE IF EXISTS b_xy, b_pts, b_res")
        c.execute("CREATE TEMP TABLE b_xy (id int, x float8, y float8)")
        with c.cursor().copy("COPY b_xy (id, x, y) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int4", "float8", "float8"])
            for row in zip(range(len(x)), x.tolist(), y.tolist(), strict=True):
                cp.write_row(row)
        c.execute(
            "CREATE TEMP TABLE b_pts AS "
            "SELECT id, ST_SetSRID(ST_MakePoint(x, y), 4326) AS geom FROM b_xy"
        )
        c.execute("DROP TABLE b_xy")
        c.execute("ANALYZE b_pts")
        return time.perf_counter() - t

    def index_points(self) -> float:
        t = time.perf_counter()
        self.conn.execute("CREATE INDEX b_pts_geom ON b_pts USING gist (geom)")
        self.conn.execute("ANALYZE b_pts")
        return time.perf_counter() - t

    def join(self, n: int) -> tuple[float, np.ndarray]:
        c = self.conn
        c.execute("DROP TABLE IF EXISTS b_res")
        t = time.perf_counter()
        c.execute(
            "CREATE TEMP TABLE b_res AS SELECT p.id, g.idx FROM b_pts p "
            "JOIN b_grids g ON ST_Covers(g.geom, p.geom)"
        )
        dt = time.perf_counter() - t
        out = bytearray()
        with c.cursor().copy("COPY b_res TO STDOUT") as cp:
            for block in cp:
                out += block
        pairs = np.array(bytes(out).split(), dtype=np.int64).reshape(-1, 2)
        return dt, _lowest(n, pairs[:, 0], pairs[:, 1])

    def close(self):
        self.conn.close()
        if self.scratch:
            drop_scratch(self.scratch, self.admin_url)


def run_duckdb(grids: gpd.GeoDataFrame, x, y) -> tuple[float, np.ndarray]:
    import duckdb  # optional [bench] dependency, only for this comparison

    con = duckdb.connect()
    con.execute("INSTALL spatial")
    con.execute("LOAD spatial")
    wkb = shapely.to_wkb(np.asarray(grids.geometry.values))
    gt = {"idx": np.arange(len(wkb), dtype=np.int64), "wkb": list(wkb)}  # noqa: F841
    con.execute("CREATE TABLE g AS SELECT idx, ST_GeomFromWKB(wkb) AS geom FROM gt")
    pt = {"id": np.arange(len(x), dtype=np.int64), "x": x, "y": y}  # noqa: F841
    con.execute("CREATE TABLE p AS SELECT id, ST_Point(x, y) AS geom FROM pt")

    def go():
        r = con.execute(
            "SELECT p.id, g.idx FROM p JOIN g ON ST_Covers(g.geom, p.geom)"
        ).fetchnumpy()
        return _lowest(len(x), r["id"], r["idx"])

    return _timed(go, 1)


# ---------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.join", description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--grids", choices=["voronoi", "db"], default="voronoi")
    ap.add_argument("--pg-url", default=os.environ.get("GEOGRID_BENCH_PG", ADMIN_URL))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--sjoin-max",
        type=int,
        default=2_000_000,
        help="time sjoin on at most this many points (prefix)",
    )
    ap.add_argument(
        "--pg-max",
        type=int,
        default=1_000_000,
        help="PostGIS with GiST on grids+points: at most this many points",
    )
    ap.add_argument(
        "--pg-probe-max",
        type=int,
        default=200_000,
        help="PostGIS with GiST on grids only: at most this many points",
    )
    ap.add_argument("--no-pg", action="store_true")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]

    t = time.perf_counter()
    grids = grids_from_db(args.pg_url) if args.grids == "db" else voronoi_grids()
    print(f"grids: {len(grids)} ({args.grids}, {time.perf_counter() - t:.1f} s to make)")
    t = time.perf_counter()
    lon, lat = clustered_points(max(sizes), seed=0, grids=grids)
    print(f"points: {max(sizes):,} clustered ({time.perf_counter() - t:.1f} s to make)")
    loc = GridLocator(grids)
    ny, nx = loc.shape
    print(
        f"GridLocator: build {loc.build_seconds:.2f} s, index {loc.nbytes / 1e6:.1f} MB "
        f"(level 0 {nx}x{ny} cells of {loc.cell_size:.5f} deg, "
        f"tiles per level {loc.tiles_per_level}, "
        f"{loc.n_segments} segments), threads {loc.threads}, cpus {os.cpu_count()}"
    )
    bounds_tree = shapely.STRtree(shapely.boundary(np.asarray(grids.geometry.values)))

    pg = None
    pg_note = ""
    if not args.no_pg:
        try:
            pg = PostGIS(args.pg_url, grids)
        except Exception as e:  # noqa: BLE001
            pg_note = f"skipped: {type(e).__name__}: {str(e).splitlines()[0]}"

    rows = []
    for n in sizes:
        x, y = lon[:n], lat[:n]
        loc.locate(x[: min(n, 1_000_000)], y[: min(n, 1_000_000)])  # warm-up
        t_loc, ours = _timed(partial(loc.locate, x, y), args.repeat)
        rows.append(("geogrid GridLocator", n, n, t_loc, 0, ""))

        def add(name, m, fn, note="", n=n, t_loc=t_loc, ours=ours):
            try:
                dt, res = fn(m)
            except Exception as e:  # noqa: BLE001
                rows.append(
                    (
                        name,
                        n,
                        0,
                        float("nan"),
                        -1,
                        f"skipped: {type(e).__name__}: {str(e).splitlines()[0][:80]}",
                    )
                )
                return
            bad = _off_edge_disagreements(bounds_tree, lon[:m], lat[:m], ours[:m], res)
            rows.append((name, n, m, dt, bad, note))

        m = min(n, args.sjoin_max)
        add(
            "geopandas.sjoin within",
            m,
            lambda m: run_sjoin(grids, lon[:m], lat[:m]),
            f"first {m:,} points" if m < n else "",
        )
        add(
            "shapely STRtree+contains_xy",
            n,
            lambda m: run_strtree(grids, lon[:m], lat[:m], args.repeat),
        )
        if pg is not None:
            m = min(n, args.pg_probe_max)
            pg.load_points(lon[:m], lat[:m])
            add(
                "PostGIS ST_Covers, GiST grids",
                m,
                lambda m: pg.join(m),
                f"first {m:,} points; join query only",
            )
            m = min(n, args.pg_max)
            pg.load_points(lon[:m], lat[:m])
            t_idx = pg.index_points()
            add(
                "PostGIS ST_Covers, GiST grids+pts",
                m,
                lambda m: pg.join(m),
                f"first {m:,} points; join only (+{t_idx:.1f} s point index)",
            )
        else:
            rows.append(("PostGIS", n, 0, float("nan"), -1, pg_note))
        add(
            "DuckDB spatial",
            min(n, 1_000_000),
            lambda m: run_duckdb(grids, lon[:m], lat[:m]),
            "first 1,000,000 points" if n > 1_000_000 else "",
        )
    if pg is not None:
        pg.close()

    print()
    print(
        f"{'method':<34} {'points':>11} {'timed on':>11} {'seconds':>8} {'points/s':>11} "
        f"{'geogrid x':>9} {'off-edge diff':>13}  note"
    )
    loc_rate = {r[1]: r[2] / r[3] for r in rows if r[0].startswith("geogrid")}
    for name, n, m, dt, bad, note in rows:
        if m == 0 or not np.isfinite(dt):
            print(f"{name:<34} {n:>11,} {'-':>11} {'-':>8} {'-':>11} {'-':>9} {'-':>13}  {note}")
            continue
        rate = m / dt
        speed = loc_rate[n] / rate
        print(
            f"{name:<34} {n:>11,} {m:>11,} {dt:>8.3f} {rate / 1e6:>10.2f}M "
            f"{speed:>8.1f}x {bad:>13}  {note}"
        )
    print(
        f"\nGridLocator build {loc.build_seconds:.2f} s, index arrays {loc.nbytes / 1e6:.1f} MB;"
        f" load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus (timings noisy)."
    )


if __name__ == "__main__":
    main()
