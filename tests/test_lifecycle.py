"""The incident lifecycle: transition table, routing, escalation and overdue rules — pure,
on a real PostGIS database (the small city), and over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import small_city
from small_city import CENTRES, GRIDS, OUTSIDE
from sqlalchemy import text

from geogrid.core import crs as gcrs
from geogrid.core import lifecycle
from geogrid.core.scope import Scope
from geogrid.errors import Conflict, Forbidden, InvalidInput
from geogrid.services import incidents

#: the scope of these tests: the whole city, personal fields clear (as the CLI)
SYSTEM = Scope.system()

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        yield c


@pytest.fixture(scope="module")
def client(city):
    with small_city.serve(city) as cl:
        yield cl


def _new(city, category="garbage", grid=GRIDS[0], **kw):
    lon, lat = CENTRES[grid]
    return incidents.create_incident(city.engine, category=category, lon=lon, lat=lat, **kw)


# --------------------------------------------------------------------------- pure rules
def test_transition_table_allows_the_main_path():
    path = ["reported", "accepted", "dispatched", "in_progress", "resolved", "closed"]
    for a, b in zip(path, path[1:], strict=False):
        lifecycle.check_transition(a, b)
    for s in ("rejected", "duplicate"):
        lifecycle.check_transition("reported", s)


@pytest.mark.parametrize(
    ("frm", "to", "match"),
    [
        ("closed", "accepted", "'closed' is final"),
        ("rejected", "in_progress", "'rejected' is final"),
        ("reported", "resolved", "allowed from 'reported': accepted, rejected, duplicate"),
        ("in_progress", "closed", "from 'in_progress' to 'closed'"),
    ],
)
def test_transition_refused_with_reason(frm, to, match):
    with pytest.raises(Conflict, match=match):
        lifecycle.check_transition(frm, to)


def test_unknown_status_is_invalid_input():
    with pytest.raises(InvalidInput, match="status='done'"):
        lifecycle.check_transition("reported", "done")


def test_every_status_has_a_row_and_final_ones_are_empty():
    assert set(lifecycle.TRANSITIONS) == set(lifecycle.STATUSES)
    assert all(not lifecycle.TRANSITIONS[s] for s in lifecycle.FINAL)
    assert all(t in lifecycle.STATUSES for v in lifecycle.TRANSITIONS.values() for t in v)


def test_open311_status_mapping():
    assert [lifecycle.open311_status(s) for s in lifecycle.STATUSES] == [
        "open",
        "open",
        "open",
        "open",
        "closed",
        "closed",
        "closed",
        "closed",
    ]
    assert lifecycle.statuses_for_open311("open") == [
        "reported",
        "accepted",
        "dispatched",
        "in_progress",
    ]
    with pytest.raises(InvalidInput, match="status"):
        lifecycle.statuses_for_open311("pending")


def test_escalation_level_per_time_limit():
    cat = {"limit_hours": 24, "escalate_level": "grid"}
    at = [
        lifecycle.escalation_level(cat, T0, T0 + timedelta(hours=h))
        for h in (0, 23.9, 24, 24.01, 48, 48.5, 72.5, 1000)
    ]
    assert at == [
        "grid",
        "grid",
        "grid",
        "community",
        "community",
        "street",
        "district",
        "district",
    ]
    # never lowered below the current level, and a street category starts at street
    assert lifecycle.escalation_level(cat, T0, T0, "street") == "street"
    street = {"limit_hours": 72, "escalate_level": "street"}
    assert lifecycle.escalation_level(street, T0, T0 + timedelta(hours=1)) == "street"
    assert lifecycle.escalation_level(street, T0, T0 + timedelta(hours=73)) == "district"


def test_is_overdue():
    due = T0 + timedelta(hours=24)
    assert lifecycle.is_overdue("in_progress", due, due + timedelta(seconds=1))
    assert not lifecycle.is_overdue("in_progress", due, due)
    for s in ("resolved", "closed", "rejected", "duplicate"):
        assert not lifecycle.is_overdue(s, due, due + timedelta(days=9))


def test_route_falls_back_upwards():
    codes = {"grid": None, "community": None, "street": None, "district": "450902"}
    assert lifecycle.route("grid", codes) == ("district", "450902")
    assert lifecycle.route("grid", {}) == (None, None)


# --------------------------------------------------------------------------- store
def test_new_incident_goes_to_the_grid_worker(city):
    inc = _new(city, reported_at=T0, description="菜市场门口垃圾堆积")
    assert inc["assigned_level"] == "grid"
    assert inc["assigned_unit"] == GRIDS[0]
    assert inc["assignee_id"] == city.accounts["w1"].id
    assert (inc["grid_code"], inc["community_code"], inc["street_code"], inc["district_code"]) == (
        GRIDS[0],
        GRIDS[0][:12],
        GRIDS[0][:9],
        GRIDS[0][:6],
    )
    assert inc["version_id"] == city.version_id
    assert inc["due_at"] == T0 + timedelta(hours=24)
    assert inc["status"] == "reported" and not inc["outside"]
    assert inc["units"]["grid"]["name"] == "江滨社区第1网格"
    hist = incidents.history(city.engine, inc["id"], scope=SYSTEM)
    assert [(e["kind"], e["from_status"], e["to_status"]) for e in hist] == [
        ("status", None, "reported")
    ]


def test_worker_with_two_grids_gets_both(city):
    for g in GRIDS[2:]:
        assert _new(city, grid=g)["assignee_id"] == city.accounts["w3"].id


def test_category_needing_the_street_goes_to_the_street(city):
    inc = _new(city, category="illegal_construction", grid=GRIDS[1])
    assert (inc["assigned_level"], inc["assigned_unit"]) == ("street", "450902001")
    assert inc["assignee_id"] == city.accounts["street"].id
    assert inc["grid_code"] == GRIDS[1]


def test_point_outside_every_grid_is_kept_and_flagged(city):
    inc = incidents.create_incident(city.engine, category="garbage", lon=OUTSIDE[0], lat=OUTSIDE[1])
    assert inc["outside"] is True
    assert inc["grid_code"] is None and inc["assigned_unit"] is None
    kinds = [e["kind"] for e in incidents.history(city.engine, inc["id"], scope=SYSTEM)]
    assert kinds == ["status", "flag"]


def test_unknown_category_names_the_known_ones(city):
    with pytest.raises(InvalidInput, match="category='potholes'.*garbage"):
        _new(city, category="potholes")


def test_bad_coordinates_are_invalid_input(city):
    with pytest.raises(InvalidInput, match="lon"):
        incidents.create_incident(city.engine, category="garbage", lon="east", lat=22.6)
    with pytest.raises(InvalidInput, match="lat"):
        incidents.create_incident(city.engine, category="garbage", lon=110.1, lat=float("nan"))


def test_naive_reported_at_is_refused(city):
    with pytest.raises(InvalidInput, match="time zone"):
        _new(city, reported_at=datetime(2026, 5, 1, 8))


def test_full_lifecycle_keeps_every_event(city):
    inc = _new(city, reported_at=T0)
    path = ["accepted", "dispatched", "in_progress", "resolved", "closed"]
    for i, s in enumerate(path, start=1):
        # issue 13: a resolution is closed by someone other than its resolver (核查结案)
        who = "community" if s == "closed" else "w1"
        out = incidents.transition(
            city.engine,
            inc["id"],
            s,
            city.accounts[who].id,
            f"step {i}",
            at=T0 + timedelta(hours=i),
        )
        assert out["status"] == s
    assert out["accepted_at"] == T0 + timedelta(hours=1)
    assert out["dispatched_at"] == T0 + timedelta(hours=2)
    assert out["resolved_at"] == T0 + timedelta(hours=4)
    assert out["closed_at"] == T0 + timedelta(hours=5)
    assert out["updated_at"] == T0 + timedelta(hours=5)
    with pytest.raises(Conflict, match="'closed' is final"):
        incidents.transition(city.engine, inc["id"], "accepted")
    hist = incidents.history(city.engine, inc["id"], scope=SYSTEM)
    assert [(e["from_status"], e["to_status"]) for e in hist] == [
        (None, "reported"),
        ("reported", "accepted"),
        ("accepted", "dispatched"),
        ("dispatched", "in_progress"),
        ("in_progress", "resolved"),
        ("resolved", "closed"),
    ]
    assert hist[1]["note"] == "step 1" and hist[1]["actor_name"] == "李梅"


def test_reopen_clears_resolved_at(city):
    inc = _new(city)
    for s in ("accepted", "in_progress", "resolved"):
        incidents.transition(city.engine, inc["id"], s)
    out = incidents.transition(city.engine, inc["id"], "in_progress", note="居民不满意")
    assert out["resolved_at"] is None and out["status"] == "in_progress"
    assert len(incidents.history(city.engine, inc["id"], scope=SYSTEM)) == 5


def test_scope_is_checked_for_accounts(city):
    inc = _new(city, grid=GRIDS[0])
    with pytest.raises(Forbidden, match="not in their grid"):
        incidents.transition(city.engine, inc["id"], "accepted", city.accounts["w2"])
    with pytest.raises(Forbidden, match="read-only"):
        incidents.transition(city.engine, inc["id"], "accepted", city.accounts["leader"])
    out = incidents.transition(city.engine, inc["id"], "accepted", city.accounts["community"])
    assert out["status"] == "accepted"


def test_manual_escalation(city):
    inc = _new(city, grid=GRIDS[1])
    out = incidents.escalate(city.engine, inc["id"], city.accounts["w2"], note="需要社区协调")
    assert (out["assigned_level"], out["assigned_unit"]) == ("community", "450902001001")
    assert out["assignee_id"] == city.accounts["community"].id
    with pytest.raises(Conflict, match="already at 'community'"):
        incidents.escalate(city.engine, inc["id"], to_level="grid")
    out = incidents.escalate(city.engine, inc["id"], to_level="district")
    assert out["assignee_id"] == city.accounts["district"].id
    with pytest.raises(Conflict, match="already at the district"):
        incidents.escalate(city.engine, inc["id"])
    ev = [
        e
        for e in incidents.history(city.engine, inc["id"], scope=SYSTEM)
        if e["kind"] == "escalate"
    ]
    assert [(e["data"]["from_level"], e["data"]["to_level"]) for e in ev] == [
        ("grid", "community"),
        ("community", "district"),
    ]


def test_overdue_and_automatic_escalation(city):
    now = datetime(2030, 1, 10, 12, tzinfo=UTC)  # later than every other test's incidents
    with city.engine.begin() as conn:  # start from a clean slate for this check
        conn.execute(text("UPDATE incident SET status = 'closed' WHERE status <> 'closed'"))
    late = _new(city, reported_at=now - timedelta(hours=30))  # garbage, 24 h
    fresh = _new(city, reported_at=now - timedelta(hours=2))
    done = _new(city, reported_at=now - timedelta(hours=40))
    for s in ("accepted", "in_progress", "resolved"):
        incidents.transition(city.engine, done["id"], s, at=now - timedelta(hours=1))
    street = _new(
        city, category="illegal_construction", grid=GRIDS[3], reported_at=now - timedelta(hours=80)
    )

    od = incidents.overdue(city.engine, now=now, scope=SYSTEM)
    assert set(od["id"]) == {late["id"], street["id"]}
    row = od.set_index("id").loc[late["id"]]
    assert row["unit_code"] == GRIDS[0] and row["hours_overdue"] == pytest.approx(6)
    assert list(
        incidents.overdue(city.engine, unit_code=GRIDS[3], now=now, scope=SYSTEM)["id"]
    ) == [street["id"]]
    by_street = incidents.overdue(city.engine, level="street", now=now, scope=SYSTEM)
    assert set(by_street["unit_code"]) == {"450902001"}
    assert fresh["id"] not in set(od["id"])

    moved = incidents.escalate_overdue(city.engine, now=now)
    assert sorted(zip(moved["id"], moved["to_level"], strict=True)) == sorted(
        [(late["id"], "community"), (street["id"], "district")]
    )
    assert (
        incidents.get_incident(city.engine, street["id"], scope=SYSTEM)["assignee_id"]
        == city.accounts["district"].id
    )
    # idempotent at the same time; one more limit later `late` climbs one more level and
    # `fresh` (27 h old by then) becomes overdue
    assert incidents.escalate_overdue(city.engine, now=now).empty
    moved = incidents.escalate_overdue(city.engine, now=now + timedelta(hours=25))
    assert list(zip(moved["id"], moved["to_level"], strict=True)) == [
        (late["id"], "street"),
        (fresh["id"], "community"),
    ]
    ev = [
        e
        for e in incidents.history(city.engine, late["id"], scope=SYSTEM)
        if e["kind"] == "escalate"
    ]
    assert [e["data"]["reason"] for e in ev] == ["overdue", "overdue"]
    assert ev[0]["at"] == now


# --------------------------------------------------------------------------- HTTP
def test_post_incident_requires_a_token(city, client):
    lon, lat = CENTRES[GRIDS[0]]
    body = {"category": "garbage", "lon": lon, "lat": lat}
    r = client.post("/incidents", json=body)
    assert r.status_code == 401 and r.json()["error"] == "Unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.post("/incidents", json=body, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert client.get("/incidents/1").status_code == 401


def test_worker_reports_only_inside_own_grids(city, client):
    lon, lat = CENTRES[GRIDS[1]]
    body = {"category": "garbage", "lon": lon, "lat": lat, "description": "路边垃圾"}
    r = client.post("/incidents", json=body, headers=city.auth("w1"))
    assert r.status_code == 403, r.text
    assert "not in their grid" in r.json()["message"]
    r = client.post("/incidents", json=body, headers=city.auth("w2"))
    assert r.status_code == 201, r.text
    inc = r.json()
    assert inc["reporter_id"] == city.accounts["w2"].id and inc["reporter_kind"] == "worker"
    assert inc["assignee_id"] == city.accounts["w2"].id


def test_http_transitions_and_history(city, client):
    lon, lat = CENTRES[GRIDS[0]]
    inc = client.post(
        "/incidents", json={"category": "dispute", "lon": lon, "lat": lat}, headers=city.auth("w1")
    ).json()
    url = f"/incidents/{inc['id']}/transitions"
    r = client.post(url, json={"status": "accepted"}, headers=city.auth("w2"))
    assert r.status_code == 403
    r = client.post(url, json={"status": "accepted"}, headers=city.auth("analyst"))
    assert r.status_code == 403
    r = client.post(url, json={"status": "accepted", "note": "已受理"}, headers=city.auth("w1"))
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    r = client.post(url, json={"status": "closed"}, headers=city.auth("w1"))
    assert r.status_code == 409
    assert "cannot move an incident from 'accepted' to 'closed'" in r.json()["message"]
    r = client.post(url, json={"status": "finished"}, headers=city.auth("w1"))
    assert r.status_code == 400
    r = client.get(f"/incidents/{inc['id']}", headers=city.auth("leader"))
    assert r.status_code == 200
    got = r.json()
    assert got["units"]["community"] == {"code": "450902001001", "name": "江滨社区"}
    assert [e["to_status"] for e in got["history"]] == ["reported", "accepted"]
    assert got["history"][1]["note"] == "***"  # a leader reads staff notes masked
    mine = client.get(f"/incidents/{inc['id']}", headers=city.auth("w1")).json()
    assert mine["history"][1]["note"] == "已受理"  # the grid's worker reads them clear
    assert client.get(f"/incidents/{inc['id']}", headers=city.auth("w2")).status_code == 404
    assert client.get("/incidents/999999", headers=city.auth("leader")).status_code == 404


def test_http_escalate_and_overdue(city, client):
    lon, lat = CENTRES[GRIDS[2]]
    old = (datetime.now(UTC) - timedelta(hours=5)).isoformat()
    inc = client.post(
        "/incidents",
        json={"category": "dispute", "lon": lon, "lat": lat, "reported_at": old},
        headers=city.auth("w3"),
    ).json()
    r = client.post(
        f"/incidents/{inc['id']}/escalate", json={"note": "调解不成"}, headers=city.auth("w3")
    )
    assert r.status_code == 200 and r.json()["assigned_level"] == "community"
    r = client.post(
        f"/incidents/{inc['id']}/escalate", json={"to_level": "grid"}, headers=city.auth("admin")
    )
    assert r.status_code == 409
    r = client.post(f"/incidents/{inc['id']}/escalate", headers=city.auth("admin"))
    assert r.status_code == 200 and r.json()["assigned_level"] == "street"
    r = client.get("/incidents/overdue", params={"unit": GRIDS[2]}, headers=city.auth("community"))
    assert r.status_code == 200
    rows = r.json()
    assert inc["id"] in [x["id"] for x in rows]
    assert all(x["unit_code"] == GRIDS[2] for x in rows)
    mine = next(x for x in rows if x["id"] == inc["id"])
    assert mine["assignee_id"] == city.accounts["street"].id
    assert mine["hours_overdue"] == pytest.approx(1, abs=0.1)
    r = client.get("/incidents/overdue", params={"unit": "12345"}, headers=city.auth("community"))
    assert r.status_code == 400


@pytest.mark.parametrize("crs_name", ["gcj02", "bd09"])
def test_chinese_map_coordinates_are_converted(city, client, crs_name):
    wlon, wlat = CENTRES[GRIDS[0]]
    x, y = gcrs.from_wgs84(np.array([wlon]), np.array([wlat]), crs_name)
    x, y = float(x[0]), float(y[0])
    assert abs(x - wlon) > 1e-4  # the offset is hundreds of metres
    r = client.post(
        "/incidents",
        json={"category": "garbage", "lon": x, "lat": y, "crs": crs_name},
        headers=city.auth("w1"),
    )
    assert r.status_code == 201, r.text
    inc = r.json()
    ex, ey = gcrs.to_wgs84(np.array([x]), np.array([y]), crs_name)
    with city.engine.connect() as conn:
        sx, sy, src = conn.execute(
            text("SELECT ST_X(geom), ST_Y(geom), src_crs FROM incident WHERE id = :i"),
            {"i": inc["id"]},
        ).one()
    assert (sx, sy) == pytest.approx((float(ex[0]), float(ey[0])), abs=1e-12)
    assert src == crs_name and inc["src_lon"] == x and inc["src_lat"] == y
    assert inc["grid_code"] == GRIDS[0]


def test_bad_crs_is_400(city, client):
    r = client.post(
        "/incidents",
        json={"category": "garbage", "lon": 110.15, "lat": 22.63, "crs": "mars"},
        headers=city.auth("admin"),
    )
    assert r.status_code == 400 and r.json()["parameter"] == "crs"


def test_points_far_from_the_city_and_absurd_times_are_refused(city):
    with pytest.raises(InvalidInput, match="lon/lat.*more than 20 km"):
        incidents.create_incident(city.engine, category="garbage", lon=0.0, lat=0.0)
    with pytest.raises(InvalidInput, match="reported_at"):
        incidents.create_incident(
            city.engine,
            category="garbage",
            lon=OUTSIDE[0],
            lat=OUTSIDE[1],
            reported_at="2299-06-01T00:00:00Z",
        )
