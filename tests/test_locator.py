"""geogrid.core.locator.GridLocator: exactness against GEOS, GeoPandas and PostGIS."""

from __future__ import annotations

import io

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from bench._data import clustered_points, voronoi_grids
from geogrid.core.locator import GridLocator
from geogrid.errors import InvalidInput


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
    x0, y0 = loc.origin
    xs = np.r_[x0 + k * loc.cell_size, x0 + k[:200] * fine + 0.3]
    ys = np.r_[y0 + k * loc.cell_size, y0 + k[:200] * fine + 0.2]
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


# ------------------------------------------------------------------ (d) T-junctions & co.
# Coverages from an auto-partition (hexagons merged into communities) or from noded
# linework have T-junctions: a grid's edge runs along several neighbour edges that are
# split at vertices it does not have, so its segments have no exactly reversed twin.


# Eight grids of an auto-partitioned layer (verbatim coordinates) on which the locator
# disagreed with GEOS (35 points), plus two specks pinning the raster to the original
# layer's bounding box; the points and their GEOS answers (positions in this list).
_BUG_GRIDS_WKT = [
    # 16: 450923001001017
    "MULTIPOLYGON (((109.9824934 22.2676189, 109.9815456 22.267726, 109.9813752 22.2680494, "
    "109.9814963 22.2687721, 109.9815527 22.2687068, 109.982357 22.2677767, 109.9824934 "
    "22.2676189)))",
    # 23: 450923001001024
    "MULTIPOLYGON (((109.9793776 22.2694051, 109.9792279 22.2701133, 109.9793622 "
    "22.2701029, 109.979729 22.2700744, 109.9804164 22.2700211, 109.9806904 22.2697043, "
    "109.9806903 22.2697042, 109.9801506 22.2690407, 109.9793776 22.2694051)))",
    # 41: 450923001002015
    "MULTIPOLYGON (((109.9825527 22.2723516, 109.9818995 22.2738568, 109.9834474 "
    "22.2744758, 109.9837044 22.2744609, 109.9839327 22.273857, 109.983041 22.2728843, "
    "109.982863 22.27269, 109.9825527 22.2723516)))",
    # 63: 450923001003011
    "MULTIPOLYGON (((109.98262397298006 22.272429327284748, 109.9827090000715 "
    "22.272522054219134, 109.98271025825805 22.272523426343945, 109.98276906852091 "
    "22.272587562318645, 109.98281352753907 22.27263604743545, 109.98308603653129 "
    "22.27263775406976, 109.98325210875014 22.272909682827862, 109.98358816922942 "
    "22.272911786445377, 109.98375815619626 22.272641961248258, 109.98359208327035 "
    "22.272370032974056, 109.98325602408464 22.272367929413072, 109.98308995245229 "
    "22.272096000664853, 109.98275389397362 22.27209389608944, 109.98258390583378 "
    "22.272363720205693, 109.98262397298006 22.272429327284748)))",
    # 67: 450923001003015
    "MULTIPOLYGON (((109.9826066974041 22.26748786075448, 109.9824934 22.2676189, "
    "109.982357 22.2677767, 109.98222160130304 22.267933276312363, 109.98204083070932 "
    "22.268142321108108, 109.98200910269621 22.268179011677535, 109.9819376527704 "
    "22.268261637036236, 109.98190780883958 22.26829614883539, 109.98163299239609 "
    "22.26861394912644, 109.9815527 22.2687068, 109.9814963 22.2687721, 109.9814747 "
    "22.2687971, 109.98124062305128 22.269067794802048, 109.9811033 22.2692266, "
    "109.98097601448487 22.269373861541734, 109.9806904 22.2697043, 109.98065208670735 "
    "22.269748597996756, 109.9804164 22.2700211, 109.9805656822653 22.270183953380318, "
    "109.9806064539141 22.270228431542662, 109.98061379625182 22.270236441365615, "
    "109.98061722646337 22.27024018341459, 109.98061812117558 22.270241159464277, "
    "109.98058325357026 22.270184063684898, 109.9807532426414 22.269914241636997, "
    "109.98108929570488 22.2699163501565, 109.98125928348264 22.269646527521456, "
    "109.98159533595982 22.269648634970075, 109.98176140195261 22.26992056511037, "
    "109.98159141476114 22.270190388285823, 109.98175748134024 22.270462318436046, "
    "109.98209353581785 22.270464424927017, 109.98225960369038 22.27073635460335, "
    "109.98259565887503 22.270738460080004, 109.98276564489375 22.27046863582375, "
    "109.98259957631421 22.270196706631236, 109.98226352242297 22.270194601211156, "
    "109.98209745513682 22.269922671544734, 109.9822674410349 22.2696528477822, "
    "109.9826034936328 22.269654953145693, 109.98277347823753 22.26938512879611, "
    "109.98260741083075 22.269113199623387, 109.98277739472853 22.26884337522714, "
    "109.98311344544672 22.26884547946326, 109.98327951356043 22.269117408152173, "
    "109.98361556498554 22.269119511374033, 109.98378554700363 22.26884968585045, "
    "109.98361947818303 22.268577757645346, 109.98328342805121 22.268575654480006, "
    "109.98311736052386 22.268303725800976, 109.98328734242145 22.268033900771076, "
    "109.98362339126002 22.2680360038799, 109.98378945949423 22.268307932075135, "
    "109.98412550903966 22.268310034169723, 109.98429548905762 22.26804020801258, "
    "109.98412942011655 22.26776828030114, 109.98379337186437 22.267766178263045, "
    "109.98362730421653 22.26749425007768, 109.98329125667117 22.267492147025376, "
    "109.98312127548047 22.267761972101926, 109.98278522734878 22.267759867978906, "
    "109.98261916170102 22.267487938835885, 109.9826066974041 22.26748786075448)))",
    # 68: 450923001003016
    "MULTIPOLYGON (((109.9877789508941 22.26893710876026, 109.98777935018894 "
    "22.26887464089556, 109.98777937273239 22.268871114075335, 109.98777943859305 "
    "22.268860810473697, 109.98777975073554 22.26881197719985, 109.98778194300355 "
    "22.268469006834756, 109.98778200594444 22.26845916001906, 109.98778221475501 "
    "22.26842649255532, 109.98778240933929 22.268396050729333, 109.9877831 22.268288, "
    "109.98778321541282 22.268269514712888, 109.9877855 22.2679036, 109.9877586717089 "
    "22.267898165903492, 109.98716028482133 22.26777696205624, 109.98715657324294 "
    "22.26777621027242, 109.98714935922283 22.267774749065616, 109.98712164064786 "
    "22.267769134641238, 109.98676380898671 22.267696655489537, 109.9866722 22.2676781, "
    "109.9863999 22.2676229, 109.98626272483646 22.267595122953747, 109.9858063 22.2675027, "
    "109.98566432329906 22.267473941333613, 109.98546247534078 22.267433055201906, "
    "109.98534062698047 22.267408373713174, 109.98528202875258 22.2673965041115, "
    "109.98523570085928 22.267387119977204, 109.98530754254541 22.26750475491468, "
    "109.9851375651139 22.267774582245572, 109.98480151674134 22.267772482292404, "
    "109.98463153801661 22.268042309036442, 109.98479760825091 22.26831423627391, "
    "109.9851336579167 22.26831633628351, 109.98530363605498 22.26804650899921, "
    "109.98563968513432 22.268048607938116, 109.98580575736862 22.26832053421773, "
    "109.98563577981685 22.268590362042286, 109.98580185263768 22.268862288331718, "
    "109.98613790371702 22.268864386312714, 109.98630397783116 22.269136312128065, "
    "109.98664002961725 22.269138409094715, 109.9868100059959 22.268868580189647, "
    "109.9871460571954 22.26887067608559, 109.98731213330954 22.269142600942928, "
    "109.98764818521573 22.269144695824494, 109.9877789508941 22.26893710876026)))",
    # 70: 450923001003018
    "MULTIPOLYGON (((109.98281352753907 22.27263604743545, 109.982863 22.27269, 109.983041 "
    "22.2728843, 109.98317559978312 22.273031126521303, 109.98326021781673 "
    "22.273123431064644, 109.9834508260677 22.27333135373562, 109.98347371067482 "
    "22.2733563171284, 109.98356271374577 22.273453405035898, 109.98358047394947 "
    "22.273472778536114, 109.98358477091651 22.27347746582986, 109.98359795419374 "
    "22.273491846646024, 109.98362700154641 22.273523532594144, 109.98381247773882 "
    "22.273725857022043, 109.9839327 22.273857, 109.98412294848832 22.273787428118744, "
    "109.98467026824332 22.27358727901196, 109.98459244062761 22.273459846730983, "
    "109.98476242642128 22.273190020453033, 109.9845963509082 22.272918093126986, "
    "109.98476633599489 22.272648266802424, 109.98460026106842 22.272376339486215, "
    "109.98426420176226 22.272374238010627, 109.98409421608899 22.27264406379479, "
    "109.98375815619626 22.272641961248258, 109.98358816922942 22.272911786445377, "
    "109.98325210875014 22.272909682827862, 109.98308603653129 22.27263775406976, "
    "109.98281352753907 22.27263604743545)))",
    # 105: 450923001005008
    "MULTIPOLYGON (((109.9858063 22.2675027, 109.9863999 22.2676229, 109.9866722 "
    "22.2676781, 109.9868255 22.2666809, 109.985821 22.2659626, 109.9846422 22.2661028, "
    "109.9842823 22.267194, 109.9858063 22.2675027)))",
]
_BUG_BOUNDS = (109.9183073, 22.1947954, 110.0528082, 22.3173748)
_BUG_CELL = 9.079383134734612e-05  # the default cell size of the original 430-grid layer
_BUG_POINTS = [
    (109.983328082192, 22.2730944014501, 6),
    (109.983321835428, 22.2730684080756, 6),
    (109.983377745212, 22.2731223562244, 6),
    (109.981752524844, 22.2683756857463, 0),
    (109.983343596425, 22.2730702097663, 6),
    (109.982731762923, 22.2726747150707, 2),
    (109.983368832399, 22.2731458321373, 6),
    (109.981693083646, 22.2683836921007, 0),
    (109.980535489996, 22.269702027194, 1),
    (109.983377028165, 22.2731270080535, 6),
    (109.983322460583, 22.2730683235087, 6),
    (109.983321887235, 22.2731132442658, 6),
    (109.983318145857, 22.2730690753592, 6),
    (109.982733117007, 22.2726511859724, 2),
    (109.983362901229, 22.2730816762638, 6),
    (109.980578559668, 22.2697052889641, 1),
    (109.982693130233, 22.2726139801813, 2),
    (109.983376448188, 22.2731048507152, 6),
    (109.983365475703, 22.2731500250686, 6),
    (109.981722009726, 22.2683903442347, 0),
    (109.983361093186, 22.2730800220295, 6),
    (109.9833773454, 22.2731252942865, 6),
    (109.983376744747, 22.2731060603309, 6),
    (109.983367560498, 22.2730868379184, 6),
    (109.983378013613, 22.2731165809477, 6),
    (109.983359807938, 22.2730789414856, 6),
    (109.983378017047, 22.2731170210798, 6),
    (109.983345502004, 22.2730708550149, 6),
    (109.98334861764, 22.2730721029895, 6),
    (109.983355732032, 22.2730759647039, 6),
    (109.983367064514, 22.2730862141182, 6),
    (109.983344394246, 22.273070469372, 6),
    (109.986278318512, 22.2676072699239, 5),
    (109.983346703423, 22.2730713071516, 6),
    (109.98337786321, 22.2731210791415, 6),
]


def _bug_grids() -> np.ndarray:
    x0, y0, x1, y1 = _BUG_BOUNDS
    d = 1e-4
    specks = [
        Polygon([(x0, y0), (x0 + d, y0), (x0, y0 + d)]),
        Polygon([(x1, y1), (x1 - d, y1), (x1, y1 - d)]),
    ]
    return np.array([*shapely.from_wkt(_BUG_GRIDS_WKT), *specks], dtype=object)


def _stress_points(geoms, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points over the grids' bounding box plus points hugging their boundaries.

    Near-boundary points: on random segments, moved off them by 1e-12 .. 1e-2 of the
    bounding box size (both sides), and the vertices themselves.
    """
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    size = max(x1 - x0, y1 - y0)
    ux = rng.uniform(x0 - 0.05 * size, x1 + 0.05 * size, n)
    uy = rng.uniform(y0 - 0.05 * size, y1 + 0.05 * size, n)
    xy = shapely.get_coordinates(shapely.boundary(geoms))
    i = rng.integers(0, len(xy) - 1, n)
    t = rng.uniform(size=n)
    off = size * 10.0 ** rng.uniform(-12, -2, n) * rng.choice([-1, 1], n)
    ang = rng.uniform(0, 2 * np.pi, n)
    ex = xy[i, 0] + (xy[i + 1, 0] - xy[i, 0]) * t + off * np.cos(ang)
    ey = xy[i, 1] + (xy[i + 1, 1] - xy[i, 1]) * t + off * np.sin(ang)
    return np.r_[ux, ex, xy[:, 0]], np.r_[uy, ey, xy[:, 1]]


_CONFIGS = (
    {},
    dict(factors=(4, 4), split_levels=1),
    dict(factors=(2, 2, 2)),
)


def _assert_exact(geoms, x, y, **kw) -> None:
    got = GridLocator(geoms, **kw).locate(x, y)
    ref = brute(geoms, x, y)
    diff = np.flatnonzero(got != ref)
    off = diff[~on_edge(geoms, x[diff], y[diff])]
    assert off.size == 0, f"{off.size} off-edge disagreements with GEOS ({kw})"
    assert diff.size == 0, f"{diff.size} on-edge disagreements with GEOS ({kw})"


def test_reproducer_auto_partition_layer():
    geoms = _bug_grids()
    pts = np.array(_BUG_POINTS)
    x, y, expected = pts[:, 0], pts[:, 1], pts[:, 2].astype(np.int64)
    assert (brute(geoms, x, y) == expected).all()  # the fixture is faithful
    loc = GridLocator(geoms, cell_size=_BUG_CELL)
    assert loc.locate(x, y).tolist() == expected.tolist()
    # and everywhere around, whatever the raster
    sx, sy = _stress_points(geoms[:8], 20_000, seed=4)
    for cell in (None, _BUG_CELL, 3e-5, 1.5e-4, 4e-4):
        _assert_exact(geoms, np.r_[x, sx], np.r_[y, sy], cell_size=cell)


def _to_lonlat(geoms, s: float = 1 / 64):
    """Scale and shift to Yulin-like lon/lat, exactly (powers of two, 109.5 / 22.25)."""
    return shapely.transform(np.asarray(geoms, dtype=object), lambda c: c * s + (109.5, 22.25))


@pytest.fixture(params=["square", "diagonal", "diagonal-rotated", "holes-and-gap"])
def tjunction_grids(request) -> np.ndarray:
    """Hand-made coverages whose shared edges are split on one side only."""
    if request.param == "square":
        # a big square next to two small ones: no vertex at (2, 1) on the big one
        geoms = [box(0, 0, 2, 2), box(2, 0, 3, 1), box(2, 1, 3, 2), box(0, 2, 3, 3)]
    else:
        # the diagonal (0,0)-(4,4) of A faces B1, B2 (split at (2,2)) and a collinear
        # vertex at (1,1) and a duplicated one at (3,3) that A lacks
        a = Polygon([(0, 0), (4, 4), (0, 4)])
        b1 = Polygon([(0, 0), (4, 0), (2, 2), (1, 1)])
        b2 = Polygon([(4, 0), (4, 4), (3, 3), (3, 3), (2, 2)])
        c = Polygon([(0, 4), (4, 4), (6, 6), (0, 6)])  # T-vertex (4,4) on nothing: fine
        geoms = [a, b1, b2, c]
        if request.param == "diagonal-rotated":
            # rotated: the T-vertices are no longer exactly on A's edge (slivers)
            geoms = [shapely.affinity.rotate(g, 17.0, origin=(0, 0)) for g in geoms]
        elif request.param == "holes-and-gap":
            # a hole in A filled by a grid whose edges carry extra collinear vertices,
            # and a hole left empty (a gap inside the coverage)
            hole = [(0.5, 2.5), (1.5, 2.5), (1.5, 3.5), (0.5, 3.5)]
            gap = [(0.5, 1.0), (0.7, 1.0), (0.7, 1.2), (0.5, 1.2)]
            geoms[0] = Polygon(a.exterior.coords, [hole[::-1]])
            geoms[0] = geoms[0].difference(Polygon(gap))
            filler = Polygon(
                [(0.5, 2.5), (1.0, 2.5), (1.5, 2.5), (1.5, 3.0), (1.5, 3.5), (0.5, 3.5)]
            )
            geoms.append(filler)
    geoms = _to_lonlat(geoms)
    assert shapely.is_valid(geoms).all()
    return geoms


@pytest.mark.parametrize("kw", _CONFIGS)
def test_tjunctions_match_geos(tjunction_grids, kw):
    x, y = _stress_points(tjunction_grids, 20_000, seed=7)
    for cell in (None, 1e-3, 3.3e-3):
        _assert_exact(tjunction_grids, x, y, cell_size=cell, **kw)


def test_tjunction_long_edge_both_sides():
    """Points just off a long T-junction edge, on both sides, all along it."""
    big_left = [box(0, 0, 2, 2), box(2, 0, 3, 1), box(2, 1, 3, 2)]
    a = Polygon([(0, 0), (4, 4), (0, 4)])
    diagonal = [a, Polygon([(0, 0), (4, 0), (2, 2)]), Polygon([(4, 0), (4, 4), (2, 2)])]
    t = np.linspace(0, 1, 4001)[1:-1]
    for geoms, (ax, ay, bx, by) in ((big_left, (2, 0, 2, 2)), (diagonal, (0, 0, 4, 4))):
        geoms = _to_lonlat(geoms)
        nx, ny = by - ay, ax - bx  # normal (pointing right of a -> b)
        norm = np.hypot(nx, ny)
        x, y = [], []
        for d in (1e-9, 1e-6, 1e-4, 1e-3, 1e-2):
            for sign in (-1, 1):
                x.append((ax + (bx - ax) * t + sign * d * nx / norm) / 64 + 109.5)
                y.append((ay + (by - ay) * t + sign * d * ny / norm) / 64 + 22.25)
        x, y = np.concatenate(x), np.concatenate(y)
        for cell in (None, 1e-3, 2.7e-3, 1e-2):
            _assert_exact(geoms, x, y, cell_size=cell)


def hexagon_coverage(n_side: int, n_groups: int, seed: int, split: bool) -> np.ndarray:
    """Hexagon cells merged into ``n_groups`` connected communities (coverage_union).

    With ``split`` the coverage gets T-junctions and degenerate vertices like an
    auto-partition layer: some communities get extra (near-)collinear vertices on their
    edges (``segmentize``) that their neighbours lack, some repeated vertices, one is
    dropped (a gap), and one single hexagon sits inside a community (a hole).
    """
    rng = np.random.default_rng(seed)
    r = 1.0
    w, h = np.sqrt(3) * r, 1.5 * r
    ij = [(i, j) for j in range(n_side) for i in range(n_side)]
    centres = np.array([(i * w + (j % 2) * w / 2, j * h) for i, j in ij])
    # vertices from integer lattice coordinates (units w/2, r/2): neighbours share them
    du, dv = np.array([1, 0, -1, -1, 0, 1]), np.array([1, 2, 1, -1, -2, -1])
    hexes = [Polygon(np.c_[(2 * i + j % 2 + du) * (w / 2), (3 * j + dv) * (r / 2)]) for i, j in ij]
    # neighbours: centres at distance w
    tree = shapely.STRtree(shapely.points(centres))
    pi, qi = tree.query(shapely.points(centres), predicate="dwithin", distance=w * 1.01)
    nbrs = [[] for _ in hexes]
    for p, q in zip(pi.tolist(), qi.tolist(), strict=True):
        if p != q:
            nbrs[p].append(q)
    # grow communities from random seeds (BFS in random order), like a graph partition
    group = np.full(len(hexes), -1)
    frontier = list(rng.choice(len(hexes), n_groups, replace=False))
    for k, s in enumerate(frontier):
        group[s] = k
    while frontier:
        k = int(rng.integers(len(frontier)))
        p = frontier[k]
        free = [q for q in nbrs[p] if group[q] < 0]
        if not free:
            frontier.pop(k)
            continue
        q = free[int(rng.integers(len(free)))]
        group[q] = group[p]
        frontier.append(q)
    if split:
        # one hexagon inside a community becomes its own grid (a hole in the community)
        inner = [
            p
            for p in range(len(hexes))
            if all(group[q] == group[p] for q in nbrs[p]) and len(nbrs[p]) == 6
        ]
        if inner:
            group[inner[0]] = n_groups
    geoms = []
    for k in range(group.max() + 1):
        members = [hexes[p] for p in np.flatnonzero(group == k)]
        geoms.append(shapely.coverage_union_all(members))
    geoms = np.array(geoms, dtype=object)
    if split:
        for k in rng.choice(len(geoms), len(geoms) // 3, replace=False):
            geoms[k] = shapely.segmentize(geoms[k], r * rng.uniform(0.2, 0.6))
        for k in rng.choice(len(geoms), len(geoms) // 4, replace=False):
            # repeat a few vertices of the exterior ring (valid for GEOS)
            g = geoms[k]
            part = g if g.geom_type == "Polygon" else max(g.geoms, key=lambda p: p.area)
            xy = np.asarray(part.exterior.coords)
            rep = np.sort(rng.choice(len(xy) - 1, 3, replace=False))
            xy = np.insert(xy, rep, xy[rep], axis=0)
            new = Polygon(xy, [ring.coords for ring in part.interiors])
            geoms[k] = (
                new
                if g.geom_type == "Polygon"
                else MultiPolygon([new if p is part else p for p in g.geoms])
            )
        geoms = np.delete(geoms, int(rng.integers(len(geoms))))  # a gap
        # shuffle positions (the lowest-position rule on shared edges)
        geoms = geoms[rng.permutation(len(geoms))]
    # to lon/lat, a rotation so that no edge is axis-aligned
    rot = np.deg2rad(rng.uniform(0, 60))
    m = np.array([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]]) * 0.01
    return shapely.transform(geoms, lambda c: c @ m.T + (109.9, 22.3))


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_points_on_hexagon_partitions(seed, split):
    geoms = hexagon_coverage(14, 9, seed=seed, split=split)
    assert shapely.is_valid(geoms).all()
    x, y = _stress_points(geoms, 30_000, seed=seed)
    for kw in ({}, dict(cell_size=0.004), dict(cell_size=0.01, factors=(4, 4, 2))):
        _assert_exact(geoms, x, y, **kw)


@pytest.mark.parametrize("eps", [1e-7, -1e-7, 1e-13])
def test_rounded_tjunction_vertex(eps):
    """The neighbours' T-vertex is rounded off the long edge (a sliver overlap or gap).

    The long edge x = 2 of the square has no reversed twin, yet grids lie on its far
    side: with the raster aligned on x = 2, a cell can be crossed by that edge alone
    while the neighbours' own edges (bent by ``eps``) stay outside it.
    """
    geoms = np.array(
        [
            box(0, 0, 2, 2),
            Polygon([(2, 0), (3, 0), (3, 1), (2 - eps, 1)]),
            Polygon([(2 - eps, 1), (3, 1), (3, 2), (2, 2)]),
        ],
        dtype=object,
    )
    rng = np.random.default_rng(3)
    x = np.r_[rng.uniform(-0.5, 3.5, 50_000), rng.uniform(1.99, 2.01, 50_000)]
    y = np.r_[rng.uniform(-0.5, 2.5, 50_000), rng.uniform(-0.1, 2.1, 50_000)]
    for cell in (None, 0.25, 0.5):  # cell lines at x0 + k * cell = -2 * cell + k * cell
        _assert_exact(geoms, x, y, cell_size=cell)
        _assert_exact(geoms, x, y, cell_size=cell, factors=(4,), split_levels=1)
