"""Open311 GeoReport v2 over real HTTP: services, requests, filters, the 90-day default
window, the 1000-request cap and the spec's error format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import small_city
from small_city import CENTRES, GRIDS, OUTSIDE
from sqlalchemy import text

from geogrid.core import crs as gcrs
from geogrid.services import incidents

BASE = "/open311/v2"
REQUEST_FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        yield c


@pytest.fixture(scope="module")
def client(city):
    with small_city.serve(city) as cl:
        yield cl


def _spec_error(r, code: int, contains: str = "") -> None:
    assert r.status_code == code, r.text
    body = r.json()
    assert isinstance(body, list) and len(body) == 1
    assert set(body[0]) == {"code", "description"} and body[0]["code"] == code
    assert contains in body[0]["description"]


def test_services(client):
    r = client.get(f"{BASE}/services.json")
    assert r.status_code == 200
    services = {s["service_code"]: s for s in r.json()}
    assert set(services) == {"garbage", "small_ads", "illegal_construction", "dispute"}
    g = services["garbage"]
    assert set(g) == {
        "service_code",
        "service_name",
        "description",
        "metadata",
        "type",
        "keywords",
        "group",
    }
    assert (g["service_name"], g["metadata"], g["type"]) == ("垃圾乱堆乱放", False, "realtime")
    assert "Garbage dumped" in g["keywords"] and g["group"].startswith("sanitation")
    assert services["dispute"]["group"].startswith("disputes")


def test_service_definition(client):
    r = client.get(f"{BASE}/services/dispute.json")
    assert r.status_code == 200 and r.json() == {"service_code": "dispute", "attributes": []}
    _spec_error(client.get(f"{BASE}/services/potholes.json"), 404, "potholes")


def test_xml_is_refused_in_the_spec_format(client):
    _spec_error(client.get(f"{BASE}/services.xml"), 400, "format 'xml' not supported")
    _spec_error(client.get(f"{BASE}/requests.xml"), 400, "not supported")


def test_anonymous_form_post_and_get_one(city, client):
    lon, lat = CENTRES[GRIDS[1]]
    r = client.post(
        f"{BASE}/requests.json",
        data={
            "service_code": "garbage",
            "lat": str(lat),
            "long": str(lon),
            "description": "小区门口垃圾三天没人清",
            "address_string": "江滨路12号",
            "media_url": "https://example.org/p.jpg",
            "email": "resident@example.org",
        },
    )
    assert r.status_code == 201, r.text
    (created,) = r.json()
    assert set(created) == {"service_request_id", "service_notice", "account_id"}
    assert created["account_id"] is None and "江滨社区第2网格" in created["service_notice"]
    rid = created["service_request_id"]

    r = client.get(f"{BASE}/requests/{rid}.json")
    assert r.status_code == 200
    (req,) = r.json()
    assert set(req) == REQUEST_FIELDS
    assert req["service_request_id"] == rid and req["status"] == "open"
    assert req["service_code"] == "garbage" and req["service_name"] == "垃圾乱堆乱放"
    assert req["agency_responsible"] == f"江滨社区第2网格 ({GRIDS[1]})"
    assert req["address"] == "江滨路12号" and req["media_url"] == "https://example.org/p.jpg"
    assert (req["long"], req["lat"]) == pytest.approx((lon, lat), abs=1e-12)
    requested = datetime.fromisoformat(req["requested_datetime"])
    expected = datetime.fromisoformat(req["expected_datetime"])
    assert requested.tzinfo is not None and expected - requested == timedelta(hours=24)
    with city.engine.connect() as conn:
        kind, reporter, dump = conn.execute(
            text(
                "SELECT i.reporter_kind, i.reporter_id, (SELECT string_agg(e::text, ' ') FROM "
                "incident_event e WHERE e.incident_id = i.id) FROM incident i WHERE i.id = :i"
            ),
            {"i": int(rid)},
        ).one()
    assert (kind, reporter) == ("resident", None)
    assert "resident@example.org" not in dump  # personal data is not stored

    # resolving it shows up as closed with the note
    incidents.transition(city.engine, int(rid), "accepted")
    incidents.transition(city.engine, int(rid), "in_progress")
    incidents.transition(city.engine, int(rid), "resolved", note="已清运")
    (req,) = client.get(f"{BASE}/requests/{rid}.json").json()
    # the public status text, never the staff note (issue 10, item 13)
    assert (req["status"], req["status_notes"]) == ("closed", "已处理 resolved")
    assert "已清运" not in str(req)
    assert req["updated_datetime"] >= req["requested_datetime"]


def test_json_post_with_api_key_and_bearer(city, client):
    lon, lat = CENTRES[GRIDS[0]]
    body = {"service_code": "small_ads", "lat": lat, "long": lon}
    r = client.post(f"{BASE}/requests.json", json={**body, "api_key": city.tokens["w1"]})
    assert r.status_code == 201, r.text
    rid = int(r.json()[0]["service_request_id"])
    r = client.post(f"{BASE}/requests.json", json=body, headers=city.auth("community"))
    assert r.status_code == 201, r.text
    rid2 = int(r.json()[0]["service_request_id"])
    with city.engine.connect() as conn:
        rows = dict(
            conn.execute(
                text("SELECT id, reporter_id FROM incident WHERE id IN (:a, :b)"),
                {"a": rid, "b": rid2},
            ).all()
        )
    assert rows == {rid: city.accounts["w1"].id, rid2: city.accounts["community"].id}


def test_post_errors(city, client):
    lon, lat = CENTRES[GRIDS[0]]
    url = f"{BASE}/requests.json"
    _spec_error(
        client.post(
            url, data={"service_code": "garbage", "lat": lat, "long": lon, "api_key": "not-a-key"}
        ),
        401,
        "unknown",
    )
    _spec_error(
        client.post(
            url,
            data={"service_code": "garbage", "lat": lat, "long": lon, "api_key": city.tokens["w2"]},
        ),
        403,
        "grid",
    )
    _spec_error(client.post(url, data={"lat": lat, "long": lon}), 400, "service_code")
    _spec_error(
        client.post(url, data={"service_code": "potholes", "lat": lat, "long": lon}),
        400,
        "potholes",
    )
    _spec_error(
        client.post(url, data={"service_code": "garbage", "lat": "north", "long": lon}), 400, "lat"
    )
    _spec_error(
        client.post(url, data={"service_code": "garbage", "address_string": "江滨路"}),
        400,
        "lat and long",
    )


def test_post_outside_every_grid_is_accepted_with_a_notice(client):
    r = client.post(
        f"{BASE}/requests.json",
        data={"service_code": "garbage", "lat": OUTSIDE[1], "long": OUTSIDE[0]},
    )
    assert r.status_code == 201
    assert "outside every grid" in r.json()[0]["service_notice"]
    (req,) = client.get(f"{BASE}/requests/{r.json()[0]['service_request_id']}.json").json()
    assert req["agency_responsible"] is None and "outside" in req["service_notice"]


def test_post_gcj02_extension_is_converted(city, client):
    wlon, wlat = CENTRES[GRIDS[2]]
    x, y = gcrs.from_wgs84(np.array([wlon]), np.array([wlat]), "gcj02")
    r = client.post(
        f"{BASE}/requests.json",
        data={"service_code": "garbage", "long": float(x[0]), "lat": float(y[0]), "crs": "gcj02"},
    )
    assert r.status_code == 201, r.text
    (req,) = client.get(f"{BASE}/requests/{r.json()[0]['service_request_id']}.json").json()
    ex, ey = gcrs.to_wgs84(x, y, "gcj02")
    assert (req["long"], req["lat"]) == pytest.approx((float(ex[0]), float(ey[0])), abs=1e-12)
    assert req["agency_responsible"].endswith(f"({GRIDS[2]})")


def test_get_one_unknown(client):
    _spec_error(client.get(f"{BASE}/requests/999999.json"), 404, "999999")
    _spec_error(client.get(f"{BASE}/requests/abc.json"), 404)


def test_filters_and_default_window(city, client):
    now = datetime.now(UTC)
    lon, lat = CENTRES[GRIDS[3]]

    def make(days: float, status: str | None = None) -> str:
        inc = incidents.create_incident(
            city.engine,
            category="dispute",
            lon=lon,
            lat=lat,
            reported_at=now - timedelta(days=days),
        )
        if status:
            for s in ("accepted", "in_progress", status):
                incidents.transition(city.engine, inc["id"], s)
        return str(inc["id"])

    old, recent, done = make(100), make(10), make(5, "resolved")

    def ids(**params) -> list[str]:
        r = client.get(f"{BASE}/requests.json", params=params)
        assert r.status_code == 200, r.text
        return [x["service_request_id"] for x in r.json()]

    assert ids(service_code="dispute") == [done, recent]  # default 90 days, newest first
    assert ids(service_code="dispute", status="open") == [recent]
    assert ids(service_code="dispute", status="closed") == [done]
    start = (now - timedelta(days=120)).isoformat()
    assert ids(service_code="dispute", start_date=start) == [done, recent, old]
    end = (now - timedelta(days=95)).isoformat()
    assert ids(service_code="dispute", end_date=end) == [old]
    assert ids(
        service_code="dispute", start_date=start, end_date=(now - timedelta(days=7)).isoformat()
    ) == [recent, old]
    # service_request_id overrides every other filter
    assert sorted(ids(service_request_id=f"{old},{done}", status="open")) == sorted([old, done])
    assert ids(service_code="dispute,nothing") == [done, recent]


def test_filter_errors(client):
    url = f"{BASE}/requests.json"
    _spec_error(client.get(url, params={"start_date": "yesterday"}), 400, "start_date")
    _spec_error(client.get(url, params={"start_date": "2026-05-01T08:00:00"}), 400, "time zone")
    _spec_error(client.get(url, params={"status": "pending"}), 400, "status")
    _spec_error(client.get(url, params={"service_request_id": "1,x"}), 400, "service_request_id")
    _spec_error(
        client.get(
            url, params={"start_date": "2026-05-02T00:00:00Z", "end_date": "2026-05-01T00:00:00Z"}
        ),
        400,
        "start_date",
    )


def test_at_most_1000_requests(city, client):
    with city.engine.begin() as conn:
        n = conn.execute(
            text(
                "INSERT INTO incident (category, reported_at, updated_at, due_at, status, geom) "
                "SELECT 'small_ads', now() - g * interval '1 minute', now(), "
                "now() - g * interval '1 minute' + interval '48 hours', 'reported', "
                "ST_SetSRID(ST_MakePoint(110.15, 22.63), 4326) FROM generate_series(1, 1100) g"
            )
        ).rowcount
    assert n == 1100
    r = client.get(f"{BASE}/requests.json")
    assert r.status_code == 200
    rows = r.json()
    assert len(rows) == 1000
    stamps = [x["requested_datetime"] for x in rows]
    assert stamps == sorted(stamps, reverse=True)
    assert all(set(x) == REQUEST_FIELDS for x in rows[:5])
