"""geogrid.locator.GridLocator: exactness against GEOS, GeoPandas and PostGIS."""

from __future__ import annotations

import io

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from bench._data import clustered_points, voronoi_grids
from geogrid.errors import InvalidInput
from geogrid.locator import GridLocator


def brute(geoms, x, y) -> np.ndarray:
    """Reference: lowest position of a grid covering each point (GEOS), -1 if none."""
    geoms = np.asarray(geoms, dtype=object)
    res = np.full(len(x), -1, dtype=np.int64)
    tree = shapely.STRtree(geoms)
    pi, gi = tree.query(shapely.points(x, y))
    hit = shapely.intersects_xy(geoms[gi], x[pi], y[pi])
    pi, gi = pi[hit], gi[hit]
    order = np.lexsort((gi, pi))
    pi, gi = pi[order], gi[order]
    first = np.r_[True, pi[1:] != pi[:-1]] if pi.size else np.empty(0, bool)
    res[pi[first]] = gi[first]
    return res


def on_edge(geoms, x, y, tol=1e-9) -> np.ndarray:
    """Points within ``tol`` degrees of any grid boundary."""
    bounds = shapely.boundary(np.asarray(geoms, dtype=object))
    tree = shapely.STRtree(bounds)
    pi, _ = tree.query(shapely.points(x, y), predicate="dwithin", distance=tol)
    out = np.zeros(len(x), dtype=bool)
    out[pi] = True
    return out


# ------------------------------------------------------------------ (a) hand-made grids


@pytest.fixture
def squares() -> gpd.GeoDataFrame:
    """2 x 2 unit squares around (1, 1); positions: 0 SW, 1 SE, 2 NW, 3 NE."""
    geoms = [box(0, 0, 1, 1), box(1, 0, 2, 1), box(0, 1, 1, 2), box(1, 1, 2, 2)]
    return gpd.GeoDataFrame({"code": ["sw", "se", "nw", "ne"]}, geometry=geoms, crs="EPSG:4326")


@pytest.fixture
def holey() -> gpd.GeoDataFrame:
    """A square with a hole (0), the grid filling the hole (1), a two-part grid (2)."""
    outer = Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (1, 2), (2, 2), (2, 1)]])
    inner = box(1, 1, 2, 2)
    multi = MultiPolygon([box(5, 0, 6, 1), box(7, 0, 8, 1)])
    return gpd.GeoDataFrame({"code": ["o", "i", "m"]}, geometry=[outer, inner, multi], crs=4326)


def test_interior_and_outside(squares):
    loc = GridLocator(squares)
    x = np.array([0.5, 1.5, 0.5, 1.5, -0.5, 2.5, 1.0, 5.0, 1e9])
    y = np.array([0.5, 0.5, 1.5, 1.5, 0.5, 0.5, -1e-9, 5.0, 1.0])
    assert loc.locate(x, y).tolist() == [0, 1, 2, 3, -1, -1, -1, -1, -1]
    assert loc.locate_codes(x[:5], y[:5]).tolist() == ["sw", "se", "nw", "ne", None]


def test_shared_edge_and_vertex_go_to_lowest_position(squares):
    x = np.array([1.0, 1.0, 0.5, 1.5, 1.0, 0.0, 2.0, 1.0])
    y = np.array([0.5, 1.5, 1.0, 1.0, 1.0, 0.0, 2.0, 2.0])
    expected = [0, 2, 0, 1, 0, 0, 3, 2]
    loc = GridLocator(squares)
    assert loc.locate(x, y).tolist() == expected
    assert loc.locate(x, y).tolist() == expected  # same answer on repeated calls
    for chunk in (1, 2, 3):
        for threads in (1, 2):
            other = GridLocator(squares, chunk_size=chunk, threads=threads)
            assert other.locate(x, y).tolist() == expected
    # the rule follows positions, not geometry: reversed input -> reversed preference
    # (positions: 0 NE, 1 NW, 2 SE, 3 SW)
    rev = GridLocator(squares.iloc[::-1].reset_index(drop=True))
    assert rev.locate(x, y).tolist() == [2, 0, 1, 0, 0, 3, 0, 0]
    assert rev.locate(x, y).tolist() == brute(squares.geometry.values[::-1], x, y).tolist()


def test_holes_and_multipolygons(holey):
    loc = GridLocator(holey)
    x = np.array([0.5, 1.5, 1.0, 1.5, 5.5, 7.5, 6.5, 3.0, 4.5])
    y = np.array([0.5, 1.5, 1.5, 2.0, 0.5, 0.5, 0.5, 3.0, 0.5])
    # (1, 1.5) and (1.5, 2) lie on the hole's boundary: both 0 and 1 cover it -> 0
    assert loc.locate(x, y).tolist() == [0, 1, 0, 0, 2, 2, -1, 0, -1]
    assert loc.locate(x, y).tolist() == brute(holey.geometry.values, x, y).tolist()
    # order reversed: the filling grid now comes first
    rev = GridLocator(holey.geometry.iloc[::-1], codes=["m", "i", "o"])
    assert rev.locate_codes(x, y).tolist() == ["o", "i", "i", "i", "m", "m", None, "o", None]


def test_nan_inf_empty_and_shapes(squares):
    loc = GridLocator(squares.geometry)  # a GeoSeries works too
    x = np.array([np.nan, 0.5, np.inf, -np.inf, 0.5])
    y = np.array([0.5, np.nan, 0.5, 0.5, np.inf])
    assert loc.locate(x, y).tolist() == [-1] * 5
    empty = loc.locate(np.array([]), np.array([]))
    assert empty.dtype == np.int64 and empty.shape == (0,)
    grid = loc.locate(np.full((2, 3), 0.5), np.full((2, 3), 1.5))
    assert grid.shape == (2, 3) and (grid == 2).all()
    assert loc.locate(0.5, 0.5).tolist() == 0  # scalars
    with pytest.raises(InvalidInput, match="codes"):
        loc.locate_codes([0.5], [0.5])
    with pytest.raises(InvalidInput, match="shape"):
        loc.locate([0.5, 1.0], [0.5])


@pytest.mark.parametrize("split_levels", [0, 1])
def test_far_and_invalid_coordinates_with_slanted_edges(split_levels):
    tri = gpd.GeoSeries([Polygon([(0, 0), (1, 0.3), (0.2, 1)]), box(1, 0, 2, 1)], crs=4326)
    loc = GridLocator(tri, split_levels=split_levels)
    big = [1e6, -1e6, 1e300, -1e300, np.inf, -np.inf, np.nan]
    x = np.array(big + [0.5] * 7 + big)
    y = np.array([0.5] * 7 + big + big)
    assert (loc.locate(x, y) == -1).all()


def test_all_outside_and_no_grids(squares):
    loc = GridLocator(squares)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(10, 20, 1000), rng.uniform(10, 20, 1000)
    assert (loc.locate(x, y) == -1).all()
    none = GridLocator(gpd.GeoSeries([], crs=4326))
    assert none.locate([0.5], [0.5]).tolist() == [-1]
    assert none.nbytes >= 0


def test_bad_input(squares):
    with pytest.raises(InvalidInput, match="EPSG:4326"):
        GridLocator(squares.to_crs(3857))
    with pytest.raises(InvalidInput, match="Polygon or MultiPolygon"):
        GridLocator(gpd.GeoSeries([shapely.Point(0, 0)]))
    with pytest.raises(InvalidInput, match="one per grid"):
        GridLocator(squares, codes=["a"])
    with pytest.raises(InvalidInput, match="factors"):
        GridLocator(squares, factors=(3,))


def test_points_on_cell_lines_and_vertices():
    """Coordinates on raster cell lines and exactly on grid vertices / edges match GEOS."""
    grids = voronoi_grids(400, seed=3)
    geoms = grids.geometry.values
    loc = GridLocator(grids, cell_size=0.004, factors=(4, 4))
    # exactly on the level-0 and finest cell lines
    k = np.arange(-2, 400)
    fine = loc.cell_size / 16
    xs = np.r_[loc._x0 + k * loc.cell_size, loc._x0 + k[:200] * fine + 0.3]
    ys = np.r_[loc._y0 + k * loc.cell_size, loc._y0 + k[:200] * fine + 0.2]
    gx, gy = np.meshgrid(xs[::3], ys[::3])
    # every vertex, and points on the segments (GEOS decides if they are exactly on)
    vx, vy = shapely.get_coordinates(geoms).T
    t = np.random.default_rng(0).uniform(size=len(vx) - 1)
    sx = vx[:-1] + (vx[1:] - vx[:-1]) * t
    sy = vy[:-1] + (vy[1:] - vy[:-1]) * t
    x = np.r_[gx.ravel(), vx, sx]
    y = np.r_[gy.ravel(), vy, sy]
    assert (loc.locate(x, y) == brute(geoms, x, y)).all()


def test_configurations_agree():
    grids = voronoi_grids(300, seed=5)
    x, y = clustered_points(50_000, seed=2, grids=grids)
    ref = GridLocator(grids).locate(x, y)
    for kw in (
        dict(factors=(2,)),
        dict(factors=(16, 4), split_levels=1),
        dict(cell_size=0.05, factors=(4, 4, 4), split_levels=2),
        dict(cell_size=1.0, factors=(2, 2)),
    ):
        assert (GridLocator(grids, **kw).locate(x, y) == ref).all(), kw


# ------------------------------------------------------------------ (b) vs geopandas / shapely


@pytest.fixture(scope="module")
def yulin_grids() -> gpd.GeoDataFrame:
    return voronoi_grids()


def test_equals_geopandas_sjoin(yulin_grids):
    x, y = clustered_points(200_000, seed=11, grids=yulin_grids)
    loc = GridLocator(yulin_grids)
    got = loc.locate(x, y)
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=4326)
    joined = gpd.sjoin(pts, yulin_grids[["geometry"]], predicate="within", how="left")
    joined = joined[~joined.index.duplicated(keep="first")]
    ref = joined["index_right"].fillna(-1).astype(np.int64).to_numpy()
    diff = np.flatnonzero(got != ref)
    edge = on_edge(yulin_grids.geometry.values, x[diff], y[diff])
    assert diff[~edge].size == 0
    assert (got == brute(yulin_grids.geometry.values, x, y)).all()
    assert (got >= 0).mean() > 0.95
    assert loc.locate_codes(x[:5], y[:5]).tolist() == [
        yulin_grids["code"].iat[i] if i >= 0 else None for i in got[:5]
    ]


# ------------------------------------------------------------------ (c) vs PostGIS
# Runs in the default suite (needs the PostGIS server of tests/conftest.py); ~10-25 s.


def test_equals_postgis_st_covers(yulin_grids, pg_dsn):
    n = 1_000_000
    x, y = clustered_points(n, seed=21, grids=yulin_grids)
    got = GridLocator(yulin_grids).locate(x, y)
    geoms = yulin_grids.geometry.values
    wkb = shapely.to_wkb(shapely.set_srid(np.asarray(geoms), 4326), hex=True, include_srid=True)
    with psycopg.connect(pg_dsn) as conn:
        conn.execute(
            "CREATE TEMP TABLE t_grids (idx int PRIMARY KEY, geom geometry(Geometry, 4326))"
        )
        with conn.cursor().copy("COPY t_grids (idx, geom) FROM STDIN") as cp:
            for i, h in enumerate(wkb):
                cp.write_row((i, h))
        conn.execute("CREATE INDEX ON t_grids USING gist (geom)")
        conn.execute("CREATE TEMP TABLE t_xy (id int, x float8, y float8)")
        with conn.cursor().copy("COPY t_xy (id, x, y) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int4", "float8", "float8"])
            for row in zip(range(n), x.tolist(), y.tolist(), strict=True):
                cp.write_row(row)
        conn.execute(
            "CREATE TEMP TABLE t_pts AS "
            "SELECT id, ST_SetSRID(ST_MakePoint(x, y), 4326) AS geom FROM t_xy"
        )
        # a GiST index on the points too: the planner then loops over the grids and
        # PostGIS reuses each prepared grid polygon (~5-10x faster than probing per point)
        conn.execute("CREATE INDEX ON t_pts USING gist (geom)")
        conn.execute("ANALYZE t_grids")
        conn.execute("ANALYZE t_pts")
        conn.execute("SET jit = off")
        out = io.BytesIO()
        with conn.cursor().copy(
            "COPY (SELECT p.id, g.idx FROM t_grids g JOIN t_pts p "
            "ON ST_Covers(g.geom, p.geom)) TO STDOUT"
        ) as cp:
            for block in cp:
                out.write(block)
    pairs = np.array(out.getvalue().split(), dtype=np.int64).reshape(-1, 2)
    ref = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(ref, pairs[:, 0], pairs[:, 1])  # a point on a shared edge: lowest grid
    ref[ref == np.iinfo(np.int64).max] = -1
    diff = np.flatnonzero(got != ref)
    edge = on_edge(geoms, x[diff], y[diff])
    assert diff[~edge].size == 0, f"{diff[~edge].size} off-edge disagreements with PostGIS"
    assert (ref >= 0).sum() > 0.95 * n
