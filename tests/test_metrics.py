"""geogrid.services.metrics on a hand-computed case, roll-up consistency on the demo, and the
analytics API over real HTTP.

The tiny city (its own database): district 450902 → street 450902001 → communities
C1 = …001 and C2 = …002 → grids G11, G12 (in C1) and G21, G22 (in C2), 0.01° squares in a
row along lat 22.60–22.61. Window [2026-05-01, 2026-06-01) UTC, now 2026-06-10 → the
state is read at t = 2026-06-01; the previous window is [2026-03-31, 2026-05-01).
Categories: A (limit 24 h, effort 1), B (limit 48 h, effort 2).

Every expected number below is worked out by hand in the comments.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from row_city import C1, C2, D, S, incident_row, point, square, units
from sqlalchemy import insert

from geogrid.core.hierarchy import LEVELS_UP
from geogrid.core.loadindex import LoadWeights
from geogrid.core.metric_catalogue import METRIC_COLUMNS, METRICS
from geogrid.core.timewindow import resolve_window
from geogrid.errors import InvalidInput, NotFound
from geogrid.services import metrics
from geogrid.services.unitcache import UnitCache
from geogrid.store import get_engine
from geogrid.store.tables import account, account_unit, category, incident
from geogrid.store.units import copy_units, create_version, insert_units, publish_version

G11, G12, G21, G22 = C1 + "001", C1 + "002", C2 + "001", C2 + "002"
BOX = {G11: 0, G12: 1, G21: 2, G22: 3}  # column of the 0.01° square
START = datetime(2026, 5, 1, tzinfo=UTC)
END = datetime(2026, 6, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 10, tzinfo=UTC)


def _t(month: int, day: int, hour: float = 0) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC) + timedelta(hours=hour)


def _units() -> gpd.GeoDataFrame:
    return units(
        [
            (D, "玉州区", "district", None, 4000, 1400, 4e6, square(0, 4)),
            (S, "名山街道", "street", D, 4000, 1400, 4e6, square(0, 4)),
            (C1, "江滨社区", "community", S, 3000, 1000, 3e6, square(0, 2)),
            (C2, "金桂社区", "community", S, 1000, 400, 1e6, square(2, 4)),
            (G11, "网格11", "grid", C1, 1000, 400, 1e6, square(0, 1)),
            (G12, "网格12", "grid", C1, 2000, 600, 2e6, square(1, 2)),
            (G21, "网格21", "grid", C2, 500, 200, 0.5e6, square(2, 3)),
            (G22, "网格22", "grid", C2, 500, 200, 0.5e6, square(3, 4)),
        ]
    )


# (grid, category, reported_at, status, resolved_at, closed_at)
INCIDENTS = [
    # G11
    (G11, "A", _t(5, 2), "closed", _t(5, 2, 10), _t(5, 3)),  # 1: 10 h, on time
    (G11, "A", _t(5, 3), "resolved", _t(5, 4, 6), None),  # 2: 30 h, late (due 05-04 00:00)
    (G11, "B", _t(5, 10), "in_progress", None, None),  # 3: open, due 05-12: overdue
    (G11, "A", _t(5, 31, 20), "reported", None, None),  # 4: open, due 06-01 20:00: not yet
    (G11, "A", _t(4, 15), "closed", _t(4, 15, 5), _t(4, 16)),  # 5: previous window
    (G11, "B", _t(3, 1), "accepted", None, None),  # 6: old backlog, overdue
    (G11, "A", _t(5, 20), "resolved", _t(6, 5), None),  # 7: resolved after t: open, overdue
    # G12
    (G12, "B", _t(5, 5), "closed", _t(5, 5, 4), _t(5, 6)),  # 8: 4 h, on time
    (G12, "A", _t(5, 6), "rejected", None, _t(5, 6, 2)),  # 9: rejected: no case
    (G12, "A", _t(5, 7), "resolved", _t(5, 7, 12), None),  # 10: 12 h, on time
    (G12, "A", _t(5, 8), "resolved", _t(5, 8, 20), None),  # 11: 20 h, on time
    (G12, "A", _t(4, 10), "resolved", _t(4, 10, 3), None),  # 12: previous
    (G12, "A", _t(4, 20), "closed", _t(4, 20, 3), _t(4, 21)),  # 13: previous
    # G21
    (G21, "A", _t(5, 15), "duplicate", None, _t(5, 15, 1)),  # 14
    # outside every grid, and after the window
    (None, "A", _t(5, 10), "reported", None, None),  # 15: no unit
    (G22, "A", _t(6, 2), "reported", None, None),  # 16: after end
]


def _point(grid: str | None) -> str:
    return "SRID=4326;POINT(110.5 22.9)" if grid is None else point(BOX[grid])


@pytest.fixture(scope="module")
def tiny(make_db):
    url = make_db()
    eng = get_engine(url)
    units = _units()
    with eng.begin() as conn:
        vid = create_version(conn, "tiny")
        insert_units(conn, vid, units)
        publish_version(conn, vid)
        conn.execute(
            insert(category),
            [
                {"code": "A", "name_zh": "甲", "name_en": "A", "limit_hours": 24.0, "effort": 1.0},
                {"code": "B", "name_zh": "乙", "name_en": "B", "limit_hours": 48.0, "effort": 2.0},
            ],
        )
        ids = {}
        for ref in ("w1", "w2", "w3"):
            ids[ref] = conn.execute(
                insert(account).values(ref=ref, name=ref, role="worker").returning(account.c.id)
            ).scalar_one()
        conn.execute(
            insert(account_unit),
            [
                {"account_id": ids["w1"], "unit_code": G11},
                {"account_id": ids["w2"], "unit_code": G12},  # w2 serves two grids: 0.5 each
                {"account_id": ids["w2"], "unit_code": G21},
                {"account_id": ids["w3"], "unit_code": G22},
            ],
        )
        rows = [
            incident_row(f"t{n + 1}", *case, version_id=vid, geom=_point(case[0]))
            for n, case in enumerate(INCIDENTS)
        ]
        conn.execute(insert(incident), rows)
    yield eng, vid


def _m(eng, level, **kw):
    kw.setdefault("start", START)
    kw.setdefault("end", END)
    kw.setdefault("now", NOW)
    return metrics.load_metrics(eng, level, **kw).set_index("code")


def test_columns_and_metrics_dict(tiny):
    eng, vid = tiny
    m = metrics.load_metrics(eng, "grid", start=START, end=END, now=NOW)
    assert list(m.columns) == METRIC_COLUMNS
    assert m.crs.to_epsg() == 4326
    assert set(METRICS) <= set(m.columns)
    assert m.attrs["version_id"] == vid and m.attrs["path"] == "sql"
    assert list(m["code"]) == [G11, G12, G21, G22]


def test_grid_counts_by_hand(tiny):
    m = _m(tiny[0], "grid")
    # G11: in window #1 #2 #3 #4 #7; previous #5; open at t #3 #4 #6 #7; overdue #3 #6 #7
    # G12: #8–#11, previous #12 #13; G21: #14; G22: #16 is after the window
    assert m["incidents"].to_dict() == {G11: 5, G12: 4, G21: 1, G22: 0}
    assert m["previous_incidents"].to_dict() == {G11: 1, G12: 2, G21: 0, G22: 0}
    assert m["open_backlog"].to_dict() == {G11: 4, G12: 0, G21: 0, G22: 0}
    assert m["overdue"].to_dict() == {G11: 3, G12: 0, G21: 0, G22: 0}
    assert m["change"].to_dict() == {G11: 4, G12: 2, G21: 1, G22: 0}
    np.testing.assert_allclose(m["change_pct"], [400.0, 100.0, np.nan, np.nan])


def test_grid_rates_by_hand(tiny):
    m = _m(tiny[0], "grid")
    # per 1000: 5/1000, 4/2000, 1/500, 0/500 × 1000; per km²: 5/1, 4/2, 1/0.5, 0/0.5
    np.testing.assert_allclose(m["per_1000_residents"], [5.0, 2.0, 2.0, 0.0])
    np.testing.assert_allclose(m["per_km2"], [5.0, 2.0, 2.0, 0.0])
    # G11 resolved by t: 10 h, 30 h → median 20, p90 = 10 + 0.9·20 = 28
    # G12: 4, 12, 20 h → median 12, p90 at position 1.8 = 12 + 0.8·8 = 18.4
    np.testing.assert_allclose(m["median_hours_to_resolve"], [20.0, 12.0, np.nan, np.nan])
    np.testing.assert_allclose(m["p90_hours_to_resolve"], [28.0, 18.4, np.nan, np.nan])
    # G11: on time #1 of decided #1 #2 (resolved) + #3 #7 (open past due) = 1/4
    # G12: 3 on time of 3 resolved (#9 rejected is no case) = 1
    np.testing.assert_allclose(m["resolved_within_limit_share"], [0.25, 1.0, np.nan, np.nan])
    # workers: w1 → G11; w2 → G12, G21 (½ each); w3 → G22
    np.testing.assert_allclose(m["workers"], [1.0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(m["incidents_per_worker"], [5.0, 8.0, 2.0, 0.0])


def test_load_index_by_hand(tiny):
    eng = tiny[0]
    m = _m(eng, "grid")
    # effort: G11 = 4·1 + 1·2 = 6, G12 = 2 + 3 = 5, G21 = 1, G22 = 0 → Ē = 3
    # households mean 350, area mean 1 km²; weights 0.6 / 0.3 / 0.1
    expected = [
        100 * (0.6 * 6 / 3 + 0.3 * 400 / 350 + 0.1 * 1),
        100 * (0.6 * 5 / 3 + 0.3 * 600 / 350 + 0.1 * 2),
        100 * (0.6 * 1 / 3 + 0.3 * 200 / 350 + 0.1 * 0.5),
        100 * (0.0 + 0.3 * 200 / 350 + 0.1 * 0.5),
    ]
    np.testing.assert_allclose(m["load_index"], expected)
    assert m["load_index"].mean() == pytest.approx(100.0)
    # only incidents: 100 · E/Ē
    only = _m(eng, "grid", weights=LoadWeights(1, 0, 0))
    np.testing.assert_allclose(only["load_index"], [200.0, 500 / 3, 100 / 3, 0.0])
    li = metrics.load_index(eng, "grid", start=START, end=END, now=NOW).set_index("code")
    np.testing.assert_allclose(
        li[["incidents_part", "households_part", "area_part"]].sum(axis=1), expected
    )
    np.testing.assert_allclose(li["load_per_worker"], np.array(expected) / [1, 0.5, 0.5, 1])
    # upper levels: the sum of their grids
    c = _m(eng, "community")
    np.testing.assert_allclose(
        c["load_index"], [expected[0] + expected[1], expected[2] + expected[3]]
    )
    with pytest.raises(InvalidInput, match="weights"):
        LoadWeights(0, 0, 0)


def test_community_and_district_by_hand(tiny):
    eng = tiny[0]
    c = _m(eng, "community")
    assert c["incidents"].to_dict() == {C1: 9, C2: 1}
    assert c["previous_incidents"].to_dict() == {C1: 3, C2: 0}
    assert c["open_backlog"].to_dict() == {C1: 4, C2: 0}
    assert c["overdue"].to_dict() == {C1: 3, C2: 0}
    # rates from sums: 9/3000, 1/1000; 9/3 km², 1/1 km²
    np.testing.assert_allclose(c["per_1000_residents"], [3.0, 1.0])
    np.testing.assert_allclose(c["per_km2"], [3.0, 1.0])
    # C1 hours 4, 10, 12, 20, 30: median 12, p90 at 3.6 = 20 + 0.6·10 = 26 (not averaged)
    np.testing.assert_allclose(c["median_hours_to_resolve"], [12.0, np.nan])
    np.testing.assert_allclose(c["p90_hours_to_resolve"], [26.0, np.nan])
    # on time 1 + 3 = 4 of decided: 5 resolved + 2 open past due = 7
    np.testing.assert_allclose(c["resolved_within_limit_share"], [4 / 7, np.nan])
    np.testing.assert_allclose(c["workers"], [1.5, 1.5])
    np.testing.assert_allclose(c["incidents_per_worker"], [6.0, 1 / 1.5])
    np.testing.assert_allclose(c["change_pct"], [200.0, np.nan])
    d = _m(eng, "district")
    assert d.loc[D, "incidents"] == 10 and d.loc[D, "previous_incidents"] == 3
    assert d.loc[D, "workers"] == pytest.approx(3.0)
    assert d.loc[D, "per_1000_residents"] == pytest.approx(2.5)
    assert d.loc[D, "per_km2"] == pytest.approx(2.5)
    assert d.loc[D, "median_hours_to_resolve"] == pytest.approx(12.0)
    assert d.loc[D, "load_index"] == pytest.approx(400.0)  # four grids, mean 100


def test_category_filter(tiny):
    m = _m(tiny[0], "grid", categories=["B"])
    assert m["incidents"].to_dict() == {G11: 1, G12: 1, G21: 0, G22: 0}
    assert m["open_backlog"].to_dict() == {G11: 2, G12: 0, G21: 0, G22: 0}  # #3 #6
    assert _m(tiny[0], "grid", categories="A,B")["incidents"].sum() == 10
    with pytest.raises(InvalidInput, match="category"):
        _m(tiny[0], "grid", categories=["nope"])


def test_state_read_at_end_of_window(tiny):
    # a window ending 05-09: #3 is open but not yet due (due 05-12); #1 #2 #8 #10 resolved
    m = _m(tiny[0], "grid", start=_t(5, 1), end=_t(5, 11))
    assert m.loc[G11, "open_backlog"] == 2  # #3 (reported 05-10) and #6
    assert m.loc[G11, "overdue"] == 1  # #6 only
    assert m.attrs["as_at"] == _t(5, 11).isoformat()


def test_invalid_inputs(tiny):
    eng = tiny[0]
    with pytest.raises(InvalidInput, match="level"):
        metrics.load_metrics(eng, "province")
    with pytest.raises(InvalidInput, match="from"):
        metrics.load_metrics(eng, "grid", start=END, end=START)
    with pytest.raises(NotFound):
        metrics.load_metrics(eng, "grid", version=999)
    with pytest.raises(InvalidInput, match="columns"):
        metrics.incident_frame(eng, START, END, columns=["geom"])


def test_time_travel_reattributes_in_memory(tiny):
    """A draft copy of the boundaries: every incident carries the other version, so the
    pandas path re-attributes them by location -- and must agree with the SQL path."""
    eng, vid = tiny
    with eng.begin() as conn:
        v2 = create_version(conn, "copy")
        copy_units(conn, vid, v2)
    for level in LEVELS_UP:
        a = _m(eng, level)
        b = _m(eng, level, version=v2)
        assert b.attrs["path"].startswith("pandas") and a.attrs["path"] == "sql"
        cols = [c for c in METRIC_COLUMNS if c not in ("code", "geometry")]
        pd.testing.assert_frame_equal(
            pd.DataFrame(a[cols]), pd.DataFrame(b[cols]), check_dtype=False
        )
    f = metrics.incident_frame(eng, START, END, version=v2)
    assert f["grid_code"].value_counts().to_dict() == {G11: 5, G12: 4, G21: 1}


def test_incident_frame_and_trend(tiny):
    eng = tiny[0]
    f = metrics.incident_frame(
        eng, START, END, columns=["category", "lon", "lat", "hours_to_resolve", "grid_code"]
    )
    assert len(f) == 11  # 10 in units + #15 outside
    assert f["lon"].between(110.1, 110.6).all()
    assert sorted(f["hours_to_resolve"].dropna()) == [4.0, 10.0, 12.0, 20.0, 30.0, 384.0]
    tr = metrics.unit_trend(
        eng, "grid", G11, interval="month", start=_t(3, 1), end=END, now=NOW, tz="UTC"
    )
    assert tr["incidents"].tolist() == [1, 1, 5]  # March #6, April #5, May
    assert tr["period"].iloc[0] == pd.Timestamp("2026-03-01", tz="UTC")
    wk = metrics.unit_trend(eng, "community", C1, interval="week", start=START, end=END, now=NOW)
    assert wk["incidents"].sum() == 9 and (wk["period"].dt.day_of_week == 0).all()
    with pytest.raises(NotFound):
        metrics.unit_trend(eng, "grid", "450902999999999", now=NOW)


def test_resolve_window_defaults():
    s, e, n = resolve_window(now=NOW, tz="Asia/Shanghai")
    assert e == NOW and e - s == timedelta(days=30)
    s, e, _ = resolve_window(start="2026-05-01", now=NOW, tz="Asia/Shanghai")
    assert e == NOW and s.utcoffset() == timedelta(hours=8)


# --------------------------------------------------------------------------- the demo


@pytest.fixture(scope="module")
def demo_window(demo_db_url):
    eng = get_engine(demo_db_url)
    _, last = metrics.incident_time_range(eng)
    end = last.normalize()
    return eng, end - pd.Timedelta(days=30), end


def test_rollups_are_consistent_on_the_demo(demo_window):
    eng, start, end = demo_window
    kw = dict(start=start, end=end, now=end)
    by = {lv: metrics.load_metrics(eng, lv, **kw) for lv in LEVELS_UP}
    assert len(by["grid"]) == 8798
    counts = ["incidents", "previous_incidents", "open_backlog", "overdue"]
    assert by["grid"]["incidents"].sum() > 1000
    for child, parent in (("grid", "community"), ("community", "street"), ("street", "district")):
        up = by[child].groupby("parent_code")[counts + ["workers", "load_index"]].sum()
        p = by[parent].set_index("code")
        for c in counts:
            assert (up[c].reindex(p.index, fill_value=0) == p[c]).all(), (child, c)
        np.testing.assert_allclose(up["workers"].reindex(p.index, fill_value=0), p["workers"])
        np.testing.assert_allclose(up["load_index"].reindex(p.index, fill_value=0), p["load_index"])
    assert by["grid"]["load_index"].mean() == pytest.approx(100.0)
    totals = {lv: int(by[lv]["incidents"].sum()) for lv in LEVELS_UP}
    assert len(set(totals.values())) == 1, totals


def test_hotspots_on_the_demo(demo_window):
    eng, start, end = demo_window
    h = metrics.unit_hotspots(eng, "grid", start=start, end=end, now=end)
    assert len(h) == 8798
    assert set(h["class"]) <= {
        "hot_99",
        "hot_95",
        "hot_90",
        "not_significant",
        "cold_90",
        "cold_95",
        "cold_99",
    }
    assert h["class"].str.startswith("hot").sum() > 0


# --------------------------------------------------------------------------- HTTP API


@pytest.fixture(scope="module")
def api_window(demo_window):
    _, start, end = demo_window
    return {"from": start.isoformat(), "to": end.isoformat()}


def test_api_metrics_json_and_geojson(demo_http, api_window):
    r = demo_http.get("/metrics")
    assert r.status_code == 200 and "per_1000_residents" in r.json()["metrics"]
    r = demo_http.get("/metrics/grid", params=api_window)
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["units"]) == 8798 and body["version_id"] >= 1
    assert set(METRIC_COLUMNS) - {"geometry"} <= set(body["units"][0])
    total = sum(u["incidents"] for u in body["units"])
    r = demo_http.get("/metrics/district", params={**api_window, "format": "geojson"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 7
    assert sum(f["properties"]["incidents"] for f in fc["features"]) == total
    assert fc["features"][0]["geometry"]["type"] == "MultiPolygon"
    one = demo_http.get("/metrics/street", params={**api_window, "category": "sanitation"})
    assert one.json()["categories"] == ["sanitation"]
    assert sum(u["incidents"] for u in one.json()["units"]) < total


def test_api_trend_and_hotspots(demo_http, api_window):
    units = demo_http.get("/metrics/community", params=api_window).json()["units"]
    busiest = max(units, key=lambda u: u["incidents"])
    r = demo_http.get(
        f"/metrics/community/{busiest['code']}/trend", params={**api_window, "interval": "week"}
    )
    assert r.status_code == 200, r.text
    periods = r.json()["periods"]
    assert 4 <= len(periods) <= 6 and sum(p["incidents"] for p in periods) == busiest["incidents"]
    r = demo_http.get(f"/metrics/community/{busiest['code']}/trend", params={"interval": "month"})
    assert r.status_code == 200 and len(r.json()["periods"]) >= 12
    r = demo_http.get("/hotspots", params={**api_window, "level": "grid"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["units"]) == 8798 and sum(body["classes"].values()) == 8798
    assert {"code", "name", "value", "z", "p_value", "p_fdr", "class"} <= set(body["units"][0])


def test_api_errors(demo_http, api_window):
    r = demo_http.get("/metrics/province")
    assert r.status_code == 400 and r.json()["error"] == "InvalidInput"
    assert r.json()["parameter"] == "level"
    r = demo_http.get("/metrics/grid", params={"category": "nope"})
    assert r.status_code == 400 and r.json()["parameter"] == "category"
    r = demo_http.get("/metrics/grid", params={"from": "yesterday"})
    assert r.status_code == 400 and r.json()["parameter"] == "from"
    r = demo_http.get("/metrics/grid", params={**api_window, "format": "xml"})
    assert r.status_code == 400 and r.json()["parameter"] == "format"
    r = demo_http.get("/metrics/grid/450999999999999/trend")
    assert r.status_code == 404 and r.json()["error"] == "NotFound"
    r = demo_http.get("/metrics/grid/450902001001001/trend", params={"interval": "day"})
    assert r.status_code == 400 and r.json()["parameter"] == "interval"
    r = demo_http.get("/hotspots", params={"metric": "geometry"})
    assert r.status_code == 400 and r.json()["parameter"] == "metric"


def test_unit_cache_is_explicit(tiny):
    """Unit geometries and chains are kept only in the cache the caller passes."""
    eng = tiny[0]
    cache = UnitCache()
    a = _m(eng, "community", cache=cache)
    assert len(cache) > 0
    b = _m(eng, "community", cache=cache)
    pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b))
    cache.clear()
    assert len(cache) == 0
