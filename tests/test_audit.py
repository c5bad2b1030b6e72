"""The append-only audit trail: writes and clear reads of personal fields are recorded
(who, role, what, which fields, when, IP, user agent), rows cannot be changed or deleted,
``GET /audit`` is for admins only, ``geogrid audit`` prints it as JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import small_city
from small_city import CENTRES, GRIDS
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from geogrid.core.scope import Scope
from geogrid.errors import Forbidden, InvalidInput
from geogrid.services import audit, incidents

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        yield c


@pytest.fixture(scope="module")
def client(city):
    with small_city.serve(city) as cl:
        yield cl


def _rows(city, **filters):
    return audit.audit_log(city.engine, scope=Scope.system(), limit=1000, **filters)


def test_writes_are_recorded_in_their_transaction(city):
    w1 = city.accounts["w1"]
    inc = incidents.create_incident(
        city.engine,
        category="garbage",
        lon=CENTRES[GRIDS[0]][0],
        lat=CENTRES[GRIDS[0]][1],
        reporter_id=w1.id,
        actor=w1,
    )
    incidents.transition(city.engine, inc["id"], "accepted", w1, "已受理")
    rows = [r for r in _rows(city, actor_id=w1.id) if r["resource_ids"] == [str(inc["id"])]]
    actions = sorted(r["action"] for r in rows)
    assert actions == ["incident.create", "incident.transition"]
    tr = next(r for r in rows if r["action"] == "incident.transition")
    assert tr["actor_role"] == "worker" and tr["detail"] == {
        "from_status": "reported",
        "to_status": "accepted",
    }
    assert tr["user_agent"] == "cli" and tr["ip"] is None  # no HTTP request bound
    # a refused write leaves no audit row (same transaction)
    before = len(_rows(city))
    with pytest.raises(Forbidden):
        incidents.transition(city.engine, inc["id"], "in_progress", city.accounts["w2"])
    assert len(_rows(city)) == before


def test_audit_log_is_append_only(city):
    audit.record(city.engine, actor=None, action="test.write", resource="test", ids=[1])
    for sql in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            with city.engine.begin() as conn:
                conn.execute(text(sql))
    assert any(r["action"] == "test.write" for r in _rows(city))


def test_clear_reads_are_recorded_masked_reads_not(city, client):
    lon, lat = CENTRES[GRIDS[0]]
    inc = client.post(
        "/incidents",
        json={"category": "dispute", "lon": lon, "lat": lat, "description": "电话 13912345678"},
        headers=city.auth("w1"),
    ).json()
    since = datetime.now(UTC) - timedelta(seconds=1)
    agent = {"User-Agent": "audit-test/1.0"}
    r = client.get(f"/incidents/{inc['id']}", headers={**city.auth("w1"), **agent})
    assert r.status_code == 200 and "13912345678" in r.json()["description"]
    r = client.get(f"/incidents/{inc['id']}", headers={**city.auth("leader"), **agent})
    assert r.status_code == 200 and "13912345678" not in r.json()["description"]
    r = client.get("/incidents", headers={**city.auth("community"), **agent})
    assert r.status_code == 200
    listed = [str(i["id"]) for i in r.json()]
    reads = _rows(city, action="incident.read", since=since)
    by_role = {r["actor_role"]: r for r in reads}
    assert set(by_role) == {"worker", "community_admin"}  # the leader's read was masked
    one = by_role["worker"]
    assert one["resource_ids"] == [str(inc["id"])] and one["actor_id"] == city.accounts["w1"].id
    assert "description" in one["fields"] and "history.actor_name" in one["fields"]
    assert one["user_agent"] == "audit-test/1.0" and one["ip"] == "127.0.0.1"
    assert "13912345678" not in json.dumps(reads, default=str)  # values are never logged
    # a list read is one row listing every id
    assert sorted(by_role["community_admin"]["resource_ids"]) == sorted(listed)
    # the register: a worker's clear read of their own row
    month = datetime.now(UTC).strftime("%Y-%m")
    r = client.get("/register", params={"month": month}, headers=city.auth("w1"))
    assert r.status_code == 200
    reg = _rows(city, action="register.read", since=since)
    assert reg and reg[0]["resource_ids"] == [str(city.accounts["w1"].id)]


def test_get_audit_is_for_admins(city, client):
    assert client.get("/audit").status_code == 401
    for key in ("w1", "district", "leader", "analyst", "planner"):
        assert client.get("/audit", headers=city.auth(key)).status_code == 403, key
    r = client.get("/audit", params={"limit": 5}, headers=city.auth("admin"))
    assert r.status_code == 200 and 0 < len(r.json()) <= 5
    w1 = city.accounts["w1"].id
    r = client.get(
        "/audit", params={"actor": w1, "resource": "incident"}, headers=city.auth("admin")
    )
    assert r.status_code == 200 and r.json()
    assert all(e["actor_id"] == w1 and e["resource"] == "incident" for e in r.json())
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r = client.get("/audit", params={"since": future}, headers=city.auth("admin"))
    assert r.status_code == 200 and r.json() == []
    r = client.get("/audit", params={"limit": 0}, headers=city.auth("admin"))
    assert r.status_code == 400
    with pytest.raises(Forbidden):
        audit.audit_log(city.engine, scope=Scope.of(city.accounts["leader"]))
    with pytest.raises(InvalidInput):
        audit.audit_log(city.engine, scope=Scope.system(), since=datetime(2026, 1, 1))


def _cli(city, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GEOGRID_DATABASE_URL": city.url}
    return subprocess.run(
        [sys.executable, "-m", "geogrid.cli", "audit", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_audit_json_and_csv(city):
    w1 = str(city.accounts["w1"].id)
    res = _cli(city, "--actor", w1, "--format", "json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert rows and all(str(r["actor_id"]) == w1 for r in rows)
    res = _cli(city, "--since", "2000-01-01T00:00:00+00:00", "--format", "csv", "--limit", "3")
    assert res.returncode == 0, res.stderr
    table = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(table) == 3 and {"at", "actor_id", "action", "resource_ids"} <= set(table[0])
    bad = _cli(city, "--since", "yesterday")
    assert bad.returncode == 2 and "since" in bad.stderr


def test_account_changes_are_recorded(city, client):
    w2 = city.accounts["w2"]
    r = client.post("/tokens", json={"label": "phone", "days": 1}, headers=city.auth("w2"))
    assert r.status_code in (200, 201), r.text
    rows = _rows(city, action="token.issue", actor_id=w2.id)
    assert rows and rows[0]["resource_ids"] == [str(w2.id)] and rows[0]["ip"] == "127.0.0.1"
    assert rows[0]["detail"] == {"token_id": r.json()["id"]}
