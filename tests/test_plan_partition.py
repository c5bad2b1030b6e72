"""Auto-partition of demo communities (geogrid.core.plans.partition).

Communities and building points come from the deterministic Yulin demo build
(:func:`geogrid.demo.boundaries.build_demo`, in memory: nothing is written). Each
re-cut must partition its community exactly, give contiguous grids, and reach the
balance asked for (households per grid under the target; max/min ratio with ``n``).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geogrid.core.plans.edits import Coverage, apply_edit, check_community
from geogrid.core.plans.partition import allocate, autopartition, balance, partition_community
from geogrid.errors import InvalidInput


@pytest.fixture(scope="module")
def demo():
    from geogrid.demo.boundaries import build_demo

    return build_demo()


def _pick(demo, k: int = 3) -> list[str]:
    """The k urban communities with the most households, and a rural one."""
    comm = demo.units["community"]
    urban = comm[comm["name"].str.endswith("社区")].nlargest(k, "households")
    rural = comm[comm["name"].str.endswith("村")].nlargest(1, "households")
    return urban["code"].tolist() + rural["code"].tolist()


def _coverage(demo, codes: list[str]) -> Coverage:
    comm = demo.units["community"]
    comm = comm[comm["code"].isin(codes)].reset_index(drop=True)
    grids = demo.units["grid"]
    grids = grids[grids["parent_code"].isin(codes)].reset_index(drop=True)
    return Coverage(
        comm[["code", "name", "parent_code", "households", "population", "geometry"]],
        gpd.GeoDataFrame(
            grids[["code", "name", "parent_code"]], geometry=grids.geometry.values, crs="EPSG:4326"
        ),
        frozenset(grids["code"]),
    )


def test_target_households_reached_contiguous(demo) -> None:
    codes = _pick(demo)
    cov = _coverage(demo, codes)
    b = demo.buildings
    lon, lat = b.geometry.x.to_numpy(), b.geometry.y.to_numpy()
    target = 300.0  # households per grid (the urban norm of the demo)
    parts = autopartition(
        cov,
        codes,
        target=target,
        points_lon=lon,
        points_lat=lat,
        points_weight=b["households"].to_numpy(),
        cell_m=60,
    )
    params = {
        "result": [
            {
                "community": p.community,
                "grids": [
                    {"code": g["code"], "name": g["name"], "geometry": g["geometry"]}
                    for g in p.grids
                ],
            }
            for p in parts
        ]
    }
    out, _ = apply_edit(cov, "autopartition", params)
    for p in parts:
        assert p.balance["reached"], p.balance
        assert (
            check_community(out, p.community, contiguous=list(out.grids_of(p.community)["code"]))
            == []
        )
        geoms = out.grids_of(p.community).geometry
        assert (shapely.get_num_geometries(geoms.values) == 1).all()
        # every household counted once
        comm = cov.community_geom(p.community)
        inside = shapely.intersects_xy(comm, lon, lat)
        assert p.loads.sum() == pytest.approx(b["households"].to_numpy()[inside].sum())


def test_n_grids_balance(demo) -> None:
    code = _pick(demo, 1)[0]
    cov = _coverage(demo, [code])
    comm = cov.community_geom(code)
    b = demo.buildings
    lon, lat = b.geometry.x.to_numpy(), b.geometry.y.to_numpy()
    inside = shapely.intersects_xy(comm, lon, lat)
    n = max(2, len(cov.grids_of(code)))
    geoms, loads, info = partition_community(
        comm,
        n=n,
        points_lon=lon[inside],
        points_lat=lat[inside],
        points_weight=b["households"].to_numpy()[inside],
        cell_m=50,
    )
    bal = balance(loads)
    assert len(geoms) == n
    assert bal["max_min_ratio"] < 1.6 and bal["cv"] < 0.15, bal
    assert (shapely.get_num_geometries(np.asarray(geoms)) == 1).all()
    # compare with the published grids of the demo: at least as balanced
    grids = demo.units["grid"]
    pub = grids[grids["parent_code"] == code]["households"].to_numpy(float)
    assert bal["cv"] <= balance(pub)["cv"] + 0.05


# ------------------------------------------------------------------ several pieces

DEG_X, DEG_Y = 1 / 102_750, 1 / 110_574  # one metre in degrees at 22.63°N


def _two_piece_city(seed: int = 7):
    """A community of two separated squares near Yulin (an 800 m square and, 600 m east
    of it, a 400 m exclave), one published grid covering both, and synthetic buildings:
    600 of 6 households in the big square, 200 of 6 in the exclave (3:1)."""
    x0, y0 = 110.15, 22.63
    big = shapely.box(x0, y0, x0 + 800 * DEG_X, y0 + 800 * DEG_Y)
    ex0 = x0 + 1400 * DEG_X
    small = shapely.box(ex0, y0 + 200 * DEG_Y, ex0 + 400 * DEG_X, y0 + 600 * DEG_Y)
    comm_geom = shapely.MultiPolygon([big, small])
    code = "450902001099"
    comm = gpd.GeoDataFrame(
        {"code": [code], "name": ["两片社区"], "parent_code": ["450902001"]},
        geometry=[comm_geom],
        crs="EPSG:4326",
    )
    grids = gpd.GeoDataFrame(
        {"code": [code + "001"], "name": ["两片网格"], "parent_code": [code]},
        geometry=[comm_geom],
        crs="EPSG:4326",
    )
    rng = np.random.default_rng(seed)
    pts = []
    for geom, count in ((big, 600), (small, 200)):
        minx, miny, maxx, maxy = geom.bounds
        pts.append(
            np.column_stack([rng.uniform(minx, maxx, count), rng.uniform(miny, maxy, count)])
        )
    xy = np.concatenate(pts)
    return (
        Coverage(comm, grids, frozenset(grids["code"])),
        code,
        xy[:, 0],
        xy[:, 1],
        np.full(len(xy), 6.0),
        (big, small),
    )


def _apply(cov, parts):
    params = {
        "result": [
            {
                "community": p.community,
                "grids": [
                    {"code": g["code"], "name": g["name"], "geometry": g["geometry"]}
                    for g in p.grids
                ],
            }
            for p in parts
        ]
    }
    return apply_edit(cov, "autopartition", params)[0]


def test_community_in_two_pieces_n_grids_contiguous_and_balanced() -> None:
    cov, code, lon, lat, hh, (big, small) = _two_piece_city()
    parts = autopartition(
        cov, [code], n=4, points_lon=lon, points_lat=lat, points_weight=hh, cell_m=50
    )
    (p,) = parts
    assert len(p.grids) == 4 and p.balance["pieces"] == 2
    out = _apply(cov, parts)  # the edit's own checks: coverage and contiguity
    grids = out.grids_of(code)
    assert check_community(out, code, contiguous=list(grids["code"])) == []
    geoms = np.asarray(grids.geometry.values)
    assert (shapely.get_num_geometries(geoms) == 1).all()
    # households 3:1 → three grids on the big square, one on the exclave
    on_small = shapely.area(shapely.intersection(geoms, small)) > 0
    assert on_small.sum() == 1
    assert shapely.area(shapely.intersection(geoms[on_small][0], big)) == 0
    assert p.loads.sum() == pytest.approx(hh.sum())
    assert p.balance["max_min_ratio"] < 1.25 and p.balance["cv"] < 0.1, p.balance
    # the old grid's code stays with the grid overlapping it most
    assert code + "001" in set(grids["code"])


def test_community_in_two_pieces_target_and_minimum_n() -> None:
    cov, code, lon, lat, hh, (_, small) = _two_piece_city()
    target = 1300.0  # households: 3600 on the big square, 1200 on the exclave
    (p,) = autopartition(
        cov, [code], target=target, points_lon=lon, points_lat=lat, points_weight=hh, cell_m=50
    )
    assert p.balance["reached"], p.balance
    out = _apply(cov, [p])
    geoms = np.asarray(out.grids_of(code).geometry.values)
    assert (shapely.get_num_geometries(geoms) == 1).all()
    assert len(geoms) == 4  # ceil(3600 / 1300) + ceil(1200 / 1300)
    assert check_community(out, code, contiguous=list(out.grids_of(code)["code"])) == []
    # one grid cannot cover two separate pieces
    (two,) = autopartition(
        cov, [code], n=2, points_lon=lon, points_lat=lat, points_weight=hh, cell_m=50
    )
    assert len(two.grids) == 2
    with pytest.raises(InvalidInput, match="separate"):
        autopartition(cov, [code], n=1, points_lon=lon, points_lat=lat, points_weight=hh)


def test_allocate_is_proportional_with_a_minimum() -> None:
    assert allocate(np.array([900.0, 100.0]), 10).tolist() == [9, 1]
    assert allocate(np.array([990.0, 10.0]), 2).tolist() == [1, 1]
    assert allocate(np.array([5.0, 1.0]), 6, maximum=np.array([3, 10])).tolist() == [3, 3]
