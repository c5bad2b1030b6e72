"""Boundaries that follow the ground (issue 11): ``geogrid reference import`` and
auto-partition along the imported road lines, on the tiny city of ``tests/small_city.py``.

A test road layer (a GeoJSON file) crosses the 1 km community with a north-south and an
east-west road, neither on an existing grid edge, plus a road far away. Auto-partition
into four grids must put every new boundary on the roads (within 1 m) where they cross
the community; without the roads it falls back to the hexagon cells, smoothed, and
reports compactness before and after.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
import small_city
from small_city import CX, CY, DX, DY
from typer.testing import CliRunner

from geogrid.cli import app as cli_app
from geogrid.core.plans.reference import road_blocks
from geogrid.errors import FileInputError
from geogrid.services import plans
from geogrid.services.context import AppContext

COMM = small_city.COMMUNITY
M_LON = 102_750.0  # metres per degree of longitude at 22.63°N (as small_city)
M_LAT = 110_574.0
ROAD_NS = [[CX - 0.35 * DX, CY - 1.5 * DY], [CX - 0.30 * DX, CY + 1.5 * DY]]  # slightly slanted
ROAD_EW = [
    [CX - 1.5 * DX, CY + 0.25 * DY],
    [CX - 0.1 * DX, CY + 0.3 * DY],
    [CX + 1.5 * DX, CY + 0.2 * DY],
]
FAR_ROAD = [[CX + 5 * DX, CY + 5 * DY], [CX + 6 * DX, CY + 5 * DY]]


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        yield c


@pytest.fixture(scope="module")
def ctx(city):
    c = AppContext.open(city.url)
    yield c
    c.close()


def _roads_file(folder) -> str:
    feats = [
        {
            "type": "Feature",
            "properties": {"name": n},
            "geometry": {"type": "LineString", "coordinates": c},
        }
        for n, c in (("南北路", ROAD_NS), ("东西路", ROAD_EW), ("远路", FAR_ROAD))
    ]
    path = folder / "roads.geojson"
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False)
    )
    return str(path)


def _inner_edges(grids) -> shapely.Geometry:
    """The boundaries between grids (the community's outline left out)."""
    geoms = np.asarray(grids.geometry.array, dtype=object)
    outline = shapely.boundary(shapely.coverage_union_all(geoms))
    edges = shapely.union_all(shapely.boundary(geoms))
    return shapely.difference(edges, shapely.buffer(outline, 1e-8))


def _metres_from(edges: shapely.Geometry, lines: list) -> float:
    """The largest distance (m) of a vertex or segment midpoint of ``edges`` from ``lines``."""
    roads = shapely.union_all([shapely.LineString(c) for c in lines])
    pts = []
    for part in shapely.get_parts(shapely.line_merge(edges)):
        xy = shapely.get_coordinates(part)
        pts += list(xy) + list((xy[1:] + xy[:-1]) / 2)
    pts = np.asarray(pts)
    scale = np.array([M_LON, M_LAT])
    roads_m = shapely.transform(roads, lambda c: c * scale)
    return float(shapely.distance(roads_m, shapely.points(pts * scale)).max())


def test_road_blocks_cover_the_community() -> None:
    comm = small_city.layers()["community"].geometry.iloc[0]
    blocks = road_blocks(comm, np.asarray([shapely.LineString(c) for c in (ROAD_NS, ROAD_EW)]))
    assert len(blocks) == 4
    assert abs(shapely.area(shapely.union_all(blocks)) - comm.area) < 1e-12


def test_reference_import_and_autopartition_follow_the_roads(city, ctx, tmp_path) -> None:
    env = {"GEOGRID_DATABASE_URL": city.url}
    res = CliRunner().invoke(
        cli_app, ["reference", "import", _roads_file(tmp_path), "--layer", "roads"], env=env
    )
    assert res.exit_code == 0, res.output
    assert "3 lines" in res.output
    bad = CliRunner().invoke(
        cli_app, ["reference", "import", str(tmp_path / "nope.geojson")], env=env
    )
    assert bad.exit_code == 2 and "file not found" in bad.output
    with pytest.raises(FileInputError):
        plans.import_reference(ctx, tmp_path / "nope.geojson")

    p = plans.create_plan(ctx, [COMM], "along the roads")
    out = plans.autopartition_plan(ctx, p["id"], n=4, cell_m=60)
    bal = out["balance"][COMM]
    assert bal["cells_from"] == "reference-line blocks" and bal["blocks"] == 4
    assert bal["compactness_before"] == pytest.approx(0.785, abs=0.01)  # four squares
    _, cov = plans.plan_coverage(ctx, p["id"])
    assert len(cov.grids) == 4
    edges = _inner_edges(cov.grids)
    assert shapely.length(edges) > 0
    # every new boundary lies on a road (within 1 m) where the roads cross the community
    assert _metres_from(edges, [ROAD_NS, ROAD_EW]) < 1.0
    # and the roads inside the community are all boundaries
    comm = cov.extent(COMM)
    for road in (ROAD_NS, ROAD_EW):
        inside = shapely.intersection(shapely.LineString(road), comm)
        uncovered = shapely.difference(inside, shapely.buffer(edges, 1.0 / M_LAT))
        assert shapely.length(uncovered) * M_LAT < 1.0
    assert plans.get_plan(ctx, p["id"])["edits"][0]["summary"]["follow_lines"] is True


def test_without_roads_hexagons_are_smoothed(city, ctx) -> None:
    p = plans.create_plan(ctx, [COMM], "cells")
    out = plans.autopartition_plan(ctx, p["id"], n=3, cell_m=75, follow_lines=False)
    bal = out["balance"][COMM]
    assert bal["cells_from"] == "hex"
    assert bal["compactness"] is not None and bal["compactness_unsmoothed"] is not None
    if bal["smoothed"]:
        assert bal["compactness"] >= bal["compactness_unsmoothed"] - 1e-9
    _, cov = plans.plan_coverage(ctx, p["id"])
    assert len(cov.grids) == 3
    geoms = np.asarray(cov.grids.geometry.array, dtype=object)
    assert bool(shapely.coverage_is_valid(geoms))
    assert all(shapely.get_num_geometries(g) == 1 for g in geoms)
    # with too few blocks for the grids wanted, the cells are cut along the roads instead
    q = plans.create_plan(ctx, [COMM], "many")
    many = plans.autopartition_plan(ctx, q["id"], n=6, cell_m=75)["balance"][COMM]
    assert many["cells_from"] == "hex cut along reference lines" and many["n"] == 6
