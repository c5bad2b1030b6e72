"""geogrid.services.tilecache and geogrid.store.changes: keys, ETags, LRU, bbox invalidation at
every zoom (memory and Redis), the change log in the edit's transaction, the watcher."""

from __future__ import annotations

import itertools
import time
import uuid

import numpy as np
import pytest
from sqlalchemy import text

from geogrid.core.tiles import tile_bounds_lonlat, tile_pad_deg, tile_range
from geogrid.services.tilecache import ChangeWatcher, Memo, TileCache, etag, params_key

REDIS_URL = "redis://127.0.0.1:6379/0"


def _intersects(a, b) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


@pytest.mark.parametrize("z", [0, 3, 8, 12, 15])
def test_tile_range_is_exactly_the_intersecting_tiles(z):
    rng = np.random.default_rng(z)
    for _ in range(20):
        w, s = rng.uniform(109.5, 110.8), rng.uniform(21.6, 23.0)
        bbox = (w, s, w + rng.uniform(0, 0.05), s + rng.uniform(0, 0.05))
        x0, y0, x1, y1 = tile_range(bbox, z)
        n = 1 << z
        for x, y in itertools.product(
            range(max(x0 - 2, 0), min(x1 + 3, n)), range(max(y0 - 2, 0), min(y1 + 3, n))
        ):
            inside = x0 <= x <= x1 and y0 <= y <= y1
            assert inside == _intersects(tile_bounds_lonlat(z, x, y), bbox), (z, x, y)


def test_params_key_and_etag():
    assert (
        params_key({"to": None, "from": "2026-01-01", "category": ["b", "a"]})
        == "category=a,b&from=2026-01-01"
    )
    assert params_key(None) == ""
    assert etag(b"abc") == etag(b"abc") != etag(b"abd")
    assert etag(b"abc").startswith('"') and len(etag(b"abc")) == 34


def test_lru_get_put_evict():
    c = TileCache(size=3)
    tags = [c.put("grids", 10, i, 0, "", bytes([i])) for i in range(4)]
    assert len(c) == 3 and c.get("grids", 10, 0, 0) is None
    assert c.get("grids", 10, 3, 0) == (bytes([3]), tags[3])
    c.get("grids", 10, 1, 0)  # 1 becomes recent; 2 is evicted next
    c.put("grids", 10, 9, 0, "", b"x")
    assert c.get("grids", 10, 2, 0) is None and c.get("grids", 10, 1, 0) is not None


def _fill(c: TileCache, layer: str, bbox, zooms, params=("", "from=2026-01-01")):
    keys = []
    for z in zooms:
        x0, y0, x1, y1 = tile_range(bbox, z)
        for x, y in itertools.product(range(x0 - 2, x1 + 3), range(y0 - 2, y1 + 3)):
            for p in params:
                c.put(layer, z, x, y, p, f"{layer}{z}{x}{y}{p}".encode())
                keys.append((layer, z, x, y, p))
    return keys


def test_invalidate_exactly_the_intersecting_tiles_at_every_zoom():
    c = TileCache(size=100_000)
    area = (110.10, 22.60, 110.20, 22.70)
    keys = _fill(c, "grids", area, range(8, 16)) + _fill(c, "incidents", area, [12])
    change = (110.151, 22.631, 110.152, 22.632)
    dropped = c.invalidate(["grids"], change)
    expect = {
        k for k in keys if k[0] == "grids" and _intersects(tile_bounds_lonlat(*k[1:4]), change)
    }
    assert dropped == len(expect) >= 8 * 2  # both params variants, every zoom
    for k in keys:
        assert (c.get(*k) is None) == (k in expect), k
    # padding by the tile buffer reaches the neighbours whose buffer holds the change
    c2 = TileCache(size=100_000)
    keys = _fill(c2, "incidents", area, [14])
    pt = (110.15, 22.63, 110.15, 22.63)
    c2.invalidate(["incidents"], pt, pad=tile_pad_deg)
    gone = {k for k in keys if c2.get(*k) is None}
    assert {k[2:4] for k in gone} >= set(
        itertools.product(
            *[
                range(a, b + 1)
                for a, b in zip(tile_range(pt, 14)[:2], tile_range(pt, 14)[2:], strict=True)
            ]
        )
    )
    assert len({k[2:4] for k in gone}) <= 4


def test_invalidate_everything_and_token_race():
    c = TileCache()
    c.put("heatmap", 5, 1, 1, "", b"a")
    tok = c.token("heatmap")
    c.invalidate(["heatmap"], None)
    assert c.get("heatmap", 5, 1, 1) is None
    tag = c.put("heatmap", 5, 1, 1, "", b"stale", token=tok)  # rendered before the change
    assert tag == etag(b"stale") and c.get("heatmap", 5, 1, 1) is None


@pytest.fixture()
def redis_prefix():
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except Exception:  # noqa: BLE001
        pytest.skip("no Redis on 127.0.0.1:6379")
    prefix = f"geogrid-test-{uuid.uuid4().hex[:8]}:"
    yield prefix
    TileCache(redis_url=REDIS_URL, prefix=prefix).clear()


def test_redis_shared_between_processes_and_invalidated(redis_prefix):
    a = TileCache(size=10, redis_url=REDIS_URL, prefix=redis_prefix)
    b = TileCache(size=10, redis_url=REDIS_URL, prefix=redis_prefix)
    area = (110.10, 22.60, 110.20, 22.70)
    keys = _fill(a, "grids", area, [10, 13], params=("",))
    body = "grids{}{}{}".format(*keys[-1][1:4]).encode()
    assert b.get(*keys[-1]) == (body, etag(body))  # b never rendered it: from Redis
    change = (110.151, 22.631, 110.152, 22.632)
    b.invalidate(["grids"], change)
    fresh = TileCache(size=10, redis_url=REDIS_URL, prefix=redis_prefix)  # no memory level
    for k in keys:
        hit = _intersects(tile_bounds_lonlat(*k[1:4]), change)
        assert (fresh.get(*k) is None) == hit, k
    left = {m.decode() for m in a.redis.smembers(f"{redis_prefix}i:grids:13")}
    assert len(left) == sum(
        1 for k in keys if k[1] == 13 and not _intersects(tile_bounds_lonlat(*k[1:4]), change)
    )


def test_memo_builds_once_and_clears():
    calls = []
    m = Memo(size=2)
    assert m.get("a", lambda: calls.append(1) or 1) == 1
    assert m.get("a", lambda: calls.append(1) or 2) == 1 and len(calls) == 1
    m.clear()
    assert m.get("a", lambda: 3) == 3


def test_watcher_throttles_and_skips_history():
    seen, marks = [], iter([(["old"], 5), (["x"], 6), (["y"], 7)])
    w = ChangeWatcher(lambda last: next(marks), seen.extend, interval=0.2)
    assert w.poll() == 0 and w.last_id == 5  # first call: high-water mark only
    assert w.poll() == 0  # throttled
    time.sleep(0.25)
    assert w.poll() == 1 and seen == ["x"]
    assert w.poll(force=True) == 1 and seen == ["x", "y"]


def test_record_change_is_part_of_the_edit_transaction(make_db):
    from geogrid.store import get_engine
    from geogrid.store.changes import (
        changes_since,
        record_change,
        record_incident_change,
    )

    engine = get_engine(make_db())
    with engine.connect() as conn:
        _, mark = changes_since(conn, None)
    with engine.connect() as conn:  # rolled back: no row
        with conn.begin() as tx:
            record_change(conn, ["grids", "communities"], (110.1, 22.6, 110.2, 22.7), "test")
            tx.rollback()
        assert changes_since(conn, mark)[0] == []
    with engine.begin() as conn:
        ids = record_incident_change(
            conn, np.array([110.15, 110.2, np.nan]), np.array([22.6, 22.65, 1.0])
        )
        record_change(conn, "boundaries", None, "publish")
        assert record_incident_change(conn, [], []) == []
    with engine.connect() as conn:
        rows, last = changes_since(conn, mark)
        n = conn.execute(text("SELECT count(*) FROM map_change")).scalar_one()
    assert n == 2 and last == rows[-1].id and rows[0].id == ids[0]
    assert rows[0].layer == "incidents" and rows[0].bbox == pytest.approx(
        (110.15, 22.6, 110.2, 22.65)
    )
    assert rows[1].layer == "boundaries" and rows[1].bbox is None
    with pytest.raises(Exception, match="bbox"):
        with engine.begin() as conn:
            record_change(conn, "grids", (2, 2, 1, 1), "bad")


def test_memo_peek_put_discard():
    m = Memo(size=4)
    assert m.peek("a") is None
    m.get("a", lambda: 1)
    gen = m.generation
    m.put("a", 2)  # a refreshed value replaces the old one, no rebuild
    assert m.peek("a") == 2 and m.get("a", lambda: 3) == 2 and m.keys() == ["a"]
    m.discard("a")
    assert m.peek("a") is None and m.generation > gen  # a build in flight is not stored


def test_peek_reads_memory_only(redis_prefix):
    a = TileCache(size=10, redis_url=REDIS_URL, prefix=redis_prefix)
    b = TileCache(size=10, redis_url=REDIS_URL, prefix=redis_prefix)
    tag = a.put("grids", 12, 1, 2, "", b"tile")
    assert a.peek("grids", 12, 1, 2) == (b"tile", tag)
    assert b.peek("grids", 12, 1, 2) is None  # only in Redis for b: peek does no I/O
    assert b.get("grids", 12, 1, 2) == (b"tile", tag)  # get reads Redis, keeps it in memory
    assert b.peek("grids", 12, 1, 2) == (b"tile", tag)
    b.invalidate(["grids"], None)
    assert b.peek("grids", 12, 1, 2) is None


def test_held_and_stamped_tiles_for_redraws(redis_prefix):
    """Issue 12 (redraws before drops): ``held`` lists the memory keys an invalidation of
    the same bboxes would drop, the most recently used first; ``stamped`` reads another
    process's Redis tile only when stamped at or past a change."""
    a = TileCache(size=10, redis_url=REDIS_URL, prefix=redis_prefix)
    b = TileCache(size=10, redis_url=REDIS_URL, prefix=redis_prefix)
    box = tile_bounds_lonlat(12, 3299, 1786)
    inside = (box[0] + 1e-4, box[1] + 1e-4, box[0] + 2e-4, box[1] + 2e-4)
    a.put("grids", 12, 3299, 1786, "w=1", b"first", stamp=7)
    a.put("grids", 12, 3299, 1786, "w=2", b"second")
    a.put("grids", 12, 3000, 1500, "w=1", b"far")
    a.peek("grids", 12, 3299, 1786, "w=1")  # used last
    drops = {"grids": ([inside], None)}
    first, second = ("grids", 12, 3299, 1786, "w=1"), ("grids", 12, 3299, 1786, "w=2")
    assert a.held(drops) == [(first, 0), (second, 0)]
    # each with its bar: the last change whose bbox meets it
    far = tile_bounds_lonlat(12, 3000, 1500)
    two = {"grids": ([inside, inside, far], None)}
    assert a.held(two, {"grids": [4, 9, 12]}) == [  # most recently used first
        (first, 9),
        (("grids", 12, 3000, 1500, "w=1"), 12),
        (second, 9),
    ]
    assert a.held({"communities": ([inside], None)}) == []
    key = ("grids", 12, 3299, 1786, "w=1")
    assert b.stamped(key, 7) == (b"first", etag(b"first"))
    assert b.stamped(key, 8) is None
    assert b.stamped(("grids", 12, 3299, 1786, "w=2"), 0) is None  # not stamped
    assert TileCache(size=10).stamped(key, 0) is None  # no Redis
    assert a.invalidate_batch(drops) == 2 + 2 and a.held(drops) == []


def test_stamped_tiles_outlive_older_invalidations_in_redis(redis_prefix):
    """Issue 12: an invalidation up to change N keeps the Redis tiles another worker drew
    having applied N (stamped ≥ N) — it reads them instead of drawing them again — and
    drops the older and unstamped ones; the memory level is always dropped."""
    a = TileCache(size=10, redis_url=REDIS_URL, prefix=redis_prefix)
    b = TileCache(size=10, redis_url=REDIS_URL, prefix=redis_prefix)
    tag_new = a.put("grids", 12, 1, 2, "", b"new", stamp=10)
    a.put("grids", 12, 3, 4, "", b"old", stamp=9)
    a.put("grids", 12, 5, 6, "", b"plain")
    for xy in ((1, 2), (3, 4), (5, 6)):
        assert b.get("grids", 12, *xy) is not None  # in b's memory too
    assert b.get("grids", 12, 1, 2) == (b"new", tag_new)  # the stamp is not in the bytes
    assert b.invalidate(["grids"], None, upto=10) == 3 + 2  # memory: 3; Redis: 2
    assert b.peek("grids", 12, 1, 2) is None
    assert b.get("grids", 12, 1, 2) == (b"new", tag_new)  # kept in Redis: read again
    assert b.get("grids", 12, 3, 4) is None and b.get("grids", 12, 5, 6) is None
    left = {m.decode() for m in a.redis.smembers(f"{redis_prefix}i:grids:12")}
    assert left == {"1:2:"}  # the index follows
    assert b.invalidate(["grids"], None, upto=11) == 1 + 1
    assert (
        TileCache(size=10, redis_url=REDIS_URL, prefix=redis_prefix).get("grids", 12, 1, 2) is None
    )


def test_invalidation_bar_is_the_last_change_meeting_the_tile(redis_prefix):
    """Per-bbox change ids: a Redis tile is kept when stamped at or past the last change
    whose bbox meets it, whatever later changes met other tiles."""
    a = TileCache(size=10, redis_url=REDIS_URL, prefix=redis_prefix)
    west, east = (110.10, 22.60, 110.10, 22.60), (110.30, 22.60, 110.30, 22.60)
    xw, yw = tile_range(west, 12)[:2]
    xe, ye = tile_range(east, 12)[:2]
    a.put("grids", 12, xw, yw, "", b"w", stamp=10)
    a.put("grids", 12, xe, ye, "", b"e", stamp=10)
    a.invalidate_batch({"grids": ([west, east], None)}, upto={"grids": [5, 20]})
    fresh = TileCache(size=10, redis_url=REDIS_URL, prefix=redis_prefix)
    assert fresh.get("grids", 12, xw, yw) is not None  # its change (5) is folded in
    assert fresh.get("grids", 12, xe, ye) is None  # 20 is not


def test_unit_boxes_answer_as_postgis_does(demo_db_url):
    """issue 10: the extents a batch of incidents touches, from the units' boxes held in
    memory (geogrid.core.unit_boxes), equal PostGIS's (store.changes.unit_extents_many)
    on the demo: points as the changes carry them, wider boxes, boxes outside the city."""
    from geogrid.core.unit_boxes import UnitBoxes
    from geogrid.store import get_engine
    from geogrid.store.changes import unit_boxes, unit_extents_many

    levels = ["district", "street", "community", "grid"]
    rng = np.random.default_rng(12)
    engine = get_engine(demo_db_url)
    with engine.connect() as conn:
        index = UnitBoxes(unit_boxes(conn, levels))
        w, s, e, n = conn.execute(
            text(
                "SELECT ST_XMin(x), ST_YMin(x), ST_XMax(x), ST_YMax(x) FROM "
                "(SELECT ST_Extent(geom) AS x FROM unit WHERE level = 'district') q"
            )
        ).one()
        xs, ys = rng.uniform(w - 0.05, e + 0.05, 300), rng.uniform(s - 0.05, n + 0.05, 300)
        sizes = np.where(rng.random(300) < 0.8, 1e-7, rng.uniform(0.001, 0.05, 300))
        boxes = [(x, y, x + d, y + d) for x, y, d in zip(xs, ys, sizes, strict=True)]
        for batch in (boxes, boxes[:1], []):
            want = unit_extents_many(conn, levels, batch)
            got = index.extents(levels, batch)
            assert set(got) == set(want)
            for lv in levels:
                assert len(got[lv]) == len(set(got[lv]))
                a, b = np.array(sorted(got[lv])), np.array(sorted(want[lv]))
                assert a.shape == b.shape and np.allclose(a, b, rtol=0, atol=1e-9), lv
    assert len(index) > 0 and sum(len(v) for v in want.values()) == 0


def test_memo_get_or_stale_keeps_the_old_value_when_a_rebuild_fails():
    """An expired value is answered while a rebuild runs; a rebuild that fails leaves the
    old value (logged), the next call tries again; a clear() meanwhile is not undone."""
    import threading

    from geogrid.services.tilecache import Memo

    m = Memo(ttl=0.0)  # expired as soon as stored
    assert m.get("k", lambda: "v1") == "v1"
    jobs: list = []

    def fail() -> str:
        raise RuntimeError("database down")

    assert m.get_or_stale("k", fail, renew=jobs.append) == "v1"
    assert m.get_or_stale("k", fail, renew=jobs.append) == "v1"
    assert len(jobs) == 1  # one rebuild at a time
    jobs.pop()()  # fails: kept
    assert m.get_or_stale("k", lambda: "v2", renew=jobs.append) == "v1"
    ran = threading.Thread(target=jobs.pop())
    ran.start()
    ran.join()
    # a clear() while a rebuild runs: the rebuild is not stored, the next call builds
    assert m.get_or_stale("k", lambda: "v3", renew=jobs.append) == "v2"
    m.clear()
    jobs.pop()()
    assert "k" not in m.keys()
    assert m.get_or_stale("k", lambda: "v4", renew=jobs.append) == "v4" and not jobs
