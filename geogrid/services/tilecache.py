"""Tile cache (in-memory LRU, optionally Redis) with bbox invalidation, and the small
generic pieces of map serving: a memo (:class:`Memo`) and a throttled change poller
(:class:`ChangeWatcher`). What is cached, and when it goes stale, is decided by the map
service (:mod:`geogrid.services.mapservice`); nothing here knows the database.

Keys. A cached tile is addressed by ``(layer, z, x, y, params)`` where ``params`` is the
canonical query string of everything that changes the bytes (window, categories…). The
cache keeps an index ``layer → z → (x, y) → {params}`` so that a changed bbox invalidates
exactly the tiles whose bounds intersect it, at every zoom, whatever their parameters.

ETag. ``etag(bytes)`` is a BLAKE2b hash of the tile bytes, so equal bytes give equal tags
across processes and restarts (a tile rebuilt after an unrelated change keeps its tag).

Redis. With ``GEOGRID_REDIS_URL`` set, tiles also go to Redis under a key prefix
(``geogrid:`` by default) so that several server processes share them; each process still
keeps its memory LRU in front and invalidates both when it sees a change. Redis keys:

* ``{prefix}t:{layer}:{z}:{x}:{y}:{params}`` → ``[stamp \\n] etag \\n bytes`` (with the
  entry's TTL);
* ``{prefix}i:{layer}:{z}`` → set of ``x:y:params`` (the index used for invalidation).

Stamps (issue 12). Every process applies every change to its memory *and* to Redis. A
tile may carry the change-log position its bytes already reflect (``put(stamp=)``: the
last change the renderer had applied — for metric tiles, folded into its metrics frame);
an invalidation with ``upto`` (the last change of the batch, or per bbox: the change it
comes from — a tile's bar is then the last change that meets it) keeps the Redis entries
stamped at or past it. So a tile another worker re-drew after the change survives this
worker's (later) invalidation of it and is read from Redis instead of drawn again: one
render per change and tile for all the workers, not one each.

Races. A render that started before an invalidation must not re-insert stale bytes:
:meth:`TileCache.token` is read before rendering and :meth:`TileCache.put` drops the
bytes when an invalidation touching that layer happened in between.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar, cast

import redis

from geogrid.core.tiles import tile_range

__all__ = ["TileCache", "Memo", "ChangeWatcher", "etag", "params_key"]

log = logging.getLogger("geogrid.services.tilecache")


BBox = tuple[float, float, float, float]
#: a cache key: layer, z, x, y, params
Key = tuple[str, int, int, int, str]
T = TypeVar("T")
C = TypeVar("C")


def etag(data: bytes) -> str:
    """Strong ETag (quoted) of tile bytes: 128-bit BLAKE2b, hex.

    >>> etag(b"abc") == etag(b"abc"), len(etag(b"abc"))
    (True, 34)
    """
    return '"' + hashlib.blake2b(data, digest_size=16).hexdigest() + '"'


def params_key(params: dict[str, Any] | None) -> str:
    """Canonical, order-independent text of the parameters that shape a tile.

    >>> params_key({"to": None, "from": "2026-01-01", "category": ["b", "a"]})
    'category=a,b&from=2026-01-01'
    """
    if not params:
        return ""
    parts = []
    for k in sorted(params):
        v = params[k]
        if v is None:
            continue
        if isinstance(v, (list, tuple, set, frozenset)):
            v = ",".join(sorted(str(x) for x in v))
        parts.append(f"{k}={v}")
    return "&".join(parts)


@dataclass
class _Entry:
    data: bytes
    etag: str
    expires: float | None


class TileCache:
    """Tiles in a memory LRU (``size`` entries) and optionally in Redis.

    Parameters
    ----------
    size : int
        Entries kept in memory (least recently used are evicted).
    redis_url : str, optional
        ``redis://host:port/db``; when given, Redis is the shared second level.
    prefix : str
        Redis key prefix (tests use a unique one).
    """

    def __init__(
        self, size: int = 20_000, redis_url: str | None = None, prefix: str = "geogrid:"
    ) -> None:
        self.size = int(size)
        self.prefix = prefix
        self._lru: OrderedDict[Key, _Entry] = OrderedDict()
        self._index: dict[str, dict[int, dict[tuple[int, int], set[str]]]] = {}
        self._lock = threading.RLock()
        self._epoch: dict[str, int] = {}
        self.hits = self.misses = self.invalidated = 0
        self.redis: redis.Redis | None = (
            redis.Redis.from_url(redis_url, socket_timeout=2.0) if redis_url else None
        )

    # ------------------------------------------------------------------ keys
    def _rkey(self, layer: str, z: int, x: int, y: int, params: str) -> str:
        return f"{self.prefix}t:{layer}:{z}:{x}:{y}:{params}"

    def _ikey(self, layer: str, z: int) -> str:
        return f"{self.prefix}i:{layer}:{z}"

    # ------------------------------------------------------------------ read/write
    def token(self, layer: str) -> int:
        """Invalidation counter of ``layer``; pass it to :meth:`put`."""
        return self._epoch.get(layer, 0)

    def peek(
        self, layer: str, z: int, x: int, y: int, params: str = ""
    ) -> tuple[bytes, str] | None:
        """``(bytes, etag)`` from the memory level only (no I/O: safe on an event loop), or
        None. Counts a hit, never a miss (the caller falls back to :meth:`get`)."""
        key: Key = (layer, z, x, y, params)
        with self._lock:
            e = self._lru.get(key)
            if e is None or (e.expires is not None and e.expires < time.monotonic()):
                return None
            self._lru.move_to_end(key)
            self.hits += 1
            return e.data, e.etag

    def get(self, layer: str, z: int, x: int, y: int, params: str = "") -> tuple[bytes, str] | None:
        """``(bytes, etag)`` or None."""
        key: Key = (layer, z, x, y, params)
        now = time.monotonic()
        with self._lock:
            e = self._lru.get(key)
            if e is not None:
                if e.expires is not None and e.expires < now:
                    self._drop(key)
                else:
                    self._lru.move_to_end(key)
                    self.hits += 1
                    return e.data, e.etag
        if self.redis is not None:
            try:
                raw = cast(bytes | None, self.redis.get(self._rkey(layer, z, x, y, params)))
            except Exception as exc:  # a cache must not take the server down
                log.warning("redis get failed: %s", exc)
                raw = None
            if raw is not None:
                if not raw.startswith(b'"'):  # a stamp first
                    raw = raw.partition(b"\n")[2]
                tag, _, data = raw.partition(b"\n")
                self._store(key, _Entry(data, tag.decode(), None))
                self.hits += 1
                return data, tag.decode()
        self.misses += 1
        return None

    def put(
        self,
        layer: str,
        z: int,
        x: int,
        y: int,
        params: str,
        data: bytes,
        *,
        token: int | None = None,
        ttl: float | None = None,
        stamp: int | None = None,
    ) -> str:
        """Store tile bytes; returns the ETag. Skipped (tag still returned) when ``token``
        is older than the layer's last invalidation. ``stamp``: the change-log position
        the bytes reflect (see the module's "Stamps")."""
        tag = etag(data)
        if token is not None and token != self.token(layer):
            return tag
        key: Key = (layer, z, x, y, params)
        self._store(key, _Entry(data, tag, None if ttl is None else time.monotonic() + ttl))
        if self.redis is not None:
            try:
                pipe = self.redis.pipeline(transaction=False)
                rk = self._rkey(layer, z, x, y, params)
                head = b"" if stamp is None else b"%d\n" % stamp
                value = head + tag.encode() + b"\n" + data
                pipe.set(rk, value, ex=None if ttl is None else int(ttl))
                pipe.sadd(self._ikey(layer, z), f"{x}:{y}:{params}")
                pipe.execute()
            except Exception as exc:
                log.warning("redis put failed: %s", exc)
        return tag

    def _store(self, key: Key, entry: _Entry) -> None:
        layer, z, x, y, params = key
        with self._lock:
            self._lru[key] = entry
            self._lru.move_to_end(key)
            self._index.setdefault(layer, {}).setdefault(z, {}).setdefault((x, y), set()).add(
                params
            )
            while len(self._lru) > self.size:
                old, _ = self._lru.popitem(last=False)
                self._unindex(old)

    def _unindex(self, key: Key) -> None:
        layer, z, x, y, params = key
        byz = self._index.get(layer, {}).get(z)
        if byz is None:
            return
        s = byz.get((x, y))
        if s is not None:
            s.discard(params)
            if not s:
                del byz[(x, y)]

    def _drop(self, key: Key) -> None:
        if self._lru.pop(key, None) is not None:
            self._unindex(key)

    def __len__(self) -> int:
        return len(self._lru)

    def held(
        self,
        drops: Mapping[str, tuple[Sequence[Iterable[float]], Callable[[int], float] | None]],
        upto: Mapping[str, Sequence[int]] | None = None,
    ) -> list[tuple[Key, int]]:
        """The keys in memory that :meth:`invalidate_batch` of ``drops`` would drop (same
        bboxes and padding; no ``None`` bbox), the most recently used first — the tiles a
        map service can draw again before dropping the old ones (issue 12) — each with
        its bar: the last change (``upto``, per layer aligned with the bboxes, as for
        :meth:`invalidate_batch`) whose bbox meets it (0 without ``upto``)."""
        found: dict[Key, int] = {}
        with self._lock:
            for layer, (bboxes, pad) in drops.items():
                ids = list(upto[layer]) if upto is not None else [0] * len(bboxes)
                for z, cells in self._index.get(layer, {}).items():
                    for box, i in zip(bboxes, ids, strict=True):
                        for xy in _hits(cells.keys(), _padded(_bbox(box), pad, z), z):
                            for p in cells.get(xy, ()):
                                key = (layer, z, xy[0], xy[1], p)
                                found[key] = max(found.get(key, 0), int(i))
            if not found:
                return []
            return [(k, found[k]) for k in reversed(self._lru) if k in found]

    def stamped(self, key: Key, at_least: int) -> tuple[bytes, str] | None:
        """``(bytes, etag)`` of a tile another process stored in Redis with a stamp at or
        past ``at_least`` (its bytes already reflect that change), else None."""
        if self.redis is None:
            return None
        try:
            raw = cast(bytes | None, self.redis.get(self._rkey(*key)))
        except Exception as exc:
            log.warning("redis get failed: %s", exc)
            return None
        if raw is None or raw.startswith(b'"'):
            return None
        head, _, rest = raw.partition(b"\n")
        if not head.isdigit() or int(head) < at_least:
            return None
        tag, _, data = rest.partition(b"\n")
        return data, tag.decode()

    # ------------------------------------------------------------------ invalidation
    def invalidate(
        self,
        layers: Iterable[str],
        bbox: Iterable[float] | None,
        zooms: Sequence[int] | None = None,
        pad: Callable[[int], float] | None = None,
        *,
        upto: int | None = None,
    ) -> int:
        """Drop the cached tiles of ``layers`` whose bounds intersect the WGS84 ``bbox``
        (west, south, east, north) at every zoom (or only ``zooms``); ``bbox=None`` drops
        every tile of the layers. ``pad(z)`` widens the bbox by that many degrees at zoom
        ``z`` (tile buffers, kernel reach). ``upto``: the last change of the invalidation;
        Redis entries stamped at or past it are kept (module's "Stamps"). Returns the
        entries dropped (memory + Redis)."""
        return self.invalidate_many(layers, [bbox], zooms, pad, upto=upto)

    def invalidate_many(
        self,
        layers: Iterable[str],
        bboxes: Iterable[Iterable[float] | None],
        zooms: Sequence[int] | None = None,
        pad: Callable[[int], float] | None = None,
        *,
        upto: int | None = None,
    ) -> int:
        """:meth:`invalidate` for several bboxes at once (see :meth:`invalidate_batch`)."""
        boxes = list(bboxes)
        return self.invalidate_batch(
            {layer: (boxes, pad) for layer in set(layers)}, zooms, upto=upto
        )

    def invalidate_batch(
        self,
        drops: Mapping[str, tuple[Sequence[Iterable[float] | None], Callable[[int], float] | None]],
        zooms: Sequence[int] | None = None,
        *,
        upto: int | Mapping[str, Sequence[int]] | None = None,
    ) -> int:
        """Drop the cached tiles meeting any of the bboxes given per layer
        (``{layer: (bboxes, pad)}``, as :meth:`invalidate`) in one pass: Redis's tile index
        is read with one SCAN and one pipeline for the whole batch, not per change and
        layer (issue 10: at 200 reports/s the per-change SCAN/SMEMBERS round trips were
        most of a worker's time). ``upto`` as in :meth:`invalidate`, or per layer the change
        of each bbox (aligned with the bboxes): a Redis tile is kept when stamped at or past
        the last change whose bbox meets it. Returns the entries dropped (memory + Redis)."""
        todo: dict[str, tuple[list[BBox | None], Callable[[int], float] | None]] = {}
        bars: dict[str, list[int]] | None = None if upto is None else {}
        for layer, (bboxes, pad) in drops.items():
            boxes = [None if b is None else _bbox(b) for b in bboxes]
            if not boxes:
                continue
            if bars is not None and upto is not None:
                ids = [int(upto)] * len(boxes) if isinstance(upto, int) else list(upto[layer])
                if len(ids) != len(boxes):
                    raise ValueError(f"upto: {len(ids)} changes for {len(boxes)} bboxes")
                bars[layer] = [max(ids)] if any(b is None for b in boxes) else ids
            todo[layer] = ([None] if any(b is None for b in boxes) else boxes, pad)
        dropped = 0
        for layer, (boxes, pad) in todo.items():
            with self._lock:
                self._epoch[layer] = self._epoch.get(layer, 0) + 1
                byz = self._index.get(layer, {})
                for z in list(byz):
                    if zooms is not None and z not in zooms:
                        continue
                    cells = byz[z]
                    for box in boxes:
                        for xy in _hits(cells.keys(), _padded(box, pad, z), z):
                            for params in list(cells.get(xy, ())):
                                self._lru.pop((layer, z, xy[0], xy[1], params), None)
                                dropped += 1
                            cells.pop(xy, None)
        if self.redis is not None and todo:
            dropped += self._invalidate_redis(self.redis, todo, zooms, bars)
        self.invalidated += dropped
        return dropped

    def _invalidate_redis(
        self,
        r: redis.Redis,
        todo: Mapping[str, tuple[list[BBox | None], Callable[[int], float] | None]],
        zooms: Sequence[int] | None,
        bars: Mapping[str, Sequence[int]] | None = None,
    ) -> int:
        try:
            head = f"{self.prefix}i:".encode()
            index: list[tuple[str, int]] = []
            for k in r.scan_iter(match=f"{self.prefix}i:*", count=1000):
                layer, _, zs = k[len(head) :].decode().rpartition(":")
                if layer in todo and (zooms is None or int(zs) in zooms):
                    index.append((layer, int(zs)))
            if not index:
                return 0
            pipe = r.pipeline(transaction=False)
            for layer, z in index:
                pipe.smembers(self._ikey(layer, z))
            found = cast(list[set[bytes]], pipe.execute())
            pipe = r.pipeline(transaction=False)
            n = 0
            stale: list[str | int] = []  # with bars: (tile, index key, member, bar)
            for (layer, z), raw in zip(index, found, strict=True):
                boxes, pad = todo[layer]
                zbs = [_padded(b, pad, z) for b in boxes]
                every = any(zb is None for zb in zbs)
                ranges = [tile_range(zb, z) for zb in zbs if zb is not None]
                gone = []
                for m in (m.decode() for m in raw):
                    xs, ys, params = m.split(":", 2)
                    x, y = int(xs), int(ys)
                    if every or any(x0 <= x <= x1 and y0 <= y <= y1 for x0, y0, x1, y1 in ranges):
                        if bars is not None:
                            ids = bars[layer]
                            bar = max(
                                i
                                for zb, i in zip(zbs, ids, strict=True)
                                if zb is None or _hit((x, y), zb, z)
                            )
                            rk = self._rkey(layer, z, x, y, params)
                            stale += [rk, self._ikey(layer, z), m, bar]
                            continue
                        gone.append(m)
                        pipe.delete(self._rkey(layer, z, x, y, params))
                if gone:
                    pipe.srem(self._ikey(layer, z), *gone)
                    n += len(gone)
            if n:
                pipe.execute()
            if stale:
                n += int(cast(int, r.eval(_DROP_OLDER, 0, *stale)))
            return n
        except Exception as exc:
            log.warning("redis invalidation failed, flushing the prefix: %s", exc)
            return 0

    def clear(self) -> None:
        """Drop everything (memory and this prefix in Redis)."""
        with self._lock:
            for layer in list(self._index):
                self._epoch[layer] = self._epoch.get(layer, 0) + 1
            self._lru.clear()
            self._index.clear()
        if self.redis is not None:
            keys = list(self.redis.scan_iter(match=f"{self.prefix}*", count=1000))
            for i in range(0, len(keys), 500):
                self.redis.delete(*keys[i : i + 500])

    def close(self) -> None:
        """Drop the memory level and release the Redis connections (Redis keeps its keys:
        other processes share them)."""
        with self._lock:
            self._lru.clear()
            self._index.clear()
        if self.redis is not None:
            self.redis.close()


#: Lua: ARGV = (tile key, index key, member, bar) quadruples; deletes the tiles not
#: stamped at or past their bar (and their index members); returns how many
_DROP_OLDER = """
local n = 0
for i = 1, #ARGV, 4 do
  local head = redis.call('GETRANGE', ARGV[i], 0, 24)
  local stamp = tonumber(string.match(head, '^(%d+)\\n'))
  if stamp == nil or stamp < tonumber(ARGV[i + 3]) then
    redis.call('DEL', ARGV[i])
    redis.call('SREM', ARGV[i + 1], ARGV[i + 2])
    n = n + 1
  end
end
return n
"""


def _bbox(bbox: Iterable[float]) -> BBox:
    """``bbox`` as four floats (west, south, east, north)."""
    w, s, e, n = (float(v) for v in bbox)
    return w, s, e, n


def _padded(bbox: BBox | None, pad: Callable[[int], float] | None, z: int) -> BBox | None:
    """``bbox`` widened by ``pad(z)`` degrees (latitudes clamped to ±90)."""
    if bbox is None or pad is None:
        return bbox
    m = float(pad(z))
    return (bbox[0] - m, max(bbox[1] - m, -90.0), bbox[2] + m, min(bbox[3] + m, 90.0))


def _hit(xy: tuple[int, int], bbox: BBox | None, z: int) -> bool:
    """True when tile ``xy`` of zoom ``z`` meets ``bbox`` (None: everywhere)."""
    if bbox is None:
        return True
    x0, y0, x1, y1 = tile_range(bbox, z)
    return x0 <= xy[0] <= x1 and y0 <= xy[1] <= y1


def _hits(cells: Iterable[tuple[int, int]], bbox: BBox | None, z: int) -> list[tuple[int, int]]:
    """The tiles ``cells`` of zoom ``z`` that meet ``bbox`` (None: all of them)."""
    cells = list(cells)
    if bbox is None:
        return cells
    x0, y0, x1, y1 = tile_range(bbox, z)
    return [xy for xy in cells if x0 <= xy[0] <= x1 and y0 <= xy[1] <= y1]


class Memo:
    """A small thread-safe memo: ``get(key, build)`` builds once per key (LRU of
    ``size`` entries, optional TTL in seconds); :meth:`clear` on changes.

    >>> m = Memo(size=2)
    >>> m.get("a", lambda: 1), m.get("a", lambda: 2)
    (1, 1)
    """

    def __init__(self, size: int = 16, ttl: float | None = None) -> None:
        self.size = size
        self.ttl = ttl
        self._d: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}
        self._renewing: set[Hashable] = set()  # keys built again by get_or_stale
        self.generation = 0

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The value of ``key``, built by ``build()`` when missing or expired."""
        now = time.monotonic()
        with self._lock:
            hit = self._d.get(key)
            if hit is not None and (self.ttl is None or now - hit[0] < self.ttl):
                self._d.move_to_end(key)
                return hit[1]
            lock = self._building.setdefault(key, threading.Lock())
        with lock:  # one build per key at a time
            with self._lock:
                hit = self._d.get(key)
                if hit is not None and (self.ttl is None or now - hit[0] < self.ttl):
                    return hit[1]
                gen = self.generation
            value = build()
            with self._lock:
                if gen == self.generation:
                    self._d[key] = (time.monotonic(), value)
                    while len(self._d) > self.size:
                        self._d.popitem(last=False)
        return value

    def get_or_stale(
        self, key: Hashable, build: Callable[[], T], renew: Callable[[Callable[[], None]], None]
    ) -> T:
        """As :meth:`get`, but an *expired* value is returned as it is while ``renew(job)``
        builds it again once elsewhere (``renew`` runs ``job`` in a thread): a caller waits
        for a build only when nothing is held (stale-while-revalidate). A failed rebuild is
        logged and the stale value stays until the next try. What :meth:`clear` forgot is
        built at once, as by :meth:`get`.

        >>> m = Memo(ttl=0.0)  # every value expired as soon as it is stored
        >>> m.get("a", lambda: 1)
        1
        >>> m.get_or_stale("a", lambda: 2, renew=lambda job: job())  # renewed meanwhile
        1
        >>> m.get_or_stale("a", lambda: 3, renew=lambda job: None)  # the renewed value
        2
        """
        now = time.monotonic()
        with self._lock:
            hit = self._d.get(key)
            if hit is not None and (self.ttl is None or now - hit[0] < self.ttl):
                self._d.move_to_end(key)
                return cast(T, hit[1])
            renewing = hit is not None and key not in self._renewing
            if renewing:
                self._renewing.add(key)
            gen = self.generation
        if hit is None:
            return self.get(key, build)
        if renewing:
            try:
                renew(partial(self._renew, key, build, gen))
            except BaseException:
                with self._lock:
                    self._renewing.discard(key)
                raise
        return cast(T, hit[1])

    def _renew(self, key: Hashable, build: Callable[[], Any], gen: int) -> None:
        """The background build of :meth:`get_or_stale` (one build per key at a time, as
        :meth:`get`'s; not stored when :meth:`clear` or :meth:`discard` ran since it was
        asked for: generation ``gen``)."""
        try:
            with self._lock:
                lock = self._building.setdefault(key, threading.Lock())
            with lock:
                value = build()
            with self._lock:
                if gen == self.generation:
                    self._d[key] = (time.monotonic(), value)
                    self._d.move_to_end(key)
                    while len(self._d) > self.size:
                        self._d.popitem(last=False)
        except Exception as exc:  # the stale value stays; the next get_or_stale tries again
            log.warning("a background rebuild failed (%s); the previous value is kept", exc)
        finally:
            with self._lock:
                self._renewing.discard(key)

    def clear(self) -> None:
        """Forget every value (a build in progress is not stored)."""
        with self._lock:
            self._d.clear()
            self.generation += 1

    def peek(self, key: Hashable) -> Any | None:
        """The value of ``key`` if held and not expired, else None (never builds)."""
        with self._lock:
            hit = self._d.get(key)
            if hit is None or (self.ttl is not None and time.monotonic() - hit[0] >= self.ttl):
                return None
            return hit[1]

    def put(self, key: Hashable, value: Any) -> None:
        """Hold ``value`` for ``key`` (a refreshed value replacing the old one)."""
        with self._lock:
            self._d[key] = (time.monotonic(), value)
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)

    def discard(self, key: Hashable) -> None:
        """Forget ``key`` only (a build in progress, of any key, is not stored: it may
        have read what ``key`` held)."""
        with self._lock:
            self._d.pop(key, None)
            self.generation += 1

    def keys(self) -> list[Hashable]:
        """The keys held (oldest first)."""
        with self._lock:
            return list(self._d)


class ChangeWatcher(Generic[C]):
    """Polls for new change rows at most every ``interval`` seconds and hands them to
    ``apply`` (a callable taking the list of changes).

    ``fetch(last_id)`` returns ``(rows, new_last_id)``; rows are whatever ``apply``
    understands (e.g. :class:`geogrid.store.changes.Change`). The first call only
    records the current high-water mark (nothing cached can be older than the process).
    """

    def __init__(
        self,
        fetch: Callable[[int | None], tuple[list[C], int]],
        apply: Callable[[list[C]], None],
        interval: float = 0.5,
    ) -> None:
        self.fetch = fetch
        self.apply = apply
        self.interval = interval
        self.last_id: int | None = None
        self._next = 0.0
        self._lock = threading.Lock()

    def due(self) -> bool:
        """True when the next :meth:`poll` would query."""
        return time.monotonic() >= self._next

    def poll(self, force: bool = False) -> int:
        """Check now if the interval has passed (or ``force``); returns changes applied."""
        now = time.monotonic()
        if not force and now < self._next:
            return 0
        if not self._lock.acquire(blocking=force):
            return 0
        try:
            if not force and time.monotonic() < self._next:
                return 0
            rows, last = self.fetch(self.last_id)
            first = self.last_id is None
            self.last_id = last
            self._next = time.monotonic() + self.interval
            if rows and not first:
                self.apply(rows)
                return len(rows)
            return 0
        finally:
            self._lock.release()
