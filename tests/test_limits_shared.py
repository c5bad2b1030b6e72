"""Issue 10 (ABUSE): the expensive gate shared by worker processes through Redis, the
anonymous statement budget, and expensive work run out of the serving process.

Two servers (two apps, each with its own LimitsMiddleware, as two uvicorn workers) share
one Redis database (``GEOGRID_TEST_REDIS_URL``, default db 11). An expensive anonymous
request is held up in the database (its tables locked by the test), so it keeps its slot
for as long as the test needs: the other server then refuses a second one at once (503
naming the limit) while both answer ``/locate``.
"""

from __future__ import annotations

import os
import threading
import time

import httpx
import psycopg
import pytest
import redis
import small_city
from conftest import LiveServer
from small_city import CENTRES, GRIDS

from geogrid.settings import Settings

REDIS = os.environ.get("GEOGRID_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
LON, LAT = CENTRES[GRIDS[0]]
GATE = "geogrid-gate:{expensive}:"
WINDOW = {"from": "2025-06-01", "to": "2027-06-01"}
GENEROUS = {"cheap": "1000/second", "standard": "1000/second", "expensive": "1000/minute"}


@pytest.fixture(scope="module")
def rdb():
    client = redis.Redis.from_url(REDIS)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS}")
    client.delete(GATE + "all", GATE + "anonymous")
    yield client
    client.delete(GATE + "all", GATE + "anonymous")
    client.close()


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        yield c


def _settings(**more) -> Settings:
    return Settings(
        **{
            "redis_url": REDIS,
            "rate_limits": True,
            "rate_limits_anonymous": GENEROUS,
            "rate_limits_account": GENEROUS,
            "time_budget_anonymous": "100000/minute",
            "time_budget_account": "100000/minute",
            "expensive_queue": 0,
            "expensive_wait": 0.2,
            **more,
        }
    )


class _Locked:
    """The incident tables locked by a transaction of the test (readers wait)."""

    def __init__(self, url: str):
        self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))

    def __enter__(self) -> _Locked:
        self.conn.execute("LOCK TABLE incident, incident_daily IN ACCESS EXCLUSIVE MODE")
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.rollback()
        self.conn.close()


def _wait_for(check, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_second_expensive_anonymous_request_gets_503_in_another_process(city, rdb):
    settings = _settings(statement_timeouts_anonymous={"expensive": 120_000})
    a, b = LiveServer(city.url, settings), LiveServer(city.url, settings)
    try:
        with (
            httpx.Client(base_url=a.base, timeout=120) as ca,
            httpx.Client(base_url=b.base, timeout=120) as cb,
        ):
            # warm: the offload workers and the unit caches
            for cl in (ca, cb):
                assert cl.get("/metrics/grid", params=WINDOW).status_code == 200
            first: list[httpx.Response] = []
            with _Locked(city.url):
                held = threading.Thread(
                    target=lambda: first.append(ca.get("/metrics/grid", params=WINDOW))
                )
                held.start()
                _wait_for(lambda: rdb.zcard(GATE + "anonymous") == 1)
                # the other process: a second expensive anonymous request is refused at once
                t0 = time.perf_counter()
                r = cb.get("/hotspots", params={"level": "grid"})
                assert r.status_code == 503, r.text
                assert time.perf_counter() - t0 < 5
                body = r.json()
                assert body["error"] == "Busy"
                assert body["limit"] == "expensive_concurrency_anonymous"
                assert body["limit_value"] == 1
                assert int(r.headers["Retry-After"]) >= 1
                # the same process too; a heat tile with a window is heavy as well
                assert ca.get("/metrics/street", params=WINDOW).status_code == 503
                r = cb.get("/heatmap/13/6598/3572.png", params=WINDOW)
                assert r.status_code == 503, r.text
                # cheap requests are answered by both processes meanwhile
                for cl in (ca, cb):
                    r = cl.get("/locate", params={"lon": LON, "lat": LAT})
                    assert r.status_code == 200, r.text
                    assert r.json()["inside"] is True
                # an account takes the deployment's other slot (expensive_concurrency = 2) …
                analyst = city.auth("analyst")
                second = threading.Thread(
                    target=lambda: first.append(
                        cb.get("/metrics/grid", params=WINDOW, headers=analyst)
                    )
                )
                second.start()
                _wait_for(lambda: rdb.zcard(GATE + "all") == 2)
                # … and then the gate is full for accounts too
                r = ca.get("/metrics/grid", params=WINDOW, headers=analyst)
                assert r.status_code == 503, r.text
                assert r.json()["limit"] == "expensive_concurrency"
            held.join(timeout=120)
            second.join(timeout=120)
            assert [r.status_code for r in first] == [200, 200], [r.text for r in first]
            # the slot came back: the other process serves the next one
            assert rdb.zcard(GATE + "anonymous") == 0
            r = cb.get("/hotspots", params={"level": "grid"})
            assert r.status_code == 200, r.text
    finally:
        a.stop()
        b.stop()


def test_anonymous_expensive_statement_budget(city, rdb):
    """An anonymous caller's expensive SQL has ``statement_timeouts_anonymous``: cancelled
    in the worker process, it comes back as the database's error → 503, Retry-After."""
    srv = LiveServer(city.url, _settings(statement_timeouts_anonymous={"expensive": 300}))
    try:
        with httpx.Client(base_url=srv.base, timeout=120) as cl:
            assert cl.get("/metrics/grid", params=WINDOW).status_code == 200  # warm
            with _Locked(city.url):
                t0 = time.perf_counter()
                r = cl.get("/metrics/grid", params=WINDOW)
                took = time.perf_counter() - t0
            assert r.status_code == 503, r.text
            assert "Retry-After" in r.headers
            assert took < 30, took
            # the slot is given back (after the answer was sent: a moment later)
            deadline = time.monotonic() + 5
            while rdb.zcard(GATE + "anonymous") and time.monotonic() < deadline:
                time.sleep(0.05)
            assert rdb.zcard(GATE + "anonymous") == 0
    finally:
        srv.stop()


def test_gate_without_redis_is_per_process(city):
    """Without Redis each process has its own slots (the gate still answers 503)."""
    srv = LiveServer(city.url, _settings(redis_url=None))
    try:
        with httpx.Client(base_url=srv.base, timeout=120) as cl:
            assert cl.get("/metrics/grid", params=WINDOW).status_code == 200
            results: list[httpx.Response] = []
            with _Locked(city.url):
                held = threading.Thread(
                    target=lambda: results.append(cl.get("/metrics/grid", params=WINDOW))
                )
                held.start()
                time.sleep(1.0)
                r = cl.get("/hotspots", params={"level": "grid"})
                assert r.status_code == 503, r.text
                assert r.json()["limit"] == "expensive_concurrency_anonymous"
                assert cl.get("/locate", params={"lon": LON, "lat": LAT}).status_code == 200
            held.join(timeout=120)
            assert results[0].status_code == 200, results[0].text
    finally:
        srv.stop()
