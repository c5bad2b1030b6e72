"""Read replicas (issue 12): a throw-away primary and a hot standby made from it with
``pg_basebackup -R`` (the machine's PostgreSQL, :mod:`geogrid.store.cluster` and
:func:`geogrid.store.replica.make_standby`; as root the servers run as ``postgres``), the
real app over HTTP with ``GEOGRID_DATABASE_URL`` = primary and
``GEOGRID_DATABASE_REPLICA_URL`` = standby.

Which server answered is read from the data, not from the service's word: with replay
paused on the standby, a change made directly on the primary (no API call, so no
read-your-writes position and no map change) is invisible to reads served by the standby
and visible to reads served by the primary.

One test walks one pair of servers (a session fixture, ~30-60 s in all) in order: up →
replay paused (reads on the stale standby, the writer reads its own write on the primary)
→ lagging past ``replica_max_lag_s`` (every read on the primary) → resumed (back on the
standby) → standby stopped (reads still 200, from the primary) → restarted (back).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
import small_city
from conftest import _free_port, serving
from small_city import CENTRES, GRIDS
from sqlalchemy import create_engine, text

from geogrid.core.tiles import tile_range
from geogrid.settings import Settings
from geogrid.store import cluster
from geogrid.store.replica import make_standby, pg_ctl
from geogrid.store.schema import migrate

pytestmark = pytest.mark.slow

MAX_LAG_S = 8.0
CHECK_S = 0.3
#: the window of the metrics and tiles read (around today)
_SINCE = (date.today() - timedelta(days=30)).isoformat()
_UNTIL = (date.today() + timedelta(days=2)).isoformat()


class Pair:
    """The primary, the standby, the app and what the tests need of them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.p_port, self.r_port = _free_port(), _free_port()
        self.p_settings = Settings(home=root / "primary", pg_port=self.p_port)
        self.primary_url = cluster.up(self.p_settings)
        self.password = cluster.secret_path(self.p_settings).read_text().strip()
        self.replica_url = self.primary_url.replace(f":{self.p_port}/", f":{self.r_port}/")
        self.r_data = root / "replica"
        self.tokens: dict[str, str] = {}

    def dsn(self, which: str) -> str:
        port = self.p_port if which == "primary" else self.r_port
        return f"host=127.0.0.1 port={port} user=postgres dbname=geogrid password={self.password}"

    def sql(self, which: str, query: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.dsn(which), autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def auth(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[key]}"}


def _build_city(pair: Pair) -> None:
    """The small city of ``tests/small_city.py`` on the primary."""
    engine = create_engine(pair.primary_url)
    try:
        city = small_city.populate(engine, pair.primary_url, source="test_replica", ref="R")
        pair.tokens = city.tokens
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE replica_tick (at timestamptz)"))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def pair():
    root = Path(tempfile.mkdtemp(prefix="geogrid-replica-"))
    t0 = time.monotonic()
    took: dict[str, float] = {}

    def lap(what: str) -> None:
        took[what] = round(time.monotonic() - t0 - sum(took.values()), 1)

    p = Pair(root)
    p.sql("primary", "ALTER SYSTEM SET fsync = off")  # throw-away servers
    p.sql("primary", "SELECT pg_reload_conf()")
    lap("initdb+start")
    started: list[Path] = [p.p_settings.pg_data]
    app = ExitStack()
    try:
        migrate(p.primary_url)  # PostGIS (CREATE EXTENSION) and the schema, on the primary
        lap("migrate")
        _build_city(p)
        lap("city")
        make_standby(p.p_port, p.password, p.r_data, p.r_port, sync=False)
        lap("pg_basebackup+start")
        started.append(p.r_data)
        assert p.sql("replica", "SELECT pg_is_in_recovery()") == [(True,)]
        env = {
            "GEOGRID_DATABASE_URL": p.primary_url,
            "GEOGRID_DATABASE_REPLICA_URL": p.replica_url,
            "GEOGRID_REPLICA_MAX_LAG_S": str(MAX_LAG_S),
            "GEOGRID_REPLICA_CHECK_S": str(CHECK_S),
        }
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            settings = Settings()  # the service's own way: from the environment
        assert settings.database_replica_url == p.replica_url
        p.http = app.enter_context(serving(p.primary_url, settings, timeout=30))
        lap("app")
        print(f"primary + standby + app ready in {time.monotonic() - t0:.1f} s: {took}")
        yield p
    finally:
        t1 = time.monotonic()
        app.close()
        t2 = time.monotonic()
        for data in reversed(started):
            t3 = time.monotonic()
            try:
                pg_ctl(data, "stop", "-m", "immediate")
            except Exception as exc:  # already stopped: nothing to do
                print(exc)
            print(f"stopped {data} in {time.monotonic() - t3:.1f} s")
        shutil.rmtree(root, ignore_errors=True)
        print(f"teardown: app {t2 - t1:.1f} s, servers {time.monotonic() - t2:.1f} s")


# ---------------------------------------------------------------------------- helpers


def _health(pair: Pair) -> dict:
    r = pair.http.get("/health")
    assert r.status_code == 200, r.text
    return r.json()


def _wait_state(pair: Pair, state: str, timeout: float = 20.0) -> dict:
    end = time.monotonic() + timeout
    while True:
        rep = _health(pair)["replica"]
        if rep["state"] == state:
            return rep
        if time.monotonic() > end:
            raise AssertionError(f"replica not {state} within {timeout} s: {rep}")
        time.sleep(0.1)


def _replicated(pair: Pair, timeout: float = 10.0) -> None:
    """Wait until the standby has replayed everything the primary wrote so far."""
    (head,) = pair.sql("primary", "SELECT pg_current_wal_insert_lsn()")[0]
    end = time.monotonic() + timeout
    while pair.sql("replica", "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (head,)) != [
        (True,)
    ]:
        assert time.monotonic() < end, "the standby does not catch up"
        time.sleep(0.05)


def _tick_and_pause(pair: Pair) -> float:
    """A fresh commit replayed on the standby, then replay paused: the standby's lag
    counts from now (returns the monotonic time of the pause)."""
    pair.sql("primary", "INSERT INTO replica_tick VALUES (now())")
    _replicated(pair)
    pair.sql("replica", "SELECT pg_wal_replay_pause()")
    return time.monotonic()


def _report(pair: Pair, who: str, grid: str, category: str = "garbage") -> int:
    lon, lat = CENTRES[grid]
    r = pair.http.post(
        "/incidents",
        json={"category": category, "lon": lon, "lat": lat, "description": "replica test"},
        headers=pair.auth(who),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _ogc_ids(pair: Pair, headers: dict | None = None, **filters: str) -> set[int]:
    r = pair.http.get(
        "/ogc/collections/incidents/items", params={"limit": 100, **filters}, headers=headers
    )
    assert r.status_code == 200, r.text
    return {int(f["id"]) for f in r.json()["features"]}


def _incident_tile(pair: Pair, salt: int) -> bytes:
    """A cold incidents tile over the city (a window of its own, so never cached)."""
    lon, lat = CENTRES[GRIDS[0]]
    x, y, _, _ = tile_range((lon, lat, lon, lat), 14)
    r = pair.http.get(
        f"/tiles/incidents/14/{x}/{y}.mvt",
        params={"from": _SINCE, "to": f"{_UNTIL}T{salt:02d}:00:00Z"},  # windows: whole hours
    )
    assert r.status_code == 200, r.text
    return r.content


def _dispute_metric(pair: Pair) -> int:
    r = pair.http.get("/metrics/grid", params={"category": "dispute", "from": _SINCE})
    assert r.status_code == 200, r.text
    return sum(int(u["incidents"]) for u in r.json()["units"])


# ---------------------------------------------------------------------------- tests


def _health_reports_the_replica(pair):
    body = _health(pair)
    assert body["status"] == "healthy"
    rep = _wait_state(pair, "up")
    assert rep["lag_s"] <= MAX_LAG_S and rep["max_lag_s"] == MAX_LAG_S and rep["error"] is None
    # the service's connections to the standby are named (pg_stat_activity)
    names = pair.sql(
        "replica",
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
        ("geogrid-replica",),
    )
    assert names[0][0] >= 1


def _reads_go_to_the_replica_and_the_writer_reads_its_write(pair):
    a = _report(pair, "w1", GRIDS[0])  # an incident of category garbage
    _replicated(pair)
    paused = _tick_and_pause(pair)
    # directly on the primary: A becomes a dispute (no API call: nobody's position, no
    # map change). Reads from the standby still see garbage; reads from the primary dispute.
    pair.sql("primary", "UPDATE incident SET category = 'dispute' WHERE id = %s", (a,))
    before = _health(pair)["replica"]["reads"]

    r = pair.http.get(f"/incidents/{a}", headers=pair.auth("community"))
    assert r.status_code == 200 and r.json()["category"] == "garbage"  # the standby
    listed = pair.http.get("/incidents", headers=pair.auth("leader")).json()
    assert {i["id"]: i["category"] for i in listed}[a] == "garbage"
    assert a not in _ogc_ids(pair, category="dispute")  # OGC items: the standby
    assert a in _ogc_ids(pair, category="garbage")
    assert _dispute_metric(pair) == 0  # metrics: the standby
    assert b"dispute" not in _incident_tile(pair, 1)  # a cold tile: the standby
    trend = pair.http.get(f"/metrics/grid/{GRIDS[0]}/trend", params={"category": "dispute"})
    assert trend.status_code == 200, trend.text
    assert sum(p["incidents"] for p in trend.json()["periods"]) == 0  # the standby
    loc = pair.http.get(
        "/locate", params={"lon": CENTRES[GRIDS[0]][0], "lat": CENTRES[GRIDS[0]][1]}
    )
    assert loc.status_code == 200

    # read-your-writes: w2 reports B while replay is paused (the standby cannot have it)
    b = _report(pair, "w2", GRIDS[1], "small_ads")
    mine = pair.http.get(f"/incidents/{b}", headers=pair.auth("w2"))
    assert mine.status_code == 200 and mine.json()["id"] == b  # from the primary
    assert mine.json()["category"] == "small_ads"
    assert b in {i["id"] for i in pair.http.get("/incidents", headers=pair.auth("w2")).json()}
    own = pair.http.get(f"/ogc/collections/incidents/items/{b}", headers=pair.auth("w2"))
    assert own.status_code == 200
    # someone else, who wrote nothing, reads the standby: B is not there yet
    other = pair.http.get(f"/incidents/{b}", headers=pair.auth("street"))
    assert other.status_code == 404, other.text
    assert time.monotonic() - paused < MAX_LAG_S, "too slow: the standby counted as lagging"

    after = _health(pair)["replica"]
    assert after["state"] == "up" and after["paused"] is True and after["lag_bytes"] > 0
    assert after["reads"]["replica"] > before["replica"]
    assert after["reads"]["primary"] > before["primary"]  # the writer's reads
    pair.a, pair.b, pair.paused = a, b, paused


def _a_lagging_replica_sends_reads_to_the_primary(pair):
    rep = _wait_state(pair, "lagging", timeout=MAX_LAG_S + 10)
    assert rep["lag_s"] > MAX_LAG_S and rep["paused"] is True
    r = pair.http.get(f"/incidents/{pair.a}", headers=pair.auth("community"))
    assert r.status_code == 200 and r.json()["category"] == "dispute"  # the primary
    assert pair.http.get(f"/incidents/{pair.b}", headers=pair.auth("street")).status_code == 200
    assert pair.a in _ogc_ids(pair, category="dispute")
    assert _dispute_metric(pair) == 1
    assert b"dispute" in _incident_tile(pair, 2)


def _a_resumed_replica_is_used_again(pair):
    pair.sql("replica", "SELECT pg_wal_replay_resume()")
    _replicated(pair)
    rep = _wait_state(pair, "up")
    assert rep["lag_s"] < MAX_LAG_S and rep["paused"] is False  # caught up (a check may
    # have run while the last records replayed: a fraction of a second)
    hot = pair.http.get("/hotspots", params={"from": _SINCE, "category": "garbage"})
    assert hot.status_code == 200, hot.text  # Gi* on the standby too (nothing written)
    # prove it with the data once more: pause, change directly on the primary, read
    _tick_and_pause(pair)
    pair.sql("primary", "UPDATE incident SET category = 'garbage' WHERE id = %s", (pair.a,))
    r = pair.http.get(f"/incidents/{pair.a}", headers=pair.auth("community"))
    assert r.status_code == 200 and r.json()["category"] == "dispute"  # the standby's copy
    pair.sql("replica", "SELECT pg_wal_replay_resume()")
    _replicated(pair)


def _a_stopped_replica_sends_reads_to_the_primary_without_errors(pair, caplog):
    _wait_state(pair, "up")
    # a second app whose health check is reused for a minute: when the standby stops, its
    # reads are sure to try the standby first (and fail there), then the primary
    slow = Settings(
        database_url=pair.primary_url,
        database_replica_url=pair.replica_url,
        replica_check_s=60,
        replica_max_lag_s=MAX_LAG_S,
    )
    caplog.set_level(logging.INFO, logger="geogrid.api.replica")
    with serving(pair.primary_url, slow, timeout=30) as other:
        first = other.get(f"/incidents/{pair.a}", headers=pair.auth("community"))
        assert first.status_code == 200
        assert other.get("/health").json()["replica"]["state"] == "up"
        pg_ctl(pair.r_data, "stop", "-m", "immediate")
        again = other.get(f"/incidents/{pair.a}", headers=pair.auth("community"))
        assert again.status_code == 200, again.text
        assert again.json()["category"] == "garbage"  # the primary's
        rep = other.get("/health").json()["replica"]
        assert rep["state"] == "down" and rep["error"]
    retried = [r for r in caplog.records if "answered on the primary" in r.getMessage()]
    assert retried, "the read did not fail on the standby first"
    # the session's app (checks every 0.3 s): every read still answers
    lon, lat = CENTRES[GRIDS[0]]
    for _ in range(3):
        r = pair.http.get(f"/incidents/{pair.a}", headers=pair.auth("community"))
        assert r.status_code == 200, r.text
        assert r.json()["category"] == "garbage"  # the primary's (the standby is gone)
    assert pair.http.get("/incidents", headers=pair.auth("leader")).status_code == 200
    assert pair.http.get("/incidents/overdue", headers=pair.auth("leader")).status_code == 200
    assert pair.a in _ogc_ids(pair, category="garbage")
    assert _dispute_metric(pair) == 0
    assert pair.http.get("/locate", params={"lon": lon, "lat": lat}).status_code == 200
    assert len(_incident_tile(pair, 3)) > 0
    c = _report(pair, "w1", GRIDS[0])  # writes are untouched
    assert pair.http.get(f"/incidents/{c}", headers=pair.auth("w1")).status_code == 200
    body = _health(pair)
    assert body["status"] == "healthy" and body["replica"]["state"] == "down"
    assert body["replica"]["error"]


def _a_restarted_replica_is_used_again(pair):
    pg_ctl(pair.r_data, "start")
    _replicated(pair, timeout=30)
    rep = _wait_state(pair, "up", timeout=30)
    before = rep["reads"]["replica"]
    r = pair.http.get(f"/incidents/{pair.a}", headers=pair.auth("community"))
    assert r.status_code == 200
    assert _health(pair)["replica"]["reads"]["replica"] > before
    # and with the data: pause, change directly on the primary, read the standby's copy
    _tick_and_pause(pair)
    pair.sql("primary", "UPDATE incident SET category = 'dispute' WHERE id = %s", (pair.a,))
    r = pair.http.get(f"/incidents/{pair.a}", headers=pair.auth("community"))
    assert r.status_code == 200 and r.json()["category"] == "garbage"
    pair.sql("replica", "SELECT pg_wal_replay_resume()")


def test_the_standby_through_its_states(pair, caplog):
    """The standby walked through its states in order — up, paused (reads on the standby,
    the writer's on the primary), lagging, resumed, stopped, restarted — in one test, so
    that no test scheduler (xdist) can split or reorder the walk."""
    _health_reports_the_replica(pair)
    _reads_go_to_the_replica_and_the_writer_reads_its_write(pair)
    _a_lagging_replica_sends_reads_to_the_primary(pair)
    _a_resumed_replica_is_used_again(pair)
    _a_stopped_replica_sends_reads_to_the_primary_without_errors(pair, caplog)
    _a_restarted_replica_is_used_again(pair)
