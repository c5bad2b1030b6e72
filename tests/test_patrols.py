"""Patrols (issue 13) on the small city: hand-made tracks measured in the metric CRS
(EPSG:4546, CGCS2000 3° Gauss-Kruger, CM 111°E), idempotent uploads, scoped reads.

Grid 001 spans lon CX-DX..CX, lat CY-DY..CY; grid 002 is east of it (see small_city)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyproj
import pytest
import shapely
import small_city
from small_city import CENTRES, CX, CY, DX, DY, GRIDS
from sqlalchemy import text

from geogrid.core.crs import metric_crs
from geogrid.core.patrol import TrackRules, clean_track, coverage, grid_metrics

# the tests share the module's city in order (scripts/test.sh runs them in one process)
pytestmark = pytest.mark.serial

CRS = metric_crs(CX)  # EPSG:4546
TO_M = pyproj.Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
TO_LL = pyproj.Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
DAY = datetime(2026, 5, 4, 1, 0, tzinfo=UTC)  # 09:00 in Yulin
T0 = DAY.timestamp()


def _grid_m(i: int) -> shapely.Geometry:
    g = small_city.layers()["grid"].geometry.iloc[i]
    return shapely.transform(g, lambda xy: np.column_stack(TO_M.transform(xy[:, 0], xy[:, 1])))


def _points(lon, lat, t, acc=5.0) -> list[list[float]]:
    return [
        [float(x), float(y), float(s) * 1000.0, acc] for x, y, s in zip(lon, lat, t, strict=True)
    ]


def _body(points, start=DAY, minutes=60, checkins=()) -> dict:
    return {
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(minutes=minutes)).isoformat(),
        "crs": "wgs84",
        "points": points,
        "checkins": list(checkins),
    }


def _inner_line():
    """300 m due east (in EPSG:4546) through grid 001's centre, 31 points 10 s apart."""
    cx, cy = TO_M.transform(CX - DX / 2, CY - DY / 2)
    x = cx - 150 + np.arange(31) * 10.0
    y = np.full(31, cy)
    lon, lat = TO_LL.transform(x, y)
    return np.asarray(lon), np.asarray(lat), T0 + np.arange(31) * 10.0


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        # buildings: A 10 m from where the worker stops, B 120 m off the track, C named by
        # a check-in (far from the track)
        cx, cy = TO_M.transform(CX - DX / 2, CY - DY / 2)
        pts = {"A": (cx + 10, cy + 10), "B": (cx, cy + 120), "C": (cx - 200, cy - 200)}
        ids = {}
        with c.engine.begin() as conn:
            for k, (x, y) in pts.items():
                lon, lat = TO_LL.transform(x, y)
                ids[k] = conn.execute(
                    text(
                        "INSERT INTO building (households, population, source, geom) VALUES "
                        "(10, 30, 'test', ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"
                    ),
                    {"x": lon, "y": lat},
                ).scalar_one()
        c.buildings = ids
        yield c


@pytest.fixture(scope="module")
def client(city):
    with small_city.serve(city) as cl:
        yield cl


# --------------------------------------------------------------------------- pure core
def test_coverage_of_an_inner_line_includes_both_round_caps():
    g = _grid_m(0)
    lon, lat, t = _inner_line()
    track = clean_track(lon, lat, t, np.full(31, 5.0), crs=CRS)
    m = grid_metrics(track, [GRIDS[0]], [g])
    # by hand: a 300 m line buffered by 50 m = a 300 × 100 rectangle + two half discs of
    # radius 50 (one full disc), all inside the grid: (300·100 + π·50²) / area(grid)
    expected = (300 * 100 + math.pi * 50**2) / shapely.area(g)
    assert m.coverage[0] == pytest.approx(expected, rel=1e-4)
    assert 0.150 < m.coverage[0] < 0.153  # ≈ 37,854 m² of ≈ 250,000 m²
    assert track.distance_m == pytest.approx(300.0, abs=1e-6)
    assert m.seconds[0] == pytest.approx(300.0)
    assert m.length_m[0] == pytest.approx(300.0, abs=1e-6)


def test_coverage_of_a_line_across_the_grid_has_no_caps_inside():
    """A straight line through the middle of grid 001 from its west to its east edge: the
    caps fall outside it, so coverage = (100 m × width) / area; the east cap, a half disc,
    lies in grid 002: (π·50²/2) / area(002)."""
    lat = CY - DY / 2
    lon = np.linspace(CX - DX, CX, 51)
    g1, g2 = _grid_m(0), _grid_m(1)
    x, y = TO_M.transform(lon, np.full(51, lat))
    width = float(np.hypot(np.diff(x), np.diff(y)).sum())  # ≈ 500 m
    cov = coverage(shapely.LineString(np.column_stack([x, y])), [g1, g2], 50.0)
    assert cov[0] == pytest.approx(100 * width / shapely.area(g1), rel=1e-4)
    assert cov[1] == pytest.approx(math.pi * 50**2 / 2 / shapely.area(g2), rel=1e-3)
    assert 0.195 < cov[0] < 0.205


def test_cleaning_drops_inaccurate_points_spikes_and_oversampling():
    lon, lat, t = _inner_line()
    acc = np.full(31, 5.0)
    acc[5] = 500.0  # worse than 50 m: dropped
    lat = lat.copy()
    lat[12] += 400 / 110_574  # a 400 m spike north for one fix (40 m/s): dropped
    # an extra fix 2 s after the first: under the 5 s sampling interval, dropped
    lon = np.insert(lon, 1, lon[0])
    lat = np.insert(lat, 1, lat[0])
    t = np.insert(t, 1, t[0] + 2)
    acc = np.insert(acc, 1, 5.0)
    tr = clean_track(
        lon, lat, t, acc, rules=TrackRules(min_interval_s=5, max_accuracy_m=50), crs=CRS
    )
    assert tr.n == 29 and tr.received == 32
    assert tr.distance_m == pytest.approx(300.0, abs=1e-6)
    assert tr.part.max() == 0


# --------------------------------------------------------------------------- API
def test_time_in_grid_split_at_the_boundary(city, client):
    """20 points at equal steps along lat CY-DY/2 from grid 001's centre to grid 002's,
    30 s apart: the boundary (lon CX) is half-way between points 9 and 10, so grid 001
    gets 9.5 segments × 30 s = 285 s, grid 002 the same (time interpolated along the
    segment it crosses); each gets half the distance."""
    lon = np.linspace(CX - DX / 2, CX + DX / 2, 20)
    lat = np.full(20, CY - DY / 2)
    t = T0 + np.arange(20) * 30.0
    r = client.post("/patrols", json=_body(_points(lon, lat, t)), headers=city.auth("w1"))
    assert r.status_code == 201, r.text
    out = r.json()
    x, y = TO_M.transform(lon, lat)
    dist = float(np.hypot(np.diff(x), np.diff(y)).sum())
    assert out["distance_m"] == pytest.approx(dist, abs=1e-3)
    assert 495 < out["distance_m"] < 505
    grids = {g["grid_code"]: g for g in out["grids"]}
    assert set(grids) == {GRIDS[0], GRIDS[1]}
    assert grids[GRIDS[0]]["seconds_in_grid"] == pytest.approx(285.0, abs=0.05)
    assert grids[GRIDS[1]]["seconds_in_grid"] == pytest.approx(285.0, abs=0.05)
    assert grids[GRIDS[0]]["length_m"] == pytest.approx(dist / 2, abs=0.05)
    assert out["duration_s"] == 3600.0
    assert out["grid_code"] in (GRIDS[0], GRIDS[1])
    assert out["metric_crs"] == "EPSG:4546"


def test_buildings_visited_by_dwell_and_checkin(city, client):
    """The worker walks the inner line, then stands 95 s next to building A (dwell: within
    25 m for ≥ 60 s) and checks in at building C: A and C visited, B (120 m off) not."""
    lon, lat, t = _inner_line()
    cx, cy = TO_M.transform(CX - DX / 2, CY - DY / 2)
    sx, sy = TO_LL.transform(np.full(20, cx + 150.0) + np.arange(20) * 0.1, np.full(20, cy))
    # walk back to the centre, then stand there 95 s (20 fixes 5 s apart)
    back_lon, back_lat = TO_LL.transform(cx + 150 - np.arange(1, 16) * 10.0, np.full(15, cy))
    stand_lon, stand_lat = TO_LL.transform(cx + np.arange(20) * 0.2, np.full(20, cy))
    all_lon = np.concatenate([lon, back_lon, stand_lon])
    all_lat = np.concatenate([lat, back_lat, stand_lat])
    all_t = np.concatenate([t, t[-1] + np.arange(1, 16) * 10.0, t[-1] + 150 + np.arange(20) * 5.0])
    ck_lon, ck_lat = TO_LL.transform(cx - 200, cy - 200)
    checkin = {
        "lon": ck_lon,
        "lat": ck_lat,
        "at": (DAY + timedelta(minutes=9)).isoformat(),
        "building_id": city.buildings["C"],
    }
    body = _body(_points(all_lon, all_lat, all_t), checkins=[checkin])
    r = client.post("/patrols", json=body, headers=city.auth("w1"))
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["buildings_visited"] == 2
    assert len(out["checkins"]) == 1
    with city.engine.connect() as c:
        kind = c.execute(
            text("SELECT building_source, grid_code FROM patrol_checkin WHERE id = :i"),
            {"i": out["checkins"][0]},
        ).one()
    assert tuple(kind) == ("building", GRIDS[0])
    bad = dict(checkin, building_id=999_999)
    r = client.post("/patrols", json=_body([], checkins=[bad]), headers=city.auth("w1"))
    assert r.status_code == 400 and "building_id" in r.text


def test_upload_is_idempotent(city, client):
    lon, lat, t = _inner_line()
    body = _body(_points(lon, lat, t), start=DAY + timedelta(hours=3))
    h = {**city.auth("w1"), "Idempotency-Key": "patrol-test-1"}
    with city.engine.connect() as c:
        before = c.execute(text("SELECT count(*) FROM patrol")).scalar_one()
    first = client.post("/patrols", json=body, headers=h)
    again = client.post("/patrols", json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    with city.engine.connect() as c:
        after = c.execute(text("SELECT count(*) FROM patrol")).scalar_one()
        grids = c.execute(
            text("SELECT count(*) FROM patrol_grid WHERE patrol_id = :i"), {"i": first.json()["id"]}
        ).scalar_one()
    assert after == before + 1 and grids == 1
    other = client.post("/patrols", json=_body(_points(lon[:5], lat[:5], t[:5])), headers=h)
    assert other.status_code == 409


def test_bad_uploads_name_the_field(city, client):
    h = city.auth("w1")
    r = client.post("/patrols", json=_body([[110.1, 22.6]]), headers=h)
    assert r.status_code == 400 and "points[0]" in r.text
    r = client.post("/patrols", json=_body([], minutes=-5), headers=h)
    assert r.status_code == 400 and "ended_at" in r.text
    r = client.post("/patrols", json={**_body([]), "crs": "mars"}, headers=h)
    assert r.status_code == 400 and "crs" in r.text
    r = client.post("/patrols", json=_body([[CX, CY, T0 * 1000]]), headers=city.auth("leader"))
    assert r.status_code == 403


def test_day_tracks_are_scoped(city, client):
    """w2 walks in grid 002 on the same day; w1 sees only their own tracks, w2 theirs, the
    community admin both with names clear, a leader both with names masked."""
    lon = np.linspace(CX + DX * 0.2, CX + DX * 0.8, 10)
    lat = np.full(10, CY - DY / 2)
    t = T0 + 7200 + np.arange(10) * 20.0
    r = client.post(
        "/patrols",
        json=_body(_points(lon, lat, t), start=DAY + timedelta(hours=2)),
        headers=city.auth("w2"),
    )
    assert r.status_code == 201, r.text
    w1, w2 = city.accounts["w1"], city.accounts["w2"]

    def get(key, **params):
        r = client.get("/patrols", params={"day": "2026-05-04", **params}, headers=city.auth(key))
        assert r.status_code == 200, r.text
        return r.json()["features"]

    mine = get("w1")
    assert mine and {f["properties"]["account_id"] for f in mine} == {w1.id}
    assert {f["properties"]["account_id"] for f in get("w2")} == {w2.id}
    assert get("w1", account_id=w2.id) == []
    com = get("community")
    assert {f["properties"]["account_id"] for f in com} == {w1.id, w2.id}
    assert {f["properties"]["account_name"] for f in com} == {w1.name, w2.name}
    lead = get("leader")
    assert len(lead) == len(com)
    assert all("*" in f["properties"]["account_name"] for f in lead)
    assert all(f["geometry"]["type"] == "MultiLineString" for f in lead)
    assert get("leader", unit=GRIDS[1])  # w2's track and w1's crossing one
    r = client.get("/patrols", params={"day": "2026-05-05"}, headers=city.auth("leader"))
    assert r.json()["features"] == []
    r = client.get("/patrols", params={"day": "04/05/2026"}, headers=city.auth("leader"))
    assert r.status_code == 400 and "day" in r.text
    # metrics: per worker × grid, coverage of the day's union (≤ 1), names masked for leaders
    m = client.get("/patrols/metrics", params={"day": "2026-05-04"}, headers=city.auth("leader"))
    assert m.status_code == 200, m.text
    rows = m.json()
    keys = {(x["account_id"], x["grid_code"]) for x in rows}
    assert (w1.id, GRIDS[0]) in keys and (w2.id, GRIDS[1]) in keys
    assert all(0 <= x["coverage"] <= 1 and "*" in x["account_name"] for x in rows)
    own = client.get("/patrols/metrics", params={"day": "2026-05-04"}, headers=city.auth("w2"))
    assert {x["account_id"] for x in own.json()} == {w2.id}


# --------------------------------------------------------------------------- the map
def test_leader_sees_the_days_tracks_on_the_map(city, client):
    """Headless Chromium: the leader (bearer token) picks the day in the "patrol tracks"
    overlay; the tracks of that day are drawn (rendered line features, names masked)."""
    from test_web import ARGS, CHROMIUM, Page

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    expected = len(
        client.get("/patrols", params={"day": "2026-05-04"}, headers=city.auth("leader")).json()[
            "features"
        ]
    )
    assert expected >= 3
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            web = Page(b, str(client.base_url).rstrip("/"))
            web.page.set_extra_http_headers(city.auth("leader"))
            web.open()
            web.page.wait_for_selector("#lyr-patrols", state="attached", timeout=60_000)
            web.page.evaluate(
                """() => { const d = document.getElementById('patrol-day');
                d.value = '2026-05-04'; d.dispatchEvent(new Event('change')); }"""
            )
            web.page.check("#lyr-patrols")
            web.page.wait_for_function(
                f"window.geogridPatrols.state.data.features.length === {expected}",
                timeout=60_000,
            )
            assert "条轨迹" in web.page.inner_text("#patrol-status")
            web.page.wait_for_function(
                "window.geogrid.map.queryRenderedFeatures({layers: ['patrol-line']}).length > 0",
                timeout=60_000,
            )
            names = web.page.evaluate(
                "() => window.geogrid.map.queryRenderedFeatures({layers: ['patrol-line']})"
                ".map((f) => f.properties.account_name)"
            )
            assert names and all("*" in n for n in names)
            web.shot("patrol-tracks.png")
            assert web.errors == []
        finally:
            b.close()


def test_config_tells_the_phone_the_sampling_and_the_kinds(client):
    cfg = client.get("/config").json()
    assert cfg["patrol"] == {"interval_s": 5.0, "max_accuracy_m": 50.0}  # the settings' defaults
    assert [k["code"] for k in cfg["service_kinds"]][:2] == ["visit", "mediation"]
    assert cfg["service_kinds"][0]["name_zh"] == "走访入户"


def test_a_full_days_track_fits_the_body_limit(city, client):
    """An 8-hour patrol at one fix per 5 s (~290 KB of JSON) is accepted; a body over the
    patrol limit is refused with 413 naming the body."""
    n = 8 * 3600 // 5
    lon0, lat0 = CENTRES[GRIDS[0]]
    ang = np.arange(n) * 2 * np.pi / 720  # circles of ~40 m around the grid's centre
    pts = [
        [lon0 + 0.0004 * np.cos(a), lat0 + 0.0004 * np.sin(a), (T0 + 5 * i) * 1000, 8.0]
        for i, a in enumerate(ang)
    ]
    body = _body(pts, minutes=8 * 60)
    size = len(json.dumps(body))
    assert size > 262_144  # over the general limit
    r = client.post("/patrols", json=body, headers=city.auth("w1"))
    assert r.status_code == 201, r.text[:300]
    huge = client.post(
        "/patrols",
        content=b'{"points": [' + b"[110.1, 22.6, 0, 5]," * 300_000 + b"[0,0,0,0]]}",
        headers={**city.auth("w1"), "Content-Type": "application/json"},
    )
    assert huge.status_code == 413 and "body" in huge.text
