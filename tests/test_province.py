"""The province generator of ``bench.province`` (issue 12), on a tiny province: 3 cities of
one Yulin county each, 300 grids, 50,000 incidents. Deterministic, unique codes, every
incident strictly inside the grid it was drawn in, GeoParquet readable by the scale path,
and the per-grid sums over the files on a Dask cluster equal the single-machine ones
exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from bench._dask import local_client
from geogrid.core.attribution import Attributor
from geogrid.core.catalogue import load_categories
from geogrid.core.unitmetrics import AGGREGATE_COUNTS, aggregate_incident_rows
from geogrid.demo.province import (
    build_province,
    checksum,
    incident_chunks,
    wkb_points,
    write_incidents,
)
from geogrid.services import scale

N = 50_000
SUMS = [*AGGREGATE_COUNTS, "effort_incidents"]


@pytest.fixture(scope="module")
def province():
    return build_province(3, 300, seed=5, counties=["450903"])


@pytest.fixture(scope="module")
def history(province, tmp_path_factory):
    folder = tmp_path_factory.mktemp("province")
    written = write_incidents(province, folder, N, months=3, end="2026-12-01", seed=3)
    return folder, written


def test_layout_codes_and_grid_counts(province) -> None:
    grids = province.units["grid"]
    assert len(grids) == 300 and grids["code"].is_unique
    assert province.cities["grids"].sum() == 300
    # cities keep their own code prefix all the way down, and never overlap
    for lv, gdf in province.units.items():
        assert gdf["code"].is_unique, lv
        assert set(gdf["code"].str[:4]) == set(province.cities["code"]), lv
    outlines = [
        shapely.union_all(grids.geometry.values[grids["code"].str[:4] == c])
        for c in province.cities["code"]
    ]
    for i in range(len(outlines)):
        for j in range(i + 1, len(outlines)):
            assert not outlines[i].intersects(outlines[j])
    assert shapely.is_valid(grids.geometry.values).all()
    # Yulin stays where it is
    yulin = province.cities.set_index("code").loc["4509"]
    assert (yulin["dx"], yulin["dy"], yulin["mirror"]) == (0.0, 0.0, "")


def test_same_seed_same_files(province, history, tmp_path) -> None:
    folder, written = history
    again = write_incidents(province, tmp_path, N, months=3, end="2026-12-01", seed=3)
    assert again == written and sum(written.values()) == N
    assert checksum(tmp_path) == checksum(folder)
    other = tmp_path / "other"
    write_incidents(province, other, N, months=3, end="2026-12-01", seed=4)
    assert checksum(other) != checksum(folder)


def test_every_incident_inside_its_grid(province) -> None:
    grids = province.units["grid"]
    att = Attributor.from_layers(province.units)
    geoms = np.asarray(grids.geometry.values)
    total = 0
    for _, code, table, extra in incident_chunks(province, N, months=3, seed=3):
        lon, lat, grid = extra["lon"], extra["lat"], extra["grid"]
        assert shapely.contains_xy(geoms[grid], lon, lat).all()  # strictly inside
        assert (att.locator.locate(lon, lat) == grid).all()
        assert pd.Series(grids["code"].to_numpy()[grid]).str.startswith(code).all()
        # the hand-made WKB is shapely's
        assert table["geometry"].to_pylist()[:50] == list(
            shapely.to_wkb(shapely.points(lon[:50], lat[:50]))
        )
        assert wkb_points(lon[:3], lat[:3]).to_pylist() == table["geometry"].to_pylist()[:3]
        total += len(lon)
    assert total == N


def test_history_statuses_are_consistent(history) -> None:
    folder, _ = history
    frame = scale.read_history(folder).compute()
    assert len(frame) == N and frame["id"].is_unique
    done = frame["status"].isin(["resolved", "closed"])
    assert frame.loc[done, "resolved_at"].notna().all()
    assert frame.loc[~done, "resolved_at"].isna().all()
    assert (frame["done_at"] >= frame["reported_at"]).all()
    assert set(frame["category"]) <= set(load_categories().index)


def test_dask_sums_equal_single_machine(province, history) -> None:
    folder, _ = history
    att = Attributor.from_layers(province.units)
    efforts = {str(c): float(e) for c, e in load_categories()["effort"].items()}
    start = pd.Timestamp("2026-11-01", tz="Asia/Shanghai")
    end = pd.Timestamp("2026-12-01", tz="Asia/Shanghai")
    window = {"prev_start": start - (end - start), "start": start, "end": end, "t": end}
    # the single machine: every row in one frame, one aggregation
    rows = scale.locate_partitions(scale.read_history(folder), att).compute(scheduler="sync")
    rows["effort"] = rows["category"].map(efforts).astype(float)
    ref = aggregate_incident_rows(rows, "grid", **window).set_index("code").sort_index()
    with local_client(2, processes=False) as client:
        got = scale.aggregate_partitions(
            scale.read_history(folder),
            att,
            "grid",
            efforts=efforts,
            categories=None,
            client=client,
            **window,
        )
    got = got.set_index("code").sort_index()
    assert ref["incidents"].sum() > 0
    assert list(got.index) == list(ref.index)
    for c in AGGREGATE_COUNTS:
        assert (got[c].to_numpy() == ref[c].to_numpy()).all(), c
    np.testing.assert_allclose(got["effort_incidents"], ref["effort_incidents"], rtol=1e-12)
    for c in ("median_hours", "p90_hours"):
        np.testing.assert_allclose(
            got[c].to_numpy(float), ref[c].to_numpy(float), rtol=1e-9, equal_nan=True
        )
