"""The live map (issue 12): PostgreSQL LISTEN/NOTIFY → the service → Server-Sent Events,
over real HTTP on the small city: a report reaches subscribers within a second, scoped
(a worker hears only their grids; anonymous subscribers get public fields only), status
changes and bulk inserts are one event each, and the same notifications invalidate the
map's cached tiles without waiting for the poll."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest
import small_city
from small_city import CENTRES, GRIDS
from sqlalchemy import text

from geogrid.core.live import EVENT_FIELDS, PUBLIC_FIELDS, parse_batch
from geogrid.core.tiles import tile_range


@dataclass
class Event:
    kind: str
    data: dict
    at: float  # perf_counter() when the line arrived
    raw: str


@dataclass
class SSEClient:
    """A real EventSource-like client in a thread: every event into ``events``."""

    base: str
    headers: dict = field(default_factory=dict)
    events: queue.Queue = field(default_factory=queue.Queue)
    raw: list = field(default_factory=list)
    pings: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        ready = self.next("ready", timeout=15)
        assert ready.data["listening"] is True, ready.data
        self.scope = ready.data["scope"]

    def _run(self) -> None:
        with (
            httpx.Client(base_url=self.base, timeout=httpx.Timeout(5, read=None)) as c,
            c.stream(
                "GET",
                "/live/incidents",
                headers={**self.headers, "Accept": "text/event-stream"},
            ) as r,
        ):
            self._resp = r
            assert r.status_code == 200 and r.headers["content-type"].startswith(
                "text/event-stream"
            )
            kind, data = "message", []
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                self.raw.append(line)
                if line.startswith(":"):
                    self.pings += 1
                elif line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    text_ = "\n".join(data)
                    self.events.put(Event(kind, json.loads(text_), time.perf_counter(), text_))
                    kind, data = "message", []

    def next(self, kind: str | None = None, timeout: float = 5.0, where=None) -> Event:
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind or 'event'} within {timeout} s")
            ev = self.events.get(timeout=left)
            if (kind is None or ev.kind == kind) and (where is None or where(ev)):
                return ev

    def drain(self) -> list[Event]:
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        self._stop.set()
        resp = getattr(self, "_resp", None)
        if resp is not None:
            try:
                resp.close()
            except Exception:  # closing from another thread may race the reader
                pass


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        yield c


@pytest.fixture(scope="module")
def client(city):
    with small_city.serve(city) as c:
        yield c


@pytest.fixture(scope="module")
def subs(city, client):
    base = str(client.base_url)
    out = {
        "admin": SSEClient(base, city.auth("admin")),
        "leader": SSEClient(base, city.auth("leader")),
        "w1": SSEClient(base, city.auth("w1")),
        "w2": SSEClient(base, city.auth("w2")),
        "anon": SSEClient(base),
    }
    yield out
    for s in out.values():
        s.close()


def _report(client, city, who: str, grid: str, description: str) -> tuple[int, float]:
    lon, lat = CENTRES[grid]
    t0 = time.perf_counter()
    r = client.post(
        "/incidents",
        json={"category": "garbage", "lon": lon, "lat": lat, "description": description},
        headers=city.auth(who),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"]), t0


def test_scopes_are_announced(subs, client, city):
    assert subs["admin"].scope == "city" and subs["w1"].scope == "units"
    assert subs["anon"].scope == "public"
    # a client that does not ask for a stream gets the ready event and the end
    r = client.get("/live/incidents", headers=city.auth("w1"), timeout=10)
    assert r.status_code == 200 and "event: ready" in r.text and '"scope":"units"' in r.text
    bad = client.get("/live/incidents", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


def test_report_reaches_every_open_map_within_a_second(client, city, subs):
    for s in subs.values():
        s.drain()
    secret = "楼下垃圾，联系 13912345678 王先生"
    iid, t0 = _report(client, city, "w2", GRIDS[1], secret)
    took, got = {}, {}
    for key in ("admin", "leader", "w2", "anon"):
        ev = subs[key].next("new", timeout=5, where=lambda e: e.data["id"] == iid)
        took[key], got[key] = ev.at - t0, ev
        assert ev.data["grid_code"] == GRIDS[1] and ev.data["status"] == "reported"
        assert ev.data["category"] == "garbage"
        lon, lat = CENTRES[GRIDS[1]]
        assert abs(ev.data["lon"] - lon) < 1e-6 and abs(ev.data["lat"] - lat) < 1e-6
    print("report → event latency (s):", {k: round(v, 3) for k, v in took.items()})
    assert max(took.values()) < 1.0, took
    # anonymous: public fields only; nobody's stream carries the description
    assert set(got["anon"].data) <= set(PUBLIC_FIELDS)
    for s in subs.values():
        for line in s.raw:
            assert "13912345678" not in line and "王先生" not in line and "联系" not in line


def test_a_worker_hears_only_their_grids(client, city, subs):
    for s in subs.values():
        s.drain()
    other, _ = _report(client, city, "w2", GRIDS[1], "another grid's report")
    subs["admin"].next("new", where=lambda e: e.data["id"] == other)
    mine, _ = _report(client, city, "w1", GRIDS[0], "my grid's report")
    got = subs["w1"].next("new", timeout=5, where=lambda e: e.data["id"] == mine)
    assert got.data["grid_code"] == GRIDS[0]
    # events arrive in commit order: had w1 been sent the other grid's report, it would
    # have come before this one
    seen = [e.data.get("id") for e in subs["w1"].drain()]
    assert other not in seen
    w2_seen = [e.data.get("id") for e in subs["w2"].drain()]
    assert mine not in w2_seen


def test_status_change_and_bulk_insert_are_one_event_each(city, subs):
    for s in subs.values():
        s.drain()
    with city.engine.begin() as conn:
        iid = conn.execute(
            text("SELECT id FROM incident WHERE grid_code = :g ORDER BY id LIMIT 1"),
            {"g": GRIDS[0]},
        ).scalar_one()
        conn.execute(text("UPDATE incident SET status = 'accepted' WHERE id = :i"), {"i": iid})
    ev = subs["w1"].next("status", where=lambda e: e.data["id"] == iid)
    assert ev.data["status"] == "accepted"
    # a rolled-back change sends nothing; an update that changes no status neither
    with city.engine.connect() as conn:
        conn.execute(text("UPDATE incident SET status = 'closed' WHERE id = :i"), {"i": iid})
        conn.rollback()
    with city.engine.begin() as conn:
        conn.execute(text("UPDATE incident SET updated_at = now() WHERE id = :i"), {"i": iid})
        n = conn.execute(
            text(
                "INSERT INTO incident (category, reported_at, updated_at, status, geom, "
                "grid_code, community_code, street_code, district_code) "
                "SELECT category, now(), now(), 'reported', geom, grid_code, community_code, "
                "street_code, district_code FROM incident, generate_series(1, 40) g "
                "WHERE id = :i"
            ),
            {"i": iid},
        ).rowcount
    bulk = subs["admin"].next("bulk", timeout=5)
    assert bulk.data["count"] == n == 40 and bulk.data["kind"] == "new"
    time.sleep(0.3)
    rest = subs["admin"].drain()
    assert [e.kind for e in rest] == [], [e.raw for e in rest]  # no closed, no 40 events


def test_payload_parser_ignores_foreign_payloads():
    assert parse_batch("hello") is None and parse_batch('{"v": 2}') is None
    b = parse_batch(
        json.dumps({"v": 1, "kind": "new", "count": 1, "events": [{"id": 1, "reporter_id": 9}]})
    )
    assert b is not None and set(b.events[0]) == set(EVENT_FIELDS)


def test_push_slows_the_request_poll(city):
    """The map service's own poll is the fallback: slow while pushed, fast otherwise."""
    from geogrid.services.mapservice import PUSH_FALLBACK, MapService
    from geogrid.settings import Settings

    maps = MapService(city.engine, Settings(), poll_interval=0.5)
    maps.set_push(True)
    assert maps.watcher.interval == PUSH_FALLBACK > 0.5
    maps.set_push(False)
    assert maps.watcher.interval == 0.5
    maps.close()


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    x0, y0, _, _ = tile_range((lon, lat, lon, lat), z)
    return x0, y0


def test_notifications_invalidate_cached_tiles(client, city, subs):
    """While the listener is up, requests poll the change log only every few seconds;
    a cached incidents tile still changes within a second of a report: pushed."""
    lon, lat = CENTRES[GRIDS[2]]
    x, y = _tile_of(lon, lat, 15)
    url = f"/tiles/incidents/15/{x}/{y}.mvt"
    first = client.get(url)
    assert first.status_code == 200
    again = client.get(url)
    assert again.headers["etag"] == first.headers["etag"]
    iid, t0 = _report(client, city, "w3", GRIDS[2], "a pushed invalidation")
    subs["admin"].next("new", where=lambda e: e.data["id"] == iid)
    deadline = t0 + 1.0
    changed = False
    while time.perf_counter() < deadline:
        r = client.get(url)
        if r.headers["etag"] != first.headers["etag"]:
            changed = True
            break
        time.sleep(0.05)
    print(f"tile changed {time.perf_counter() - t0:.3f} s after the report")
    assert changed, "the cached tile was not invalidated within 1 s"


CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium not installed")
def test_the_leaders_map_shows_a_new_report(client, city):
    """The page subscribes (EventSource), and a report posted by a worker appears as a
    toast and a dot on the map."""
    from playwright.sync_api import sync_playwright

    base = str(client.base_url)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = b.new_page(viewport={"width": 1280, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base + "/")
            page.wait_for_function("document.body.dataset.ready === '1'", timeout=180_000)
            page.wait_for_function(
                "window.geogridLive && window.geogridLive.state.source "
                "&& window.geogridLive.state.source.readyState === 1 "
                "&& window.geogridLive.state.ready === true",
                timeout=30_000,
            )
            iid, _ = _report(client, city, "w1", GRIDS[0], "seen on the leaders' map")
            page.wait_for_selector(".live-toast", timeout=5_000)
            text_ = page.inner_text("#live-toasts")
            assert GRIDS[0] in text_, text_
            ids = page.evaluate("window.geogridLive.state.events.map((e) => e.id)")
            assert iid in ids
            n = page.evaluate(
                "window.geogrid.map.getSource('live').serialize().data.features.length"
            )
            assert n >= 1
            assert not errors, errors
        finally:
            b.close()


def test_an_open_stream_does_not_spend_the_time_budget(city):
    """With the rate limits on, keeping the live map open must not use up the caller's
    server-time budget (anonymous: 6 s a minute)."""
    from conftest import LiveServer

    from geogrid.settings import Settings

    srv = LiveServer(city.url, Settings(rate_limits=True))
    try:
        t0 = time.perf_counter()
        with (
            contextlib.suppress(httpx.ReadTimeout),
            httpx.stream(
                "GET",
                f"{srv.base}/live/incidents",
                headers={"Accept": "text/event-stream"},
                timeout=httpx.Timeout(10, read=8.0),  # no event after "ready": times out
            ) as stream,
        ):
            for _ in stream.iter_lines():
                pass
        assert time.perf_counter() - t0 > 7.5  # the stream was open that long
        time.sleep(1.0)  # the server notices the disconnect and charges the time
        r = httpx.get(f"{srv.base}/ogc/conformance", timeout=10)
        assert r.status_code == 200, (r.status_code, r.text)
    finally:
        srv.stop()
