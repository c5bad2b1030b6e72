"""Verified resolution (核查结案), notes and conflict detection (issue 13), over real HTTP
on the small city: a worker cannot close what they resolved; a community admin can, or
sends it back with a reason; the resident's link (the reporter) closes resident reports;
a change made on a stale copy is refused with 409 and the current incident."""

from __future__ import annotations

import pytest
import small_city
from small_city import CENTRES, GRIDS

from geogrid.errors import Forbidden, InvalidInput
from geogrid.services import incidents


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        yield c


@pytest.fixture(scope="module")
def client(city):
    with small_city.serve(city) as http:
        yield http


def _report(client, city, who="w1", grid=0, category="garbage") -> dict:
    lon, lat = CENTRES[GRIDS[grid]]
    r = client.post(
        "/incidents",
        json={"category": category, "lon": lon, "lat": lat, "description": "verify me"},
        headers=city.auth(who),
    )
    assert r.status_code == 201, r.text
    return r.json()


def _move(client, city, who, iid, status, **extra):
    return client.post(
        f"/incidents/{iid}/transitions", json={"status": status, **extra}, headers=city.auth(who)
    )


def _resolve(client, city, iid, who="w1") -> dict:
    for s in ("accepted", "in_progress", "resolved"):
        r = _move(client, city, who, iid, s)
        assert r.status_code == 200, r.text
    return r.json()


def test_worker_cannot_close_what_they_resolved(client, city):
    inc = _report(client, city)
    done = _resolve(client, city, inc["id"])
    assert done["resolved_by"] == city.accounts["w1"].id
    r = _move(client, city, "w1", inc["id"], "closed")
    assert r.status_code == 403
    assert "核查结案" in r.json()["message"] and "resolved" in r.json()["message"]
    # another worker, not a verifier, neither (here: out of scope altogether)
    assert _move(client, city, "w2", inc["id"], "closed").status_code == 403
    r = _move(client, city, "community", inc["id"], "closed", note="核查通过")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "closed"


def test_send_back_needs_a_reason(client, city):
    inc = _report(client, city)
    _resolve(client, city, inc["id"])
    r = _move(client, city, "community", inc["id"], "in_progress")
    assert r.status_code == 400 and r.json()["parameter"] == "note"
    r = _move(client, city, "community", inc["id"], "in_progress", note="   ")
    assert r.status_code == 400
    r = _move(client, city, "community", inc["id"], "in_progress", note="照片看不清，请重新处理")
    assert r.status_code == 200, r.text
    back = r.json()
    assert back["status"] == "in_progress" and back["resolved_by"] is None
    hist = client.get(f"/incidents/{inc['id']}", headers=city.auth("w1")).json()["history"]
    assert hist[-1]["note"] == "照片看不清，请重新处理"
    # resolved again, by the street admin this time; the street admin may not close it,
    # the community admin (a verifier) may
    r = _move(client, city, "street", inc["id"], "resolved")
    assert r.status_code == 200 and r.json()["resolved_by"] == city.accounts["street"].id
    assert _move(client, city, "street", inc["id"], "closed").status_code == 403
    assert _move(client, city, "admin", inc["id"], "closed").status_code == 200


def test_category_without_verification(client, city):
    incidents.set_category_verify(city.engine, "small_ads", "none")
    try:
        inc = _report(client, city, category="small_ads")
        _resolve(client, city, inc["id"])
        assert _move(client, city, "w1", inc["id"], "closed").status_code == 200
    finally:
        incidents.set_category_verify(city.engine, "small_ads", "other")


def test_the_reporter_closes_a_resident_report(city):
    lon, lat = CENTRES[GRIDS[0]]
    inc = incidents.create_incident(city.engine, category="garbage", lon=lon, lat=lat)
    assert inc["reporter_kind"] == "resident"
    w1 = city.accounts["w1"]
    for s in ("accepted", "in_progress"):
        incidents.transition(city.engine, inc["id"], s, w1)
    with pytest.raises(Forbidden):  # the reporter only closes or sends back a resolution
        incidents.transition(city.engine, inc["id"], "resolved", None, as_reporter=True)
    incidents.transition(city.engine, inc["id"], "resolved", w1)
    with pytest.raises(Forbidden):
        incidents.transition(city.engine, inc["id"], "closed", w1)
    with pytest.raises(InvalidInput):  # sending back needs a reason, from the reporter too
        incidents.transition(city.engine, inc["id"], "in_progress", None, as_reporter=True)
    out = incidents.transition(city.engine, inc["id"], "closed", None, as_reporter=True)
    assert out["status"] == "closed"
    # a worker's own report is not closed through a resident's link
    worker_report = incidents.create_incident(
        city.engine, category="garbage", lon=lon, lat=lat, reporter_id=w1.id, actor=w1
    )
    for s in ("accepted", "in_progress", "resolved"):
        incidents.transition(city.engine, worker_report["id"], s, w1)
    with pytest.raises(Forbidden):
        incidents.transition(city.engine, worker_report["id"], "closed", None, as_reporter=True)


def test_conflicts_are_reported_never_overwritten(client, city):
    inc = _report(client, city)
    seen = inc["updated_at"]
    r = _move(client, city, "w1", inc["id"], "accepted", expected_updated_at=seen)
    assert r.status_code == 200, r.text
    now = r.json()["updated_at"]
    # someone else (the community admin) adds a note meanwhile
    r = client.post(
        f"/incidents/{inc['id']}/notes",
        json={"note": "已联系物业", "expected_updated_at": now},
        headers=city.auth("community"),
    )
    assert r.status_code == 201, r.text
    assert r.json()["history"][-1]["note"] == "已联系物业"
    # the worker's phone, offline since, still has `now`: refused with the current state
    r = _move(client, city, "w1", inc["id"], "in_progress", expected_updated_at=now)
    assert r.status_code == 409
    body = r.json()
    assert body["code"] == "conflict" and body["current"]["id"] == inc["id"]
    assert body["current"]["status"] == "accepted"
    assert body["current"]["updated_at"] != now
    fresh = client.get(f"/incidents/{inc['id']}", headers=city.auth("w1")).json()
    assert fresh["status"] == "accepted"  # nothing was changed
    # a note on a stale copy is refused too; with the current time it goes through
    stale = client.post(
        f"/incidents/{inc['id']}/notes",
        json={"note": "x", "expected_updated_at": now},
        headers=city.auth("w1"),
    )
    assert stale.status_code == 409
    r = _move(client, city, "w1", inc["id"], "in_progress", expected_updated_at=fresh["updated_at"])
    assert r.status_code == 200
    # notes: scope and input
    lon, lat = CENTRES[GRIDS[1]]
    assert (
        client.post(
            f"/incidents/{inc['id']}/notes", json={"note": "x"}, headers=city.auth("w2")
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/incidents/{inc['id']}/notes", json={"note": ""}, headers=city.auth("w1")
        ).status_code
        == 400
    )
    # an idempotent retry of a note adds it once
    key = {"Idempotency-Key": "note-retry-1", **city.auth("w1")}
    a = client.post(f"/incidents/{inc['id']}/notes", json={"note": "once"}, headers=key)
    b = client.post(f"/incidents/{inc['id']}/notes", json={"note": "once"}, headers=key)
    assert a.status_code == b.status_code == 201
    hist = client.get(f"/incidents/{inc['id']}", headers=city.auth("w1")).json()["history"]
    assert [e["note"] for e in hist].count("once") == 1


def test_cli_sets_a_category_verification(client, city):
    import os
    import subprocess
    import sys
    from pathlib import Path

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "geogrid.cli", "incidents", "verify", *args],
            cwd=Path(__file__).resolve().parent.parent,
            env={**os.environ, "GEOGRID_DATABASE_URL": city.url},
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = cli("dispute", "none")
    assert done.returncode == 0, done.stderr
    inc = _report(client, city, category="dispute")
    _resolve(client, city, inc["id"])
    assert _move(client, city, "w1", inc["id"], "closed").status_code == 200
    assert cli("dispute", "other").returncode == 0
    bad = cli("dispute", "sometimes")
    assert bad.returncode == 2 and "other, none" in bad.stderr
    unknown = cli("no_such_category", "none")
    assert unknown.returncode == 2 and "garbage" in unknown.stderr
