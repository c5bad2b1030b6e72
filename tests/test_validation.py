"""Tests of geogrid.core.validation on crafted layers in real Yulin coordinates (see shapes.py)."""

from __future__ import annotations

import json
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import shapes
from shapes import COMMUNITY, GRIDS, STREET, bowtie, layer, square

from geogrid.core.validation import (
    KINDS,
    Finding,
    findings_frame,
    findings_geojson,
    repair,
    validate_hierarchy,
    validate_outline,
    validate_units,
)
from geogrid.errors import InvalidInput

REL = 1e-3


def community_layer(shape=shapes.COMMUNITY_SQUARE) -> gpd.GeoDataFrame:
    return layer("community", [(COMMUNITY, STREET, shape)])


def grid_layer(squares, codes=GRIDS, parent=COMMUNITY) -> gpd.GeoDataFrame:
    codes = codes[: len(squares)]
    return layer("grid", [(c, parent, g) for c, g in zip(codes, squares, strict=True)])


def only(findings: list[Finding], kind: str) -> list[Finding]:
    return [f for f in findings if f.kind == kind]


# --------------------------------------------------------------------------- clean input


def test_clean_2x2_partition_has_no_findings():
    grids = grid_layer(shapes.GRID_SQUARES)
    assert validate_units(grids, parents=community_layer()) == []


def test_clean_hierarchy_has_no_findings():
    assert validate_hierarchy(shapes.clean_hierarchy()) == []


def test_many_voronoi_cells_clipped_to_parent_have_no_findings():
    # 3,000 cells (~90 m across) from a jittered lattice, clipped to a 5 km x 4.5 km parent.
    rng = np.random.default_rng(42)
    nx, ny, step = 60, 50, 90.0
    gx, gy = np.meshgrid(np.arange(nx) * step, np.arange(ny) * step)
    pts = np.column_stack([gx.ravel(), gy.ravel()]) + rng.uniform(-25, 25, (nx * ny, 2))
    parent = shapely.box(-45, -45, nx * step - 45, ny * step - 45)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.MultiPoint(pts), extend_to=parent))
    cells = shapely.intersection(cells, parent)
    assert len(cells) == 3000
    codes = [f"{COMMUNITY}{i:04d}" for i in range(len(cells))]
    grids = layer("grid", [(c, COMMUNITY, g) for c, g in zip(codes, cells, strict=True)])
    start = time.perf_counter()
    findings = validate_units(grids, parents=community_layer(parent))
    elapsed = time.perf_counter() - start
    assert findings == []
    assert elapsed < 10  # ~0.3 s on one core; generous for a loaded CI machine


def test_spike_valid_in_lonlat_but_not_when_projected_gives_no_false_findings():
    spiky = shapely.from_wkt(shapes.SPIKE_GRID_WKT)
    neighbour = shapely.from_wkt(shapes.SPIKE_NEIGHBOUR_WKT)
    assert spiky.is_valid
    projected = gpd.GeoSeries([spiky], crs="EPSG:4326").to_crs("EPSG:4546").iloc[0]
    assert not projected.is_valid  # the case this test is about
    grids = gpd.GeoDataFrame(
        {"code": ["450921001022005", "450921001022010"], "parent_code": "450921001022"},
        geometry=[spiky, neighbour],
        crs="EPSG:4326",
    )
    community = gpd.GeoDataFrame(
        {"code": ["450921001022"]}, geometry=[spiky.union(neighbour)], crs="EPSG:4326"
    )
    assert validate_units(grids, level="grid", parents=community) == []


def test_layer_in_another_crs_gives_the_same_findings():
    squares = [*shapes.GRID_SQUARES[:3], square(300, 200, 200)]
    grids, parents = grid_layer(squares), community_layer()
    expected = validate_units(grids, parents=parents)
    got = validate_units(grids.to_crs("EPSG:4546"), parents=parents.to_crs("EPSG:3857"))
    assert [(f.kind, f.codes) for f in got] == [(f.kind, f.codes) for f in expected]
    for a, b in zip(got, expected, strict=True):
        assert a.area_m2 == pytest.approx(b.area_m2, rel=1e-6)
        assert shapely.hausdorff_distance(a.location, b.location) < 1e-7  # degrees


def test_empty_layer_leaves_its_parents_uncovered():
    grids = grid_layer([])
    assert validate_units(grids) == []
    (f,) = validate_units(grids, parents=community_layer())
    assert (f.kind, f.codes) == ("gap", (COMMUNITY,))
    assert f.area_m2 == pytest.approx(shapes.COMMUNITY_SQUARE.area, rel=REL)


# --------------------------------------------------------------------------- one kind each


def test_invalid_bowtie_reports_geos_reason_and_location():
    code = GRIDS[0]
    grids = layer("grid", [(code, COMMUNITY, bowtie(0, 0, 200, 100))])
    findings = validate_units(grids)
    assert [f.kind for f in findings] == ["invalid_geometry"]
    f = findings[0]
    assert f.codes == (code,)
    assert f.level == "grid"
    assert f.area_m2 == 0.0
    assert f.message.startswith("Self-intersection[")
    # Where the ring crosses itself (the lon/lat segments cross within ~1 mm of the
    # projected metric crossing; 1e-7 degrees is ~1 cm).
    lon, lat = shapes.point_lonlat(100, 50)
    assert f.location.x == pytest.approx(lon, abs=1e-7)
    assert f.location.y == pytest.approx(lat, abs=1e-7)


def test_invalid_units_are_skipped_by_geometric_checks():
    # A bow-tie inside the community next to valid grids: one finding, no crash, and no
    # overlap/gap/not-within computed on the invalid geometry.
    squares = [*shapes.GRID_SQUARES[:3], bowtie(200, 200, 200, 200)]
    findings = validate_units(grid_layer(squares), parents=community_layer(), gap_m2=1e9)
    assert [(f.kind, f.codes) for f in findings] == [("invalid_geometry", (GRIDS[3],))]


def test_non_polygonal_geometry_is_invalid():
    grids = layer("grid", [(GRIDS[0], COMMUNITY, shapely.LineString([(0, 0), (100, 100)]))])
    (f,) = validate_units(grids)
    assert f.kind == "invalid_geometry"
    assert "LineString is not polygonal" in f.message


def test_empty_geometry():
    grids = layer(
        "grid",
        [(GRIDS[0], COMMUNITY, None), (GRIDS[1], COMMUNITY, shapely.Polygon())],
    )
    findings = validate_units(grids)
    assert [(f.kind, f.codes, f.location, f.area_m2) for f in findings] == [
        ("empty_geometry", (GRIDS[0],), None, 0.0),
        ("empty_geometry", (GRIDS[1],), None, 0.0),
    ]


def test_duplicate_code():
    grids = grid_layer(shapes.GRID_SQUARES, codes=(GRIDS[0], GRIDS[1], GRIDS[1], GRIDS[3]))
    findings = validate_units(grids, parents=community_layer())
    assert [(f.kind, f.codes, f.area_m2) for f in findings] == [
        ("duplicate_code", (GRIDS[1],), 0.0)
    ]
    assert "rows [1, 2]" in findings[0].message
    assert findings[0].location.geom_type == "MultiPoint"


def test_orphan_unknown_and_missing_parent():
    grids = layer(
        "grid",
        [
            (GRIDS[0], COMMUNITY, shapes.GRID_SQUARES[0]),
            (GRIDS[1], COMMUNITY, shapes.GRID_SQUARES[1]),
            (GRIDS[2], "450902001999", shapes.GRID_SQUARES[2]),
            (GRIDS[3], None, shapes.GRID_SQUARES[3]),
        ],
    )
    findings = validate_units(grids, parents=community_layer())
    orphans = only(findings, "orphan")
    assert sorted((f.codes, f.area_m2) for f in orphans) == [
        ((GRIDS[2], "450902001999"), 0.0),
        ((GRIDS[3],), 0.0),
    ]
    assert all(f.location.geom_type == "Point" for f in orphans)
    # The community then has its upper half uncovered by its (known) children.
    (gap,) = only(findings, "gap")
    assert gap.codes == (COMMUNITY,)
    assert gap.area_m2 == pytest.approx(shapely.box(0, 200, 400, 400).area, rel=REL)


def test_no_orphan_check_for_districts():
    districts = layer("district", [("450902", None, shapes.COMMUNITY_SQUARE)])
    assert validate_units(districts, parents=districts) == []


def test_not_within_parent_reports_outside_area():
    # The last grid is pushed 100 m east, out of the 400 m community.
    squares = [*shapes.GRID_SQUARES[:3], square(300, 200, 200)]
    findings = validate_units(grid_layer(squares), parents=community_layer())
    (f,) = only(findings, "not_within_parent")
    assert f.codes == (GRIDS[3], COMMUNITY)
    expected = square(300, 200, 200).difference(shapes.COMMUNITY_SQUARE)  # 100 m x 200 m
    assert f.area_m2 == pytest.approx(expected.area, rel=REL)
    assert f.area_m2 == pytest.approx(20_000, rel=REL)
    assert shapely.hausdorff_distance(shapes.metres(f.location), expected) < 0.01  # metres
    # ...which also leaves a 100 m x 200 m gap in the community.
    assert [f.kind for f in findings] == ["not_within_parent", "gap"]
    assert findings[1].codes == (COMMUNITY,)
    assert findings[1].area_m2 == pytest.approx(shapely.box(200, 200, 300, 400).area, rel=REL)


def test_protrusion_within_tolerance_is_not_reported():
    # 0.5 m beyond the community edge along 200 m: 100 m² outside, but within tolerance_m.
    squares = [*shapes.GRID_SQUARES[:3], shapely.box(200, 200, 400.5, 400)]
    findings = validate_units(grid_layer(squares), parents=community_layer())
    assert findings == []
    strict = validate_units(grid_layer(squares), parents=community_layer(), tolerance_m=0.25)
    (f,) = strict
    assert f.kind == "not_within_parent"
    assert f.area_m2 == pytest.approx(0.5 * 200, rel=REL)


def test_overlap_between_siblings():
    # Grid 2 is widened 50 m west into grid 1: 50 m x 200 m shared.
    squares = [
        shapes.GRID_SQUARES[0],
        shapely.box(150, 0, 400, 200),
        *shapes.GRID_SQUARES[2:],
    ]
    findings = validate_units(grid_layer(squares), parents=community_layer())
    assert [f.kind for f in findings] == ["overlap"]
    (f,) = findings
    assert f.codes == (GRIDS[0], GRIDS[1])
    expected = shapely.box(150, 0, 200, 200)
    assert f.area_m2 == pytest.approx(expected.area, rel=REL)
    assert f.location.geom_type == "MultiPolygon"
    assert shapely.hausdorff_distance(shapes.metres(f.location), expected) < 0.01  # metres


def test_no_overlap_between_units_of_different_parents():
    grids = layer(
        "grid",
        [
            (GRIDS[0], COMMUNITY, shapes.GRID_SQUARES[0]),
            ("450902001002001", "450902001002", shapely.box(150, 0, 400, 200)),
        ],
    )
    assert only(validate_units(grids), "overlap") == []


def test_gap_when_a_grid_is_missing():
    findings = validate_units(grid_layer(shapes.GRID_SQUARES[:3]), parents=community_layer())
    assert [f.kind for f in findings] == ["gap"]
    (f,) = findings
    assert f.codes == (COMMUNITY,)
    assert f.level == "grid"
    assert f.area_m2 == pytest.approx(shapes.GRID_SQUARES[3].area, rel=REL)
    assert f.area_m2 == pytest.approx(40_000, rel=REL)


def test_each_gap_part_is_one_finding_and_small_gaps_are_ignored():
    # Two grids leave a 400 m x 100 m strip and a 0.5 m x 1 m notch (0.5 m² < gap_m2).
    squares = [
        shapely.box(0, 0, 400, 150).difference(shapely.box(0, 0, 0.5, 1)),
        shapely.box(0, 250, 400, 400),
    ]
    findings = validate_units(grid_layer(squares, codes=GRIDS[:2]), parents=community_layer())
    assert [(f.kind, f.codes) for f in findings] == [("gap", (COMMUNITY,))]
    assert findings[0].area_m2 == pytest.approx(400 * 100, rel=REL)


def test_parent_without_children_is_one_gap():
    communities = layer(
        "community",
        [
            (COMMUNITY, STREET, shapes.COMMUNITY_SQUARE),
            ("450902001002", STREET, square(400, 0, 300)),
        ],
    )
    findings = validate_units(grid_layer(shapes.GRID_SQUARES), parents=communities)
    (f,) = findings
    assert (f.kind, f.codes) == ("gap", ("450902001002",))
    assert f.area_m2 == pytest.approx(300 * 300, rel=REL)
    assert "no grid unit" in f.message


def test_sliver_part():
    # The first grid carries a stray 3 m x 2 m part inside its neighbour.
    stray = shapely.box(250, 50, 253, 52)
    first = shapely.MultiPolygon([shapes.GRID_SQUARES[0], stray])
    findings = validate_units(grid_layer([first, *shapes.GRID_SQUARES[1:]]))
    kinds = {f.kind: f for f in findings}
    assert set(kinds) == {"sliver", "overlap"}
    assert kinds["sliver"].codes == (GRIDS[0],)
    assert kinds["sliver"].area_m2 == pytest.approx(stray.area, rel=REL)
    assert kinds["sliver"].area_m2 == pytest.approx(6.0, rel=REL)
    assert kinds["overlap"].area_m2 == pytest.approx(6.0, rel=REL)


# --------------------------------------------------------------------------- hierarchy


def test_hierarchy_reports_each_level_and_broken_chains():
    layers = shapes.clean_hierarchy()
    # The street names a district that does not exist: the street is an orphan, and the
    # chain of each of the four grids breaks at that street.
    layers["street"] = layer("street", [(STREET, "450999", shapes.COMMUNITY_SQUARE)])
    findings = validate_hierarchy(layers)
    street = [(f.kind, f.codes) for f in findings if f.level == "street"]
    # ...and the district is left uncovered by streets.
    assert street == [("orphan", (STREET, "450999")), ("gap", ("450902",))]
    assert findings[-1].area_m2 == pytest.approx(shapes.COMMUNITY_SQUARE.area, rel=REL)
    grid = [f for f in findings if f.level == "grid"]
    assert {f.kind for f in grid} == {"orphan"}
    assert [f.codes for f in grid] == [(g, COMMUNITY, STREET, "450999") for g in GRIDS]
    assert "breaks at street 450902001" in grid[0].message


def test_hierarchy_chain_breaks_when_an_ancestor_has_no_parent_code():
    layers = shapes.clean_hierarchy()
    layers["community"] = layer("community", [(COMMUNITY, None, shapes.COMMUNITY_SQUARE)])
    findings = validate_hierarchy(layers)
    assert [(f.kind, f.level, f.codes) for f in findings] == [
        ("orphan", "community", (COMMUNITY,)),
        *[("orphan", "grid", (g, COMMUNITY)) for g in GRIDS],
        ("gap", "community", (STREET,)),
    ]


def test_hierarchy_checks_levels_against_the_level_above():
    layers = shapes.clean_hierarchy()
    layers["grid"] = grid_layer(shapes.GRID_SQUARES[:3])
    layers["street"] = layer("street", [(STREET, "450902", square(0, 0, 300))])
    findings = validate_hierarchy(layers, gap_m2=10.0)
    got = sorted((f.kind, f.level, f.codes) for f in findings)
    assert got == [
        ("gap", "grid", (COMMUNITY,)),
        ("gap", "street", ("450902",)),
        ("not_within_parent", "community", (COMMUNITY, STREET)),
    ]


def test_hierarchy_rejects_unknown_levels():
    with pytest.raises(InvalidInput, match="level names among district"):
        validate_hierarchy({"province": shapes.clean_hierarchy()["district"]})
    with pytest.raises(InvalidInput, match="a mapping of level name"):
        validate_hierarchy([shapes.clean_hierarchy()["district"]])


# --------------------------------------------------------------------------- repair


def test_repair_fixes_bowtie_and_reports_area():
    code = GRIDS[0]
    units = layer(
        "grid",
        [(code, COMMUNITY, bowtie(0, 0, 200, 100)), (GRIDS[1], COMMUNITY, square(200, 0, 200))],
    )
    fixed, report = repair(units)
    assert shapely.is_valid(fixed.geometry).all()
    assert (fixed.geometry.geom_type == "MultiPolygon").all()
    assert validate_units(fixed) == []
    assert list(report["code"]) == [code]
    row = report.iloc[0]
    assert "Self-intersection" in row["reason"]
    triangles = 2 * (200 * 100 / 4)  # the two lobes, 5,000 m² each
    # "before" is the bow-tie as drawn (both lobes), not its signed area (0: lobes cancel)
    assert row["area_before_m2"] == pytest.approx(triangles, rel=REL)
    assert row["area_after_m2"] == pytest.approx(triangles, rel=REL)
    assert row["area_moved_m2"] == pytest.approx(0.0, abs=1e-3)  # both lobes kept
    assert fixed.loc[0, "area_m2"] == pytest.approx(triangles, rel=REL)
    # The input frame is not modified.
    assert not units.geometry.iloc[0].is_valid


def test_repair_reports_area_moved_for_overlapping_parts():
    # A MultiPolygon whose two 200 m squares overlap by 100 m x 200 m: GEOS calls it a
    # self-intersection; "structure" repair keeps the union, where an even-odd fill would
    # leave the overlap out, so 20,000 m² moved.
    a, b = square(0, 0, 200), square(100, 0, 200)
    units = layer("grid", [(GRIDS[0], COMMUNITY, shapely.MultiPolygon([a, b]))])
    assert not units.geometry.iloc[0].is_valid
    fixed, report = repair(units)
    row = report.iloc[0]
    assert row["area_before_m2"] == pytest.approx(a.area + b.area, rel=REL)
    assert row["area_after_m2"] == pytest.approx(a.union(b).area, rel=REL)
    assert row["area_moved_m2"] == pytest.approx(a.intersection(b).area, rel=REL)
    # the report adds up: before - after = what moved
    assert row["area_before_m2"] - row["area_after_m2"] == pytest.approx(
        row["area_moved_m2"], rel=REL
    )
    assert shapely.is_valid(fixed.geometry.iloc[0])


def test_repair_leaves_valid_units_alone():
    units = shapes.clean_hierarchy()["grid"]
    fixed, report = repair(units)
    assert report.empty
    assert list(report.columns) == [
        "code",
        "reason",
        "area_before_m2",
        "area_after_m2",
        "area_moved_m2",
    ]
    assert shapely.equals(fixed.geometry.array, units.geometry.array).all()
    assert (fixed.geometry.geom_type == "MultiPolygon").all()


# --------------------------------------------------------------------------- outline


def _districts_around_a_hole() -> tuple[gpd.GeoDataFrame, shapely.Polygon]:
    """Eight 1 km districts around a missing one, in a 3 km square outline."""
    cells = [(i, j) for i in range(3) for j in range(3) if (i, j) != (1, 1)]
    rows = [
        (f"4509{k:02d}", None, square(1000 * i, 1000 * j, 1000)) for k, (i, j) in enumerate(cells)
    ]
    # the outline from the same 1 km cells, so edges share vertices (a 3 km square's
    # straight lon/lat edges would differ from the cells' by ~1 m² of slivers)
    cells9 = [shapes.lonlat(square(1000 * i, 1000 * j, 1000)) for i in range(3) for j in range(3)]
    return layer("district", rows), shapely.union_all(cells9)


def test_outline_gap_is_reported_with_its_area():
    districts, outline = _districts_around_a_hole()
    found = validate_outline(districts, outline, metric_crs=shapes.METRIC_CRS)
    assert [(f.kind, f.level, f.codes) for f in found] == [
        ("outline_gap", "district", ("outline",))
    ]
    gap = found[0]
    assert gap.area_m2 == pytest.approx(1_000_000, rel=0.01)  # the missing 1 km square
    expected = shapes.lonlat(square(1000, 1000, 1000))
    assert gap.location.symmetric_difference(expected).area < 1e-6 * expected.area
    assert "m² of the outline is covered by no district unit" in gap.message
    # the same from a GeoDataFrame outline in another CRS, without metric_crs given
    in_metres = gpd.GeoDataFrame(geometry=[outline], crs="EPSG:4326").to_crs(shapes.METRIC_CRS)
    again = validate_outline(districts, in_metres)
    assert again[0].area_m2 == pytest.approx(1_000_000, rel=0.01)
    # a hole at the edge (not enclosed) is a gap too; the validate_units checks see nothing
    assert validate_units(districts, level="district") == []


def test_part_outside_the_outline_is_reported():
    districts, outline = _districts_around_a_hole()
    shifted = districts.copy()
    # the missing district drawn 300 m too far east: it overlaps its neighbour
    # (validate_units' business) and leaves a 300 m strip of the hole uncovered
    extra = layer("district", [("450999", None, square(1300, 1000, 1000))])
    extra2 = layer("district", [("450998", None, square(3000, 0, 500))])  # all outside
    shifted = gpd.GeoDataFrame(pd.concat([districts, extra, extra2]), crs="EPSG:4326")
    # (gap_m2=10: the shifted square's straight lon/lat edges leave ~1 m² slivers)
    found = validate_outline(shifted, outline, metric_crs=shapes.METRIC_CRS, gap_m2=10)
    gaps = only(found, "outline_gap")
    assert len(gaps) == 1 and gaps[0].area_m2 == pytest.approx(300_000, rel=0.01)
    outside = only(found, "outside_outline")
    assert [f.codes for f in outside] == [("450998", "outline")]
    assert outside[0].area_m2 == pytest.approx(250_000, rel=0.01)
    assert "lies outside the outline" in outside[0].message
    # no units at all: the whole outline is one gap
    assert validate_outline(districts.iloc[:0], outline)[0].kind == "outline_gap"
    with pytest.raises(InvalidInput, match="outline"):
        validate_outline(districts, shapely.Point(110, 22))


# --------------------------------------------------------------------------- output


def test_findings_frame_and_geojson():
    squares = [*shapes.GRID_SQUARES[:3], shapely.box(150, 200, 400, 400)]
    findings = validate_units(grid_layer(squares), parents=community_layer())
    assert [f.kind for f in findings] == ["overlap"]
    frame = findings_frame(findings)
    assert list(frame.columns) == ["kind", "level", "codes", "area_m2", "message", "geometry"]
    assert frame.crs == "EPSG:4326"
    assert frame.loc[0, "codes"] == f"{GRIDS[2]},{GRIDS[3]}"
    assert frame.loc[0, "area_m2"] == pytest.approx(50 * 200, rel=REL)
    fc = findings_geojson(findings)
    assert fc["type"] == "FeatureCollection"
    feature = fc["features"][0]
    assert feature["geometry"]["type"] == "MultiPolygon"
    assert feature["properties"]["codes"] == [GRIDS[2], GRIDS[3]]
    json.dumps(fc)  # JSON-serialisable
    back = shapely.geometry.shape(findings[0].to_dict()["location"])
    assert back.equals(findings[0].location)


def test_findings_frame_of_nothing_and_of_empty_geometry():
    assert len(findings_frame([])) == 0
    (f,) = validate_units(layer("grid", [(GRIDS[0], COMMUNITY, None)]))
    assert f.to_feature()["geometry"] is None
    assert findings_frame([f]).geometry.isna().all()


def test_finding_kind_is_checked():
    assert "gap" in KINDS
    with pytest.raises(InvalidInput, match="kind='hole' is not valid"):
        Finding("hole", "grid", ("1",), None)


# --------------------------------------------------------------------------- errors


def test_validate_units_rejects_bad_arguments():
    grids = grid_layer(shapes.GRID_SQUARES)
    with pytest.raises(InvalidInput, match="level='village' is not valid"):
        validate_units(grids, level="village")
    with pytest.raises(InvalidInput, match="tolerance_m=-1"):
        validate_units(grids, tolerance_m=-1)
    with pytest.raises(InvalidInput, match="gap_m2=nan"):
        validate_units(grids, gap_m2=float("nan"))
    with pytest.raises(InvalidInput, match="a geopandas GeoDataFrame"):
        validate_units(grids.drop(columns="geometry").to_dict())
    with pytest.raises(InvalidInput, match="parent_code column"):
        validate_units(grids.drop(columns="parent_code"), parents=community_layer())
    with pytest.raises(InvalidInput, match="non-empty code"):
        validate_units(grids.assign(code=[None, *GRIDS[1:]]))
    mixed = grids.assign(level=["grid", "grid", "community", "grid"])
    with pytest.raises(InvalidInput, match="units.level"):
        validate_units(mixed)
