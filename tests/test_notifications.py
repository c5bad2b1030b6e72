"""Notifications derived from the incidents (issue 13): once per account, kind and
incident (a second run inserts nothing), to the assignee, the grid's workers, the team's
members and the admins of the assigned unit; read over HTTP on the next sync; sent
outbound through a webhook signed with HMAC-SHA256 (a real local HTTP server checks the
signature; a failure is retried with backoff) and a log channel without personal data.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import small_city
from small_city import CENTRES, COMMUNITY, GRIDS
from sqlalchemy import text

from geogrid.core.notifications import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from geogrid.services import incidents, notifications, teams
from geogrid.services.notify_channels import LogChannel, WebhookChannel
from geogrid.settings import Settings

# the tests share the module's city in order (scripts/test.sh runs them in one process)
pytestmark = pytest.mark.serial

SECRET = "webhook-secret-for-tests"
PHONE = "13922223333"


@pytest.fixture(scope="module")
def env():
    with small_city.build() as city, small_city.serve(city) as client:
        yield city, client


def _report(city, key, grid, category="garbage", hours_ago=0.0):
    lon, lat = CENTRES[grid]
    acc = city.accounts[key]
    return incidents.create_incident(
        city.engine,
        category=category,
        lon=lon,
        lat=lat,
        description=f"联系 {PHONE}",
        reported_at=datetime.now(UTC) - timedelta(hours=hours_ago),
        reporter_id=acc.id,
        actor=acc,
    )


def _rows(city):
    with city.engine.connect() as c:
        return c.execute(
            text("SELECT account_id, kind, incident_id FROM notification ORDER BY id")
        ).all()


def _team_with(city, name: str, grid: str, member: str) -> None:
    """A team of the community covering ``grid``, with the account ``member`` in it."""
    acc = city.accounts
    team = teams.create_team(
        city.engine, name=name, community_code=COMMUNITY, grids=[grid], actor=acc["community"]
    )
    teams.add_member(
        city.engine,
        team["id"],
        account_id=acc[member].id,
        role="building_head",
        actor=acc["community"],
    )


def test_derived_once_for_every_recipient(env):
    city, _ = env
    acc = city.accounts
    _team_with(city, "二网格团队", GRIDS[1], "w3")
    fresh = _report(city, "w1", GRIDS[0])  # due in 24 h
    soon = _report(city, "w1", GRIDS[0], "small_ads", hours_ago=47)  # due in 1 h
    late = _report(city, "w2", GRIDS[1], hours_ago=30)  # overdue 6 h
    street = _report(city, "w1", GRIDS[0], "illegal_construction")  # routed to the street

    now = datetime.now(UTC)
    first = notifications.refresh_notifications(city.engine, now)
    assert first
    assert notifications.refresh_notifications(city.engine, now) == []  # no duplicates
    assert notifications.refresh_notifications(city.engine, now + timedelta(minutes=5)) == []
    got = Counter((a, k, i) for a, k, i in _rows(city))
    assert set(got.values()) == {1}
    want = {
        (acc["w1"].id, "assigned", fresh["id"]),
        (acc["w1"].id, "assigned", soon["id"]),
        (acc["w1"].id, "due_soon", soon["id"]),
        (acc["w2"].id, "assigned", late["id"]),
        (acc["w2"].id, "overdue", late["id"]),
        (acc["w3"].id, "assigned", late["id"]),  # the team's member
        (acc["w3"].id, "overdue", late["id"]),
        (acc["street"].id, "assigned", street["id"]),  # the admin of the assigned unit
    }
    assert set(got) == want

    # escalated by hand: the community's admin (new unit) and the grid's people are told
    incidents.escalate(city.engine, late["id"], acc["w2"])
    new = notifications.refresh_notifications(city.engine, datetime.now(UTC))
    assert len(new) == 4
    rows = set(_rows(city))
    for key in ("community", "w2", "w3"):
        assert (acc[key].id, "escalated", late["id"]) in rows
    assert (acc["community"].id, "overdue", late["id"]) in rows
    assert notifications.refresh_notifications(city.engine, datetime.now(UTC)) == []
    # one account's refresh derives only its own
    _report(city, "w1", GRIDS[0])
    only = notifications.refresh_notifications(city.engine, account_id=acc["w1"].id)
    assert len(only) == 1
    assert notifications.refresh_notifications(city.engine) == []


def test_read_over_http(env):
    city, client = env
    r = client.get("/notifications", headers=city.auth("w1"))
    assert r.status_code == 200, r.text
    mine = r.json()
    assert mine and all(n["incident"]["grid_code"] == GRIDS[0] for n in mine)
    assert {n["kind"] for n in mine} >= {"assigned", "due_soon"}
    assert PHONE not in r.text  # no personal field in a notification
    stamps = [n["created_at"] for n in mine]
    assert stamps == sorted(stamps)
    # since: only those created after it (the last sync's server_time)
    last = mine[-1]["created_at"]
    assert (
        client.get("/notifications", params={"since": last}, headers=city.auth("w1")).json() == []
    )
    before = (datetime.fromisoformat(mine[0]["created_at"]) - timedelta(seconds=1)).isoformat()
    again = client.get("/notifications", params={"since": before}, headers=city.auth("w1")).json()
    assert [n["id"] for n in again] == [n["id"] for n in mine]
    # a limit keeps the newest, still oldest first
    two = client.get("/notifications", params={"limit": 2}, headers=city.auth("w1")).json()
    assert [n["id"] for n in two] == [n["id"] for n in mine[-2:]]
    r = client.get(
        "/notifications", params={"since": "2026-05-01T08:00:00"}, headers=city.auth("w1")
    )
    assert r.status_code == 400 and r.json()["parameter"] == "since"
    # read: own only; another's is 404
    nid = mine[0]["id"]
    assert client.post(f"/notifications/{nid}/read", headers=city.auth("w2")).status_code == 404
    r = client.post(f"/notifications/{nid}/read", headers=city.auth("w1"))
    assert r.status_code == 200 and r.json()["read_at"]
    unread = client.get("/notifications", params={"unread": True}, headers=city.auth("w1")).json()
    assert nid not in {n["id"] for n in unread}
    assert client.get("/notifications").status_code == 401


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes, int]] = []
    fail_next = 0

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = 200
        if _Hook.fail_next > 0:
            _Hook.fail_next -= 1
            status = 500
        _Hook.received.append((dict(self.headers), body, status))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def hook():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    _Hook.received = []
    _Hook.fail_next = 0
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/notify"
    finally:
        srv.shutdown()
        srv.server_close()


def _settings(url: str, **kw) -> Settings:
    return Settings(
        notify_channels=["webhook"],
        notify_webhook_url=url,
        notify_webhook_secret=SECRET,
        notify_webhook_backoff=0.01,
        notify_webhook_tries=3,
        **kw,
    )


def test_webhook_signed_retried_and_recorded(env, hook):
    city, _ = env
    notifications.refresh_notifications(city.engine)  # what is there already: in-app only
    inc = _report(city, "w2", GRIDS[1])  # w2 and the team's w3: two new notifications
    _Hook.fail_next = 1  # the first POST fails: retried after a backoff
    counts = notifications.run_once(city.engine, settings=_settings(hook))
    assert counts == {"created": 2, "sent": 2, "retry": 0, "failed": 0}
    statuses = [s for _, _, s in _Hook.received]
    assert statuses == [500, 200, 200]
    ids = {json.loads(b)["id"] for _, b, _ in _Hook.received}
    recs = notifications.deliveries(city.engine, sorted(ids))
    assert sorted(r["attempts"] for r in recs) == [1, 2]
    assert all(r["status"] == "sent" and r["sent_at"] and r["channel"] == "webhook" for r in recs)
    assert all(r["last_error"] is None for r in recs)
    for headers, body, _ in _Hook.received:
        payload = json.loads(body)
        assert payload["incident"]["id"] == inc["id"]
        assert PHONE not in body.decode("utf-8")
        assert verify_signature(
            SECRET.encode(),
            headers[TIMESTAMP_HEADER],
            body,
            headers[SIGNATURE_HEADER],
            now=time.time(),
        )
        assert not verify_signature(
            b"wrong", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER], now=time.time()
        )
        assert not verify_signature(
            SECRET.encode(),
            headers[TIMESTAMP_HEADER],
            body + b" ",
            headers[SIGNATURE_HEADER],
            now=time.time(),
        )
    # nothing is sent twice
    assert notifications.run_once(city.engine, settings=_settings(hook)) == {
        "created": 0,
        "sent": 0,
        "retry": 0,
        "failed": 0,
    }
    assert len(_Hook.received) == 3


def test_webhook_down_then_back(env, hook):
    city, _ = env
    notifications.refresh_notifications(city.engine)
    _report(city, "w1", GRIDS[0])  # one new notification (w1)
    _Hook.fail_next = 100  # down for a while
    s = _settings(hook)
    counts = notifications.run_once(city.engine, settings=s)
    assert counts == {"created": 1, "sent": 0, "retry": 1, "failed": 0}
    (rec,) = [r for r in notifications.deliveries(city.engine) if r["status"] == "pending"]
    assert rec["attempts"] == 3 and rec["last_error"] == "webhook answered 500"
    wait = rec["next_attempt_at"] - datetime.now(UTC)
    assert timedelta(seconds=30) < wait <= timedelta(seconds=notifications.RETRY_LATER_S)
    # not due yet: nothing tried
    n = len(_Hook.received)
    assert notifications.run_once(city.engine, settings=s)["retry"] == 0
    assert len(_Hook.received) == n
    # back up; at its next attempt time it is sent
    _Hook.fail_next = 0
    counts = notifications.deliver(
        city.engine,
        {"webhook": WebhookChannel(hook, SECRET.encode())},
        now=rec["next_attempt_at"] + timedelta(seconds=1),
        backoff_s=0.01,
    )
    assert counts == {"sent": 1, "retry": 0, "failed": 0}
    (done,) = [r for r in notifications.deliveries(city.engine) if r["id"] == rec["id"]]
    assert done["status"] == "sent" and done["attempts"] == 4


def test_log_channel_writes_no_personal_data(env, caplog):
    city, _ = env
    notifications.refresh_notifications(city.engine)
    inc = _report(city, "w1", GRIDS[0])
    s = Settings(notify_channels=["log"])
    with caplog.at_level(logging.INFO, logger="geogrid.notifications"):
        counts = notifications.run_once(city.engine, settings=s, channels={"log": LogChannel()})
    assert counts["created"] == 1 and counts["sent"] == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "geogrid.notifications"]
    assert any(f"incident={inc['id']}" in line for line in lines), lines
    text_ = "\n".join(lines)
    assert PHONE not in text_ and city.accounts["w1"].name not in text_


def test_cli_notify_run(env):
    city, _ = env
    _report(city, "w2", GRIDS[1])
    env_ = {**os.environ, "GEOGRID_DATABASE_URL": city.url, "GEOGRID_NOTIFY_CHANNELS": "[]"}
    exe = Path(sys.executable).parent / "geogrid"
    r = subprocess.run(
        [str(exe), "notify", "run"], env=env_, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert "2 new notification(s)" in r.stdout, r.stdout
    r = subprocess.run(
        [str(exe), "notify", "run"], env=env_, capture_output=True, text=True, timeout=120
    )
    assert "0 new notification(s)" in r.stdout, r.stdout


def test_periodic_task_in_the_app(env):
    """The app's lifespan runs the derivation periodically, with no request at all."""
    from conftest import LiveServer

    city, _ = env
    notifications.refresh_notifications(city.engine)
    inc = _report(city, "w1", GRIDS[0])
    srv = LiveServer(city.url, Settings(notify_interval=0.2))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if (city.accounts["w1"].id, "assigned", inc["id"]) in set(_rows(city)):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the periodic task derived nothing")
    finally:
        srv.stop()


def test_one_city_wide_run_at_a_time(env):
    """While one process derives the city's notifications, another's run returns at once
    (the app's workers and the CLI do not do the work twice)."""
    city, _ = env
    notifications.refresh_notifications(city.engine)
    inc = _report(city, "w1", GRIDS[0])
    with city.engine.begin() as held:
        held.execute(
            text("SELECT pg_advisory_xact_lock(:ns, 0)"),
            {"ns": notifications.NOTIFY_LOCK_NAMESPACE},
        )
        assert notifications.refresh_notifications(city.engine) == []
        # one account's own refresh is not held up
        assert (
            len(notifications.refresh_notifications(city.engine, account_id=city.accounts["w1"].id))
            == 1
        )
    assert notifications.refresh_notifications(city.engine) == []  # w1's is there already
    assert (city.accounts["w1"].id, "assigned", inc["id"]) in set(_rows(city))


def _sweep(city):
    with city.engine.connect() as c:
        return c.execute(text("SELECT swept_at, full_at FROM notification_sweep")).one()


def test_a_city_wide_run_goes_on_from_the_last(env):
    """Issue 10: a city-wide run after another looks only at the incidents written since,
    the ones coming due, and everything when who receives what changed — and finds what
    a full run finds (checked by forgetting the last run and deriving everything again)."""
    city, _ = env
    acc = city.accounts
    now = datetime.now(UTC)
    notifications.refresh_notifications(city.engine, now)
    swept, full = _sweep(city)
    assert swept == now and full <= now

    # a new report: its notice, in a run that is not full
    t1 = now + timedelta(minutes=1)
    fresh = _report(city, "w1", GRIDS[0])
    new = notifications.refresh_notifications(city.engine, t1)
    assert _sweep(city) == (t1, full)  # went on from the last run
    assert {(a, k, i) for a, k, i in _rows(city) if i == fresh["id"]} == {
        (acc["w1"].id, "assigned", fresh["id"])
    }
    assert len(new) == 1

    # incidents not written since come due: due soon, then overdue, in later runs
    coming = _report(city, "w2", GRIDS[1], hours_ago=21 + 40 / 60)  # garbage: due in 2h20
    closing = _report(city, "w2", GRIDS[1], hours_ago=23 + 50 / 60)  # due in 10 min
    t2 = t1 + timedelta(minutes=1)
    assert len(notifications.refresh_notifications(city.engine, t2)) == 6  # w2; w3 (the team)
    t3 = now + timedelta(minutes=30)
    assert len(notifications.refresh_notifications(city.engine, t3)) == 4
    assert _sweep(city) == (t3, full)  # still going on from the last full run
    kinds = Counter(k for a, k, i in _rows(city) if i == coming["id"])
    assert kinds == {"assigned": 2, "due_soon": 2}, kinds
    kinds = Counter(k for a, k, i in _rows(city) if i == closing["id"])
    assert kinds == {"assigned": 2, "due_soon": 2, "overdue": 2}, kinds

    # who receives what changes: a new team covers w1's grid — a full run tells its member
    _team_with(city, "一网格团队", GRIDS[0], "w2")
    t5 = t3 + timedelta(minutes=1)
    assert notifications.refresh_notifications(city.engine, t5)
    assert _sweep(city) == (t5, t5)  # a full run
    assert (acc["w2"].id, "assigned", fresh["id"]) in set(_rows(city))

    # nothing missed: a full run at the same moment, the last run forgotten, adds nothing
    t6 = t5 + timedelta(minutes=1)
    fresh2 = _report(city, "w1", GRIDS[0])
    assert len(notifications.refresh_notifications(city.engine, t6)) == 2  # w1 and w2
    with city.engine.begin() as c:
        c.execute(text("DELETE FROM notification_sweep"))
    assert notifications.refresh_notifications(city.engine, t6) == []
    assert (acc["w2"].id, "assigned", fresh2["id"]) in set(_rows(city))
