"""Analysts past one machine (issue 12): the locator, per-unit metrics and Gi* over the
demo's history exported as monthly GeoParquet, on a Dask ``LocalCluster`` with two worker
processes, equal the single-machine (PostGIS) results — counts exactly, rates and Gi* to
1e-9 — and the export holds no personal field."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster

from geogrid.core.hierarchy import LEVELS_UP
from geogrid.core.unitmetrics import AGGREGATE_COUNTS
from geogrid.errors import NotFound
from geogrid.services import archive, metrics, scale
from geogrid.services.attribution import attributor_for_version
from geogrid.services.unitcache import UnitCache
from geogrid.store import get_engine

_COUNTS = [c for c in AGGREGATE_COUNTS if c in metrics.METRIC_COLUMNS]
_RATES = [
    "per_1000_residents",
    "per_km2",
    "median_hours_to_resolve",
    "p90_hours_to_resolve",
    "resolved_within_limit_share",
    "workers",
    "incidents_per_worker",
    "change_pct",
    "load_index",
]


@pytest.fixture(scope="module")
def demo(demo_db_url, tmp_path_factory):
    eng = get_engine(demo_db_url)
    folder = tmp_path_factory.mktemp("history")
    report = archive.export_history(eng, folder)
    _, last = metrics.incident_time_range(eng)
    end = last.normalize()
    window = {"start": end - pd.Timedelta(days=30), "end": end, "now": end}
    return eng, folder, report, window


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def test_export_is_monthly_geoparquet_without_personal_fields(demo) -> None:
    eng, folder, report, _ = demo
    with eng.connect() as conn:
        stored = conn.exec_driver_sql("SELECT count(*) FROM incident").scalar_one()
    assert report.rows == stored and len(report.files) >= 2
    one = pq.read_schema(next(iter(report.files.values())))
    assert b"geo" in one.metadata  # GeoParquet metadata
    assert set(one.names) == {
        "id",
        "category",
        "status",
        "reported_at",
        "resolved_at",
        "due_at",
        "done_at",
        "geometry",
    }


def test_locator_over_partitions_equals_stored_codes(demo, client) -> None:
    eng, folder, _, _ = demo
    with eng.connect() as conn:
        att = attributor_for_version(conn, None)
        stored = pd.read_sql("SELECT id, grid_code, district_code FROM incident", conn)
    located = scale.locate_partitions(scale.read_history(folder), att).compute()
    merged = located.merge(stored, on="id", suffixes=("", "_db"))
    assert len(merged) == len(stored)
    for c in ("grid_code", "district_code"):
        a, b = merged[c].fillna(""), merged[f"{c}_db"].fillna("")
        assert (a == b).all(), c


@pytest.mark.parametrize("level", LEVELS_UP)
def test_dask_metrics_equal_postgis(demo, client, level) -> None:
    eng, folder, _, window = demo
    cache = UnitCache()
    ref = metrics.load_metrics(eng, level, cache=cache, **window)
    got = scale.dask_metrics(eng, folder, level, client=client, cache=cache, **window)
    assert ref["incidents"].sum() > 0
    assert list(got["code"]) == list(ref["code"])
    for c in _COUNTS:
        assert (got[c].to_numpy() == ref[c].to_numpy()).all(), c
    for c in _RATES:
        np.testing.assert_allclose(
            got[c].to_numpy(float), ref[c].to_numpy(float), rtol=1e-9, atol=1e-9, equal_nan=True
        )
    assert got.attrs["path"] == "dask"


def test_dask_hotspots_equal_postgis(demo, client) -> None:
    eng, folder, _, window = demo
    cache = UnitCache()
    ref = metrics.unit_hotspots(eng, "grid", cache=cache, **window)
    got = scale.dask_hotspots(eng, folder, "grid", client=client, cache=cache, **window)
    np.testing.assert_allclose(got["z"].to_numpy(float), ref["z"].to_numpy(float), atol=1e-9)
    np.testing.assert_allclose(
        got["p_value"].to_numpy(float), ref["p_value"].to_numpy(float), atol=1e-9
    )
    assert (got["class"].to_numpy() == ref["class"].to_numpy()).all()
    assert (got["class"] != "not_significant").any()


def test_local_scheduler_and_category_filter(demo) -> None:
    """Without a cluster the partitions run on Dask's local scheduler; a category filter
    gives the PostGIS answer too."""
    eng, folder, _, window = demo
    with eng.connect() as conn:
        cat = conn.exec_driver_sql(
            "SELECT category FROM incident GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).scalar_one()
    ref = metrics.load_metrics(eng, "street", categories=[cat], **window)
    got = scale.dask_metrics(eng, folder, "street", categories=[cat], **window)
    assert (got["incidents"].to_numpy() == ref["incidents"].to_numpy()).all()


def test_empty_folder_is_a_clear_error(demo, tmp_path) -> None:
    eng, _, _, window = demo
    with pytest.raises(NotFound, match="incidents-YYYY-MM.parquet"):
        scale.dask_metrics(eng, tmp_path, "grid", **window)


def test_cli_scale_metrics(demo, demo_db_url, client, tmp_path) -> None:
    """``geogrid scale metrics`` on a running cluster (``--scheduler``) writes the same
    counts; a folder without history is one clear message."""
    eng, folder, _, window = demo
    out = tmp_path / "grid.csv"
    env = {**os.environ, "GEOGRID_DATABASE_URL": demo_db_url}
    args = ["scale", "metrics", str(folder), "--from", str(window["start"].date())]
    args += ["--to", str(window["end"].date()), "--scheduler", client.scheduler.address]
    args += ["--out", str(out)]
    run = subprocess.run(
        [sys.executable, "-m", "geogrid.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    got = pd.read_csv(out, dtype={"code": str})
    ref = metrics.load_metrics(
        eng, "grid", start=str(window["start"].date()), end=str(window["end"].date())
    )
    assert got["incidents"].sum() == ref["incidents"].sum() > 0
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "geogrid.cli",
            "scale",
            "metrics",
            str(tmp_path / "none"),
            "--scheduler",
            client.scheduler.address,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert bad.returncode == 2 and "incidents-YYYY-MM.parquet" in bad.stderr
