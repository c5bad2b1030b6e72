"""The demo behind the service: health, point lookup over HTTP, the demo's must-shows."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import numpy as np
from sqlalchemy import text

from api.models.boundaries import BoundaryLayer, BoundaryVersion
from geogrid.core import crs as gcrs
from geogrid.store import get_engine


def test_health(demo_http):
    r = demo_http.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "healthy"
    assert body["postgis"].startswith("3.")
    assert body["published_version"]["grids"] == 8798
    assert body["published_version"]["published_at"].endswith("+00:00")  # UTC, ISO 8601


def test_boundary_versions(demo_http):
    r = demo_http.get("/boundaries/versions")
    assert r.status_code == 200
    listed = [BoundaryVersion.model_validate(v) for v in r.json()]
    assert [v.status for v in listed].count("published") == 1
    stamps = [v.created_at for v in listed if v.created_at is not None]
    assert stamps and all(t.utcoffset() == timedelta(0) for t in stamps)  # sent in UTC


def test_locate_all_four_levels(demo_http):
    r = demo_http.get("/locate", params={"lon": 110.18, "lat": 22.65})
    assert r.status_code == 200
    body = r.json()
    assert body["inside"] is True
    units = body["units"]
    assert set(units) == {"district", "street", "community", "grid"}
    assert units["district"]["code"] == "450902" and units["district"]["name"] == "玉州区"
    assert units["grid"]["code"].startswith(units["community"]["code"])
    assert units["community"]["code"].startswith(units["street"]["code"])


def test_locate_gcj02_matches_wgs84(demo_http):
    glon, glat = gcrs.wgs84_to_gcj02(110.18, 22.65)
    a = demo_http.get("/locate", params={"lon": 110.18, "lat": 22.65}).json()
    b = demo_http.get("/locate", params={"lon": glon, "lat": glat, "crs": "gcj02"}).json()
    assert b["query"]["crs"] == "gcj02"
    assert abs(b["wgs84"]["lon"] - 110.18) < 1e-8
    assert b["units"]["grid"]["code"] == a["units"]["grid"]["code"]


def test_locate_outside_and_bad_parameters(demo_http):
    r = demo_http.get("/locate", params={"lon": 116.4, "lat": 39.9})
    assert r.status_code == 200 and r.json()["inside"] is False
    assert "outside every district" in r.json()["message"]
    r = demo_http.get("/locate", params={"lon": 200, "lat": 22})
    assert r.status_code == 400
    assert r.json()["parameter"] == "lon"
    r = demo_http.get("/locate", params={"lon": "abc", "lat": 22})
    assert r.status_code == 400 and r.json()["parameter"] == "lon"
    r = demo_http.get("/locate", params={"lon": 110, "lat": 22, "crs": "mars"})
    assert r.status_code == 400 and r.json()["parameter"] == "crs"


def test_boundaries_geojson_with_bbox(demo_http):
    r = demo_http.get("/boundaries/district")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    assert len(r.json()["features"]) == 7
    layer = BoundaryLayer.model_validate(r.json())  # the documented answer
    assert {f.properties.level for f in layer.features} == {"district"}
    assert layer.version_id == demo_http.get("/health").json()["published_version"]["id"]
    r = demo_http.get("/boundaries/grid", params={"bbox": "110.15,22.62,110.16,22.63"})
    feats = r.json()["features"]
    assert 0 < len(feats) < 200
    r = demo_http.get("/boundaries/grid", params={"bbox": "110.15,22.62,110.16"})
    assert r.status_code == 400 and r.json()["parameter"] == "bbox"
    r = demo_http.get("/boundaries/town")
    assert r.status_code == 400 and r.json()["parameter"] == "level"


def test_demo_must_show(demo_db_url):
    engine = get_engine(demo_db_url)
    with engine.connect() as conn:
        counts = dict(
            conn.execute(
                text(
                    "SELECT level, count(*) FROM unit u JOIN boundary_version v ON v.id = u.version_id "
                    "AND v.status = 'published' GROUP BY level"
                )
            ).all()
        )
        assert counts["district"] == 7 and counts["grid"] == 8798
        broken = conn.execute(
            text(
                "SELECT count(*) FROM unit g LEFT JOIN unit c ON c.code = g.parent_code "
                "AND c.version_id = g.version_id LEFT JOIN unit s ON s.code = c.parent_code "
                "AND s.version_id = g.version_id LEFT JOIN unit d ON d.code = s.parent_code "
                "AND d.version_id = g.version_id WHERE g.level = 'grid' AND (c.level IS DISTINCT "
                "FROM 'community' OR s.level IS DISTINCT FROM 'street' OR d.level IS DISTINCT "
                "FROM 'district')"
            )
        ).scalar_one()
        assert broken == 0
        worst = conn.execute(
            text(
                "SELECT max(abs(s.a / c.area_m2 - 1)) FROM unit c JOIN (SELECT parent_code, "
                "version_id, sum(area_m2) a FROM unit WHERE level = 'grid' GROUP BY 1, 2) s "
                "ON s.parent_code = c.code AND s.version_id = c.version_id"
            )
        ).scalar_one()
        assert worst < 1e-4  # 0.01 %
        hh = conn.execute(text("SELECT sum(households) FROM building")).scalar_one()
        grid_hh = conn.execute(
            text("SELECT sum(households) FROM unit WHERE level = 'grid'")
        ).scalar_one()
        assert hh == grid_hh and 1.4e6 < hh < 1.9e6
        # households per urban grid: 200–400 typical
        med = conn.execute(
            text(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY households) FROM unit "
                "WHERE level = 'grid' AND name LIKE '%社区%'"
            )
        ).scalar_one()
        assert 200 <= med <= 400
    env = {**os.environ, "GEOGRID_DATABASE_URL": demo_db_url}
    res = subprocess.run(
        [sys.executable, "-m", "geogrid.cli", "boundaries", "validate"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "no findings" in res.stdout


def test_demo_is_deterministic():
    from geogrid.demo.boundaries import build_hierarchy

    a = build_hierarchy(seed=2016)["grid"]
    b = build_hierarchy(seed=2016)["grid"]
    assert list(a["code"]) == list(b["code"])
    assert np.array_equal(a["households"].to_numpy(), b["households"].to_numpy())


def test_time_travel_parameters(demo_http):
    """Lookups and metrics can be asked for the boundaries published at a date."""
    later = demo_http.get("/metrics/district", params={"as_of": "2100-01-01T00:00:00Z"})
    now = demo_http.get("/metrics/district")
    assert later.status_code == 200 and later.json()["version_id"] == now.json()["version_id"]
    before = demo_http.get("/metrics/district", params={"as_of": "2001-01-01T00:00:00Z"})
    assert before.status_code == 404 and "2001-01-01" in before.json()["message"]
    bad = demo_http.get("/metrics/district", params={"as_of": "soon"})
    assert bad.status_code == 400 and bad.json()["parameter"] == "as_of"
    old = demo_http.get(
        "/locate", params={"lon": 110.18, "lat": 22.65, "as_of": "2001-01-01T00:00:00Z"}
    )
    assert old.status_code == 404


def test_out_of_range_numbers_and_dates_are_400(demo_http):
    for params, name in [({"lon": "nan", "lat": 22}, "lon"), ({"lon": "inf", "lat": 22}, "lon")]:
        r = demo_http.get("/locate", params=params)
        assert r.status_code == 400 and r.json()["parameter"] == name, r.text
    for path, params, name in [
        ("/metrics/district", {"from": "0001-01-02", "to": "2020-01-01"}, "from"),
        ("/metrics/district", {"from": "2020-01-01", "to": "9999-12-31"}, "to"),
        ("/metrics/district", {"from": "2020-02-01", "to": "2020-01-01"}, "from"),
        ("/hotspots", {"from": "0001-01-02", "to": "2020-01-01"}, "from"),
        ("/ogc/collections/incidents/items", {"datetime": "0001-01-01/9999-12-31"}, "datetime"),
        ("/tiles/incidents/10/823/451.mvt", {"from": "0001-01-01"}, "from"),
        ("/metrics/district/450902/trend", {"from": "1990-01-01", "to": "2026-01-01"}, "from"),
    ]:
        r = demo_http.get(path, params=params)
        assert r.status_code == 400, (path, params, r.status_code, r.text[:200])
        assert r.json()["parameter"] == name, (path, r.json())


def test_unknown_filter_values_are_400(demo_http):
    for params, name in [({"category": "nope"}, "category"), ({"status": "nope"}, "status")]:
        r = demo_http.get("/ogc/collections/incidents/items", params=params)
        assert r.status_code == 400 and r.json()["parameter"] == name, r.text[:300]
        assert "sanitation" in r.text or "reported" in r.text  # says what is allowed
