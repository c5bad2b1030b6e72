"""Plan edits keep the community partition exact (geogrid.core.plans.edits).

A synthetic Voronoi community in central Yulin (clipped on the 1e-7 degree precision grid
like the demo) is edited with random split lines, merges, edge moves and reassignments
(hypothesis); after every edit the grids must still partition the community: valid
coverage (``shapely.coverage_is_valid``), no finding from ``geogrid.core.validation``, union
equal to the community. Edits that would break it are refused with their reason.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geogrid.core.plans.edits import (
    GRID_SIZE,
    Coverage,
    apply_edit,
    check_community,
    rebuild_community,
)
from geogrid.core.validation import validate_units
from geogrid.errors import InvalidInput, TopologyError

COMMUNITY = "450902001001"


def voronoi_community(
    seed: int = 0,
    n: int = 8,
    code: str = COMMUNITY,
    center: tuple[float, float] = (110.15, 22.63),
    radius: float = 0.008,
) -> Coverage:
    """A random star-shaped community (~1.5 km across) cut into ``n`` Voronoi grids."""
    rng = np.random.default_rng(seed)
    ang = np.sort(rng.uniform(0, 2 * np.pi, 14))
    r = rng.uniform(0.75 * radius, 1.1 * radius, 14)
    cx, cy = center
    comm = shapely.set_precision(
        shapely.Polygon(np.c_[cx + r * np.cos(ang), cy + r * np.sin(ang)]), GRID_SIZE
    )
    pts = np.c_[cx + rng.uniform(-0.7, 0.7, n) * radius, cy + rng.uniform(-0.7, 0.7, n) * radius]
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=shapely.buffer(comm, radius))
    )
    cells = shapely.intersection(cells, comm)
    cells = [c for c in cells if not c.is_empty]
    geoms = rebuild_community(comm, cells, absorb_m2=100.0)[2]
    communities = gpd.GeoDataFrame(
        {"code": [code], "name": ["测试社区"], "parent_code": [code[:9]]},
        geometry=[comm],
        crs="EPSG:4326",
    )
    grids = gpd.GeoDataFrame(
        {
            "code": [f"{code}{i + 1:03d}" for i in range(len(geoms))],
            "name": [f"第{i + 1}网格" for i in range(len(geoms))],
            "parent_code": code,
        },
        geometry=list(geoms),
        crs="EPSG:4326",
    )
    return Coverage(communities, grids, frozenset(grids["code"]))


def assert_partition(cov: Coverage, community: str = COMMUNITY) -> None:
    grids = cov.grids_of(community)
    geoms = np.asarray(grids.geometry.array, dtype=object)
    assert bool(shapely.coverage_is_valid(geoms))
    assert check_community(cov, community) == []
    comm = cov.community_geom(community)
    union = shapely.coverage_union_all(geoms)
    # (two one-sided differences: a symmetric difference of two nearly equal polygons is
    # the worst case for GEOS's overlay and may fall back to snapping)
    assert shapely.area(shapely.difference(union, comm)) < 1e-14  # deg², ~1e-4 m²
    assert shapely.area(shapely.difference(comm, union)) < 1e-14
    assert abs(shapely.area(union) - shapely.area(comm)) < 1e-14
    assert grids["code"].is_unique
    assert validate_units(grids, level="grid", parents=cov.communities) == []


@pytest.fixture(scope="module")
def cov() -> Coverage:
    c = voronoi_community()
    assert_partition(c)
    return c


def _line_through(geom, angle: float, frac: float, length: float = 0.05) -> shapely.LineString:
    """A long straight line through a point of ``geom`` (frac picks the point)."""
    minx, miny, maxx, maxy = geom.bounds
    p = shapely.point_on_surface(geom)
    x = p.x + (frac - 0.5) * 0.5 * (maxx - minx)
    y = p.y
    if not shapely.intersects_xy(geom, x, y):
        x = p.x
    dx, dy = np.cos(angle) * length, np.sin(angle) * length
    return shapely.LineString([(x - dx, y - dy), (x + dx, y + dy)])


def test_split_keeps_partition_and_codes(cov: Coverage) -> None:
    code = cov.grids["code"].iloc[0]
    g = cov.grids.geometry.iloc[0]
    out, res = apply_edit(
        cov,
        "split",
        {
            "code": code,
            "line": shapely.to_geojson(_line_through(g, 0.3, 0.5)),
            "new_name": "新网格",
        },
    )
    assert_partition(out)
    assert res.modified == [code] and len(res.added) == 1
    assert res.added[0] not in cov.grids["code"].tolist()
    assert len(out.grids) == len(cov.grids) + 1
    assert out.grids.loc[out.grids["code"] == res.added[0], "name"].item() == "新网格"
    # neighbours share the new vertices exactly: the coverage is valid (no invalid edges)
    assert all(
        e is None or e.is_empty
        for e in shapely.coverage_invalid_edges(np.asarray(out.grids.geometry.array))
    )
    assert len(cov.grids) == 8  # input not changed


def test_split_refused_when_the_line_does_not_cut(cov: Coverage) -> None:
    code = cov.grids["code"].iloc[0]
    c = shapely.point_on_surface(cov.grids.geometry.iloc[0])
    stub = shapely.LineString([(c.x, c.y), (c.x + 1e-5, c.y)])
    with pytest.raises(TopologyError, match="does not cut grid") as exc:
        apply_edit(cov, "split", {"code": code, "line": shapely.to_wkt(stub)})
    assert exc.value.findings[0]["kind"] == "no_cut"


def test_split_refused_when_it_leaves_a_sliver(cov: Coverage) -> None:
    code = cov.grids["code"].iloc[0]
    g = cov.grids.geometry.iloc[0]
    # a line hugging the grid's boundary 5 mm inside leaves a sliver part
    ring = shapely.get_exterior_ring(shapely.get_parts(g)[0])
    a, b = shapely.get_coordinates(ring)[:2]
    d = (b - a) / np.linalg.norm(b - a)
    nrm = np.array([-d[1], d[0]]) * 5e-8
    line = shapely.LineString([a - d * 1e-2 + nrm, b + d * 1e-2 + nrm])
    with pytest.raises(TopologyError) as exc:
        apply_edit(cov, "split", {"code": code, "line": shapely.to_wkt(line)})
    assert "refused" in str(exc.value)


def test_merge_and_refusals(cov: Coverage) -> None:
    geoms = np.asarray(cov.grids.geometry.array)
    codes = cov.grids["code"].tolist()
    touching = [
        (i, j)
        for i in range(len(codes))
        for j in range(i + 1, len(codes))
        if shapely.length(shapely.intersection(geoms[i].boundary, geoms[j].boundary)) > 0
    ]
    apart = [
        (i, j)
        for i in range(len(codes))
        for j in range(i + 1, len(codes))
        if not shapely.intersects(geoms[i], geoms[j])
    ]
    i, j = touching[0]
    out, res = apply_edit(cov, "merge", {"codes": [codes[i], codes[j]]})
    assert_partition(out)
    assert res.removed == [codes[j]] and res.modified == [codes[i]]
    assert shapely.get_num_geometries(out.grids.geometry[out.grids["code"] == codes[i]].item()) == 1
    i, j = apart[0]
    with pytest.raises(TopologyError, match="share no edge"):
        apply_edit(cov, "merge", {"codes": [codes[i], codes[j]]})
    with pytest.raises(InvalidInput, match="params.codes"):
        apply_edit(cov, "merge", {"codes": [codes[0]]})


def test_move_edge_and_reassign(cov: Coverage) -> None:
    geoms = np.asarray(cov.grids.geometry.array)
    codes = cov.grids["code"].tolist()
    i, j = next(
        (i, j)
        for i in range(len(codes))
        for j in range(i + 1, len(codes))
        if shapely.length(shapely.intersection(geoms[i].boundary, geoms[j].boundary)) > 0
    )
    shared = shapely.line_merge(shapely.intersection(geoms[i].boundary, geoms[j].boundary))
    # the same edge moved 5 m into b (a parallel offset), extended past the union
    moved = shapely.offset_curve(shared, 5e-5)
    half = shapely.line_interpolate_point(moved, 0.5, normalized=True)
    if not shapely.intersects(geoms[j], half):
        moved = shapely.offset_curve(shared, -5e-5)
    xy = shapely.get_coordinates(moved)
    d0 = (xy[0] - xy[1]) / np.linalg.norm(xy[0] - xy[1])
    d1 = (xy[-1] - xy[-2]) / np.linalg.norm(xy[-1] - xy[-2])
    line = shapely.LineString(np.vstack([xy[0] + d0 * 3e-4, xy, xy[-1] + d1 * 3e-4]))
    cj = np.array(shapely.get_coordinates(shapely.point_on_surface(geoms[j]))[0])
    mid = shapely.get_coordinates(shapely.line_interpolate_point(shared, 0.5, normalized=True))[0]
    out, res = apply_edit(
        cov, "move_edge", {"a": codes[i], "b": codes[j], "line": shapely.to_wkt(line)}
    )
    assert_partition(out)
    ga = out.grids.geometry[out.grids["code"] == codes[i]].item()
    assert shapely.area(ga) > shapely.area(geoms[i])
    # the other grids keep their area (a neighbour may gain a vertex where the new line
    # meets its edge: floating noding puts it within ~1e-15 degrees of that edge)
    others = [c for c in codes if c not in (codes[i], codes[j])]
    for c in others:
        before = cov.grids.geometry[cov.grids["code"] == c].item()
        after = out.grids.geometry[out.grids["code"] == c].item()
        assert shapely.area(shapely.symmetric_difference(before, after)) < 1e-14  # deg², ~1e-4 m²
    # reassign a block of j near the shared edge to i
    block = shapely.buffer(shapely.Point(*(mid + (cj - mid) * 0.1)), 0.0004)
    out2, res2 = apply_edit(
        out, "reassign", {"polygon": shapely.to_geojson(block), "from": codes[j], "to": codes[i]}
    )
    assert_partition(out2)
    assert res2.modified == sorted([codes[i], codes[j]])
    # a block not touching the receiving grid would split it: refused
    far = next(k for k in range(len(codes)) if not shapely.intersects(geoms[k], geoms[i]))
    inner = shapely.buffer(shapely.point_on_surface(geoms[far]), 0.0002)
    with pytest.raises(TopologyError, match="separate parts|refused"):
        apply_edit(
            cov, "reassign", {"polygon": shapely.to_wkt(inner), "from": codes[far], "to": codes[i]}
        )


def test_rename_recode(cov: Coverage) -> None:
    code = cov.grids["code"].iloc[2]
    out, res = apply_edit(
        cov, "rename", {"code": code, "new_code": f"{COMMUNITY}050", "new_name": "东门"}
    )
    assert res.removed == [code] and res.added == [f"{COMMUNITY}050"]
    assert out.grids.loc[out.grids["code"] == f"{COMMUNITY}050", "name"].item() == "东门"
    with pytest.raises(InvalidInput, match="3 digits"):
        apply_edit(cov, "rename", {"code": code, "new_code": "999"})
    with pytest.raises(InvalidInput, match="not used"):
        apply_edit(cov, "rename", {"code": code, "new_code": cov.grids["code"].iloc[0]})
    with pytest.raises(InvalidInput, match="kind"):
        apply_edit(cov, "explode", {})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 5),
    ops=st.lists(
        st.tuples(
            st.sampled_from(["split", "merge"]),
            st.integers(0, 50),
            st.floats(0, np.pi),
            st.floats(0.05, 0.95),
        ),
        min_size=1,
        max_size=5,
    ),
)
def test_random_edits_keep_the_partition(seed: int, ops: list) -> None:
    cov = voronoi_community(seed=seed)
    for kind, pick, angle, frac in ops:
        codes = cov.grids["code"].tolist()
        code = codes[pick % len(codes)]
        geom = cov.grids.geometry[cov.grids["code"] == code].item()
        if kind == "split":
            params = {"code": code, "line": shapely.to_wkt(_line_through(geom, angle, frac))}
        else:
            geoms = np.asarray(cov.grids.geometry.array)
            nb = [
                c
                for c, g in zip(codes, geoms, strict=True)
                if c != code and shapely.length(shapely.intersection(g.boundary, geom.boundary)) > 0
            ]
            if not nb:
                continue
            params = {"codes": [code, nb[pick % len(nb)]]}
        try:
            new, _ = apply_edit(cov, kind, params)
        except TopologyError as exc:  # refused edits must say why and change nothing
            assert "refused" in str(exc)
            continue
        assert_partition(new)
        cov = new


# --------------------------------------------------------------------------- snapping

_M_LON = 111_320.0 * np.cos(np.radians(22.63))  # metres per degree of longitude here
_M_LAT = 110_574.0
_D = 500 / _M_LAT  # 500 m squares


def square_community(code: str = COMMUNITY) -> Coverage:
    """A 1 km square community at (110.15, 22.63) cut into four 500 m square grids."""
    x0, y0 = 110.15, 22.63
    dx = 500 / _M_LON
    xs, ys = [x0, x0 + dx, x0 + 2 * dx], [y0, y0 + _D, y0 + 2 * _D]
    cells = [shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for j in range(2) for i in range(2)]
    comm = shapely.box(xs[0], ys[0], xs[2], ys[2])
    communities = gpd.GeoDataFrame(
        {"code": [code], "name": ["方社区"], "parent_code": [code[:9]]},
        geometry=[comm],
        crs="EPSG:4326",
    )
    grids = gpd.GeoDataFrame(
        {
            "code": [f"{code}{i + 1:03d}" for i in range(4)],
            "name": list("ABCD"),
            "parent_code": code,
        },
        geometry=[shapely.MultiPolygon([c]) for c in cells],
        crs="EPSG:4326",
    )
    return Coverage(communities, grids, frozenset(grids["code"]))


def _off(xy: tuple[float, float], east_m: float, north_m: float) -> list[float]:
    return [xy[0] + east_m / _M_LON, xy[1] + north_m / _M_LAT]


def _near_miss_vertices(geoms, corners: np.ndarray, within_m: float = 1.0) -> int:
    """Vertices of ``geoms`` closer than ``within_m`` to a corner without being on it."""
    pts = np.concatenate([shapely.get_coordinates(g) for g in geoms])
    d = np.hypot(
        (pts[:, None, 0] - corners[None, :, 0]) * _M_LON,
        (pts[:, None, 1] - corners[None, :, 1]) * _M_LAT,
    )
    return int(((d > 0) & (d < within_m)).sum())


def test_split_snaps_a_vertex_half_a_metre_from_a_corner() -> None:
    cov = square_community()
    sw = cov.grids.geometry.iloc[0]
    corners = np.unique(
        np.concatenate([shapely.get_coordinates(g) for g in cov.grids.geometry]), axis=0
    )
    xmin, ymin, xmax, ymax = sw.bounds
    # the diagonal of grid 001 from its south-west corner to the community's centre,
    # drawn by hand: each end 0.5 m from the vertex it aims at (one outside, one inside)
    line = {
        "type": "LineString",
        "coordinates": [_off((xmin, ymin), -0.3, -0.4), _off((xmax, ymax), 0.3, 0.4)],
    }
    code = cov.grids["code"].iloc[0]
    out, res = apply_edit(cov, "split", {"code": code, "line": line, "snap_m": 1.0})
    pieces = out.grids[out.grids["code"].isin([code, *res.added])].geometry
    assert len(pieces) == 2
    # exact halves: the cut runs corner to corner, no sliver, no extra vertex
    assert np.allclose(shapely.area(pieces.values), shapely.area(sw) / 2, rtol=1e-9)
    assert _near_miss_vertices(out.grids.geometry, corners) == 0
    for g in pieces:
        assert len(shapely.get_coordinates(shapely.normalize(g))) == 4  # a closed triangle
    assert bool(shapely.coverage_is_valid(np.asarray(out.grids.geometry.array, dtype=object)))
    assert check_community(out, COMMUNITY) == []
    # the neighbours are untouched
    for c in cov.grids["code"].iloc[1:]:
        a = cov.grids.geometry[cov.grids["code"] == c].iloc[0]
        b = out.grids.geometry[out.grids["code"] == c].iloc[0]
        assert shapely.equals(a, b)
    # without snapping the same hand-drawn line leaves vertices a fraction of a metre
    # from the corners
    raw, _ = apply_edit(cov, "split", {"code": code, "line": line, "snap_m": 0})
    assert _near_miss_vertices(raw.grids.geometry, corners) > 0


def test_split_snaps_an_end_short_of_the_edge() -> None:
    cov = square_community()
    sw = cov.grids.geometry.iloc[0]
    xmin, ymin, xmax, ymax = sw.bounds
    xm = (xmin + xmax) / 2
    # a north-south cut whose ends stop 0.5 m short of the south and north edges
    line = {
        "type": "LineString",
        "coordinates": [_off((xm, ymin), 0, 0.5), _off((xm, ymax), 0, -0.5)],
    }
    code = cov.grids["code"].iloc[0]
    with pytest.raises(TopologyError, match="does not cut"):
        apply_edit(cov, "split", {"code": code, "line": line})
    out, res = apply_edit(cov, "split", {"code": code, "line": line, "snap_m": 1.0})
    pieces = out.grids[out.grids["code"].isin([code, *res.added])].geometry.values
    assert np.allclose(shapely.area(pieces), shapely.area(sw) / 2, rtol=1e-6)
    assert check_community(out, COMMUNITY) == []


def test_move_edge_snaps_to_the_shared_vertices() -> None:
    cov = square_community()
    a, b = cov.grids["code"].iloc[0], cov.grids["code"].iloc[1]
    ga = cov.grids.geometry.iloc[0]
    xmin, ymin, xmax, ymax = ga.bounds
    # reshape the shared edge (x = xmax) by dragging its middle 100 m east; the ends
    # drawn 0.5 m off the edge's end vertices
    line = {
        "type": "LineString",
        "coordinates": [
            _off((xmax, ymin), 0.4, -0.3),
            _off((xmax, (ymin + ymax) / 2), 100, 0),
            _off((xmax, ymax), -0.4, 0.3),
        ],
    }
    out, _ = apply_edit(cov, "move_edge", {"a": a, "b": b, "line": line, "snap_m": 1.0})
    corners = np.unique(
        np.concatenate([shapely.get_coordinates(g) for g in cov.grids.geometry]), axis=0
    )
    assert _near_miss_vertices(out.grids.geometry, corners) == 0
    assert check_community(out, COMMUNITY) == []
    with pytest.raises(InvalidInput, match="snap_m"):
        apply_edit(cov, "move_edge", {"a": a, "b": b, "line": line, "snap_m": float("nan")})
