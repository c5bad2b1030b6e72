"""Auto-partition of demo communities (geogrid.plans.partition).

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

from geogrid.plans.edits import Coverage, apply_edit, check_community
from geogrid.plans.partition import autopartition, balance, partition_community


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
    return Coverage(comm[["code", "name", "parent_code", "households", "population",
                          "geometry"]],
                    gpd.GeoDataFrame(grids[["code", "name", "parent_code"]],
                                     geometry=grids.geometry.values, crs="EPSG:4326"),
                    frozenset(grids["code"]))


def test_target_households_reached_contiguous(demo) -> None:
    codes = _pick(demo)
    cov = _coverage(demo, codes)
    b = demo.buildings
    lon, lat = b.geometry.x.to_numpy(), b.geometry.y.to_numpy()
    target = 300.0  # households per grid (the urban norm of the demo)
    parts = autopartition(cov, codes, target=target, points_lon=lon, points_lat=lat,
                          points_weight=b["households"].to_numpy(), cell_m=60)
    params = {"result": [{"community": p.community, "grids": [
        {"code": g["code"], "name": g["name"], "geometry": g["geometry"]} for g in p.grids]}
        for p in parts]}
    out, _ = apply_edit(cov, "autopartition", params)
    for p in parts:
        assert p.balance["reached"], p.balance
        assert check_community(out, p.community,
                               contiguous=list(out.grids_of(p.community)["code"])) == []
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
        comm, n=n, points_lon=lon[inside], points_lat=lat[inside],
        points_weight=b["households"].to_numpy()[inside], cell_m=50)
    bal = balance(loads)
    assert len(geoms) == n
    assert bal["max_min_ratio"] < 1.6 and bal["cv"] < 0.15, bal
    assert (shapely.get_num_geometries(np.asarray(geoms)) == 1).all()
    # compare with the published grids of the demo: at least as balanced
    grids = demo.units["grid"]
    pub = grids[grids["parent_code"] == code]["households"].to_numpy(float)
    assert bal["cv"] <= balance(pub)["cv"] + 0.05
