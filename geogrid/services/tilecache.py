"""Tile cache (in-memory LRU, optionally Redis) with bbox invalidation, and the small
memo caches of map serving (metrics and heat sources per filter).

Keys. A cached tile is addressed by ``(layer, z, x, y, params)`` where ``params`` is the
canonical query string of everything that changes the bytes (window, categories…). The
cache keeps an index ``layer → z → (x, y) → {params}`` so that a changed bbox invalidates
exactly the tiles whose bounds intersect it, at every zoom, whatever their parameters.

ETag. ``etag(bytes)`` is a BLAKE2b hash of the tile bytes, so equal bytes give equal tags
across processes and restarts (a tile rebuilt after an unrelated change keeps its tag).

Redis. With ``GEOGRID_REDIS_URL`` set, tiles also go to Redis under a key prefix
(``geogrid:`` by default) so that several server processes share them; each process still
keeps its memory LRU in front and invalidates both when it sees a change. Redis keys:

* ``{prefix}t:{layer}:{z}:{x}:{y}:{params}`` → ``etag \\n bytes`` (with the entry's TTL);
* ``{prefix}i:{layer}:{z}`` → set of ``x:y:params`` (the index used for invalidation).

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
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from geogrid.core.tiles import tile_range

__all__ = ["TileCache", "Memo", "ChangeWatcher", "etag", "params_key"]

log = logging.getLogger("geogrid.services.tilecache")


def etag(data: bytes) -> str:
    """Strong ETag (quoted) of tile bytes: 128-bit BLAKE2b, hex."""
    return '"' + hashlib.blake2b(data, digest_size=16).hexdigest() + '"'


def params_key(params: dict[str, Any] | None) -> str:
    """Canonical, order-independent text of the parameters that shape a tile."""
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

    def __init__(self, size: int = 20_000, redis_url: str | None = None, prefix: str = "geogrid:"):
        self.size = int(size)
        self.prefix = prefix
        self._lru: OrderedDict[tuple, _Entry] = OrderedDict()
        self._index: dict[str, dict[int, dict[tuple[int, int], set[str]]]] = {}
        self._lock = threading.RLock()
        self._epoch: dict[str, int] = {}
        self.hits = self.misses = self.invalidated = 0
        self.redis = None
        if redis_url:
            import redis  # noqa: PLC0415 -- optional

            self.redis = redis.Redis.from_url(redis_url, socket_timeout=2.0)

    # ------------------------------------------------------------------ keys
    def _rkey(self, layer: str, z: int, x: int, y: int, params: str) -> str:
        return f"{self.prefix}t:{layer}:{z}:{x}:{y}:{params}"

    def _ikey(self, layer: str, z: int) -> str:
        return f"{self.prefix}i:{layer}:{z}"

    # ------------------------------------------------------------------ read/write
    def token(self, layer: str) -> int:
        """Invalidation counter of ``layer``; pass it to :meth:`put`."""
        return self._epoch.get(layer, 0)

    def get(self, layer: str, z: int, x: int, y: int, params: str = "") -> tuple[bytes, str] | None:
        """``(bytes, etag)`` or None."""
        key = (layer, z, x, y, params)
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
                raw = self.redis.get(self._rkey(layer, z, x, y, params))
            except Exception as exc:  # a cache must not take the server down
                log.warning("redis get failed: %s", exc)
                raw = None
            if raw is not None:
                tag, _, data = raw.partition(b"\n")
                ttl = None
                self._store(key, _Entry(data, tag.decode(), ttl))
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
    ) -> str:
        """Store tile bytes; returns the ETag. Skipped (tag still returned) when ``token``
        is older than the layer's last invalidation."""
        tag = etag(data)
        if token is not None and token != self.token(layer):
            return tag
        key = (layer, z, x, y, params)
        self._store(key, _Entry(data, tag, None if ttl is None else time.monotonic() + ttl))
        if self.redis is not None:
            try:
                pipe = self.redis.pipeline(transaction=False)
                rk = self._rkey(layer, z, x, y, params)
                pipe.set(rk, tag.encode() + b"\n" + data, ex=None if ttl is None else int(ttl))
                pipe.sadd(self._ikey(layer, z), f"{x}:{y}:{params}")
                pipe.execute()
            except Exception as exc:
                log.warning("redis put failed: %s", exc)
        return tag

    def _store(self, key: tuple, entry: _Entry) -> None:
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

    def _unindex(self, key: tuple) -> None:
        layer, z, x, y, params = key
        byz = self._index.get(layer, {}).get(z)
        if byz is None:
            return
        s = byz.get((x, y))
        if s is not None:
            s.discard(params)
            if not s:
                del byz[(x, y)]

    def _drop(self, key: tuple) -> None:
        if self._lru.pop(key, None) is not None:
            self._unindex(key)

    def __len__(self) -> int:
        return len(self._lru)

    # ------------------------------------------------------------------ invalidation
    def invalidate(
        self,
        layers: Iterable[str],
        bbox: Iterable[float] | None,
        zooms: Iterable[int] | None = None,
        pad: Callable[[int], float] | None = None,
    ) -> int:
        """Drop the cached tiles of ``layers`` whose bounds intersect the WGS84 ``bbox``
        (west, south, east, north) at every zoom (or only ``zooms``); ``bbox=None`` drops
        every tile of the layers. ``pad(z)`` widens the bbox by that many degrees at zoom
        ``z`` (tile buffers, kernel reach). Returns the entries dropped (memory + Redis)."""
        bbox = None if bbox is None else tuple(float(v) for v in bbox)
        dropped = 0
        for layer in set(layers):
            with self._lock:
                self._epoch[layer] = self._epoch.get(layer, 0) + 1
                byz = self._index.get(layer, {})
                for z in list(byz):
                    if zooms is not None and z not in zooms:
                        continue
                    cells = byz[z]
                    for xy in _hits(cells.keys(), _padded(bbox, pad, z), z):
                        for params in list(cells.get(xy, ())):
                            self._lru.pop((layer, z, xy[0], xy[1], params), None)
                            dropped += 1
                        cells.pop(xy, None)
            if self.redis is not None:
                dropped += self._invalidate_redis(layer, bbox, zooms, pad)
        self.invalidated += dropped
        return dropped

    def _invalidate_redis(self, layer: str, bbox, zooms, pad) -> int:
        try:
            zs = [
                int(k.rsplit(b":", 1)[1])
                for k in self.redis.scan_iter(match=f"{self.prefix}i:{layer}:*", count=1000)
            ]
            n = 0
            for z in zs:
                if zooms is not None and z not in zooms:
                    continue
                ik = self._ikey(layer, z)
                members = [m.decode() for m in self.redis.smembers(ik)]
                zb = _padded(bbox, pad, z)
                gone = []
                for m in members:
                    xs, ys, params = m.split(":", 2)
                    if _hit((int(xs), int(ys)), zb, z):
                        gone.append(m)
                if gone:
                    pipe = self.redis.pipeline(transaction=False)
                    for m in gone:
                        xs, ys, params = m.split(":", 2)
                        pipe.delete(self._rkey(layer, z, int(xs), int(ys), params))
                    pipe.srem(ik, *gone)
                    pipe.execute()
                    n += len(gone)
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


def _padded(bbox, pad, z: int):
    if bbox is None or pad is None:
        return bbox
    m = float(pad(z))
    return (bbox[0] - m, max(bbox[1] - m, -90.0), bbox[2] + m, min(bbox[3] + m, 90.0))


def _hit(xy: tuple[int, int], bbox, z: int) -> bool:
    if bbox is None:
        return True
    x0, y0, x1, y1 = tile_range(bbox, z)
    return x0 <= xy[0] <= x1 and y0 <= xy[1] <= y1


def _hits(cells: Iterable[tuple[int, int]], bbox, z: int) -> list[tuple[int, int]]:
    cells = list(cells)
    if bbox is None:
        return cells
    x0, y0, x1, y1 = tile_range(bbox, z)
    return [xy for xy in cells if x0 <= xy[0] <= x1 and y0 <= xy[1] <= y1]


class Memo:
    """A small thread-safe memo: ``get(key, build)`` builds once per key (LRU of
    ``size`` entries, optional TTL in seconds); :meth:`clear` on changes."""

    def __init__(self, size: int = 16, ttl: float | None = None):
        self.size = size
        self.ttl = ttl
        self._d: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}
        self.generation = 0

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
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

    def clear(self) -> None:
        with self._lock:
            self._d.clear()
            self.generation += 1


class ChangeWatcher:
    """Polls for new change rows at most every ``interval`` seconds and hands them to
    ``apply`` (a callable taking the list of changes).

    ``fetch(last_id)`` returns ``(rows, new_last_id)``; rows are whatever ``apply``
    understands (see :func:`geogrid.store.changes.changes_since`). The first call only
    records the current high-water mark (nothing cached can be older than the process).
    """

    def __init__(
        self,
        fetch: Callable[[int | None], tuple[list, int]],
        apply: Callable[[list], None],
        interval: float = 0.5,
    ):
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


# ---------------------------------------------------------------------------- service


@dataclass(frozen=True)
class Window:
    """The filter of a map: incidents reported in ``[start, end)`` of ``categories``
    (None = all). ``key`` is its canonical text (part of every cache key)."""

    start: Any
    end: Any
    categories: tuple[str, ...] | None

    @property
    def key(self) -> str:
        return params_key(
            {
                "from": None if self.start is None else self.start.isoformat(),
                "to": None if self.end is None else self.end.isoformat(),
                "category": self.categories,
            }
        )


DEFAULT_DAYS = 30
METRIC_TTL = 300.0


class MapService:
    """Everything the map endpoints serve, with caches and change-driven invalidation.

    * :meth:`vector_tile` — MVT of a layer (units with the metrics of a window, incidents);
    * :meth:`heat_tile` — PNG heat-map tile of the incidents of a window;
    * :meth:`unit_metrics` — per-unit metrics of a window (memoised; used by OGC items too);
    * :meth:`poll` — applies new ``map_change`` rows (at most every ``poll_interval`` s).

    Metric tiles also expire after :data:`METRIC_TTL` seconds (overdue counts move with the
    clock); everything else lives until a change touches it or the LRU evicts it.
    """

    def __init__(
        self,
        engine,
        *,
        cache: TileCache | None = None,
        poll_interval: float = 0.5,
        metrics_ttl: float = METRIC_TTL,
    ):
        from geogrid.settings import get_settings  # noqa: PLC0415

        s = get_settings()
        self.engine = engine
        self.cache = cache if cache is not None else TileCache(s.tile_cache_size, s.redis_url)
        self.metrics = Memo(size=32, ttl=metrics_ttl)
        self.sources = Memo(size=8)
        self.static = Memo(size=16, ttl=60.0)
        self.metrics_ttl = metrics_ttl
        self._heat_scales: dict[tuple[str, int], float] = {}
        self.watcher = ChangeWatcher(self._fetch_changes, self._apply_changes, poll_interval)

    # ------------------------------------------------------------------ filters
    def window(self, start=None, end=None, categories=None, *, now=None) -> Window:
        """Normalise a window: default start = 00:00 UTC :data:`DEFAULT_DAYS` days ago
        (so the cache key rolls over daily), categories checked against the catalogue."""
        from datetime import UTC, datetime, timedelta  # noqa: PLC0415

        from geogrid.errors import InvalidInput  # noqa: PLC0415

        if start is None and end is None:
            today = (
                (now or datetime.now(UTC))
                .astimezone(UTC)
                .replace(hour=0, minute=0, second=0, microsecond=0)
            )
            start = today - timedelta(days=DEFAULT_DAYS)
        if start is not None and end is not None and start >= end:
            raise InvalidInput(
                "from/to", f"{start.isoformat()}/{end.isoformat()}", "from earlier than to"
            )
        cats = None
        if categories:
            cats = tuple(sorted({c.strip() for c in categories if c and c.strip()}))
            known = self.static.get("categories", self._categories)
            bad = [c for c in cats if c not in known]
            if bad:
                raise InvalidInput("category", ",".join(bad), ", ".join(sorted(known)))
        return Window(start, end, cats or None)

    def _categories(self) -> set[str]:
        from geogrid.store.incidents import category_table  # noqa: PLC0415

        with self.engine.connect() as conn:
            return set(category_table(conn).index)

    def bounds(self) -> tuple[float, float, float, float] | None:
        """WGS84 extent of the published districts (for TileJSON), memoised."""

        def build():
            from geogrid.store.features import collection_extent  # noqa: PLC0415

            with self.engine.connect() as conn:
                b = collection_extent(conn, "districts")["bbox"]
            return tuple(b) if b else None

        return self.static.get("bounds", build)

    # ------------------------------------------------------------------ metrics
    def unit_metrics(self, level: str, window: Window):
        """Metrics of the published units of ``level`` for ``window`` (a DataFrame with
        ``code``, the metric columns and the unit bbox ``xmin ymin xmax ymax``)."""
        return self.metrics.get((level, window.key), lambda: self._build_metrics(level, window))

    def _build_metrics(self, level: str, window: Window):
        import pandas as pd  # noqa: PLC0415

        from geogrid.services.metrics import load_metrics  # noqa: PLC0415

        gdf = load_metrics(
            self.engine,
            level,
            start=window.start,
            end=window.end,
            categories=list(window.categories) if window.categories else None,
        )
        b = gdf.geometry.bounds
        df = pd.DataFrame(gdf.drop(columns="geometry"))
        df[["xmin", "ymin", "xmax", "ymax"]] = b.to_numpy()
        return df.reset_index(drop=True)

    # ------------------------------------------------------------------ tiles
    def vector_tile(self, layer: str, z: int, x: int, y: int, window: Window) -> tuple[bytes, str]:
        """``(mvt bytes, etag)`` of ``layer`` tile ``z/x/y`` (cached)."""
        from geogrid.core.tiles import LAYER_LEVELS, check_tile, get_layer  # noqa: PLC0415

        get_layer(layer)
        check_tile(z, x, y)
        self.poll()
        hit = self.cache.get(layer, z, x, y, window.key)
        if hit is not None:
            return hit
        token = self.cache.token(layer)
        level = LAYER_LEVELS.get(layer)
        if level is not None:
            data = self._unit_tile(layer, level, z, x, y, window)
            ttl = self.metrics_ttl
        else:
            from geogrid.store.tiles import incident_tile  # noqa: PLC0415

            with self.engine.connect() as conn:
                data, _, _ = incident_tile(
                    conn, z, x, y, start=window.start, end=window.end, categories=window.categories
                )
            ttl = None
        tag = self.cache.put(layer, z, x, y, window.key, data, token=token, ttl=ttl)
        return data, tag

    def _unit_tile(self, layer, level, z, x, y, window) -> bytes:
        from geogrid.core.tiles import UNIT_METRIC_FIELDS  # noqa: PLC0415
        from geogrid.store.tiles import _padded_lonlat, unit_tile  # noqa: PLC0415

        df = self.unit_metrics(level, window)
        w, s, e, n = _padded_lonlat(z, x, y)
        sel = df[(df["xmax"] >= w) & (df["xmin"] <= e) & (df["ymax"] >= s) & (df["ymin"] <= n)]
        metrics = {"code": sel["code"].astype(str).tolist()}
        for f in UNIT_METRIC_FIELDS:
            metrics[f] = sel[f].tolist() if f in sel else None
        with self.engine.connect() as conn:
            data, _ = unit_tile(conn, level, layer, z, x, y, metrics=metrics)
        return data

    def heat_source(self, window: Window):
        def build():
            from geogrid.core.heatmap import HeatSource  # noqa: PLC0415
            from geogrid.store.tiles import incident_points  # noqa: PLC0415

            with self.engine.connect() as conn:
                lon, lat = incident_points(
                    conn, start=window.start, end=window.end, categories=window.categories
                )
            b = self.bounds()
            ref = 0.5 * (b[1] + b[3]) if b else None
            return HeatSource.from_lonlat(lon, lat, ref_lat=ref)

        return self.sources.get(window.key, build)

    def heat_scale(self, z: int, window: Window) -> float:
        """Top of the colour scale at zoom ``z`` (density per ground m²), quantised to
        quarter powers of two so that a small edit does not recolour every tile."""
        import math  # noqa: PLC0415

        from geogrid.core.heatmap import zoom_scale  # noqa: PLC0415
        from geogrid.core.tiles import heat_bandwidth_m  # noqa: PLC0415

        raw = zoom_scale(self.heat_source(window), z, heat_bandwidth_m(z))
        q = 0.0 if raw <= 0 else 2.0 ** (round(math.log2(raw) * 4.0) / 4.0)
        key = (window.key, z)
        old = self._heat_scales.get(key)
        self._heat_scales[key] = q
        if old is not None and old != q:  # the scale moved: every tile of this zoom is stale
            self.cache.invalidate(["heatmap"], None, zooms=[z])
        return q

    def heat_tile(self, z: int, x: int, y: int, window: Window) -> tuple[bytes, str]:
        """``(png bytes, etag)`` of heat tile ``z/x/y`` (256 px, cached)."""
        from geogrid.core.heatmap import render_tile, to_png  # noqa: PLC0415
        from geogrid.core.tiles import check_tile, heat_bandwidth_m  # noqa: PLC0415

        check_tile(z, x, y)
        self.poll()
        hit = self.cache.get("heatmap", z, x, y, window.key)
        if hit is not None:
            return hit
        vmax = self.heat_scale(z, window)  # may invalidate this zoom: take the token after
        token = self.cache.token("heatmap")
        d = render_tile(self.heat_source(window), z, x, y, bandwidth_m=heat_bandwidth_m(z))
        png = to_png(d, vmax=vmax)
        tag = self.cache.put("heatmap", z, x, y, window.key, png, token=token)
        return png, tag

    def cached(
        self, layer: str, z: int, x: int, y: int, window: Window
    ) -> tuple[bytes, str] | None:
        """A cached tile, without any I/O other than the cache, or None when it is not
        cached *or* a change poll is due (then call :meth:`vector_tile`/:meth:`heat_tile`,
        which poll first). Lets an async endpoint answer hits on the event loop."""
        if self.watcher.due() or self.cache.redis is not None:
            return None
        return self.cache.get(layer, z, x, y, window.key)

    # ------------------------------------------------------------------ changes
    def poll(self, force: bool = False) -> int:
        """Apply new change rows (throttled); returns how many were applied."""
        try:
            return self.watcher.poll(force)
        except Exception as exc:  # e.g. map_change missing in an old database
            log.warning("change poll failed: %s", exc)
            return 0

    def _fetch_changes(self, last_id):
        from geogrid.store.changes import changes_since  # noqa: PLC0415

        with self.engine.connect() as conn:
            return changes_since(conn, last_id)

    def _apply_changes(self, changes) -> None:
        from geogrid.core.tiles import (  # noqa: PLC0415
            DEPENDENT_LAYERS,
            LAYER_LEVELS,
            heat_margin_deg,
            tile_pad_deg,
        )
        from geogrid.store.changes import unit_extents  # noqa: PLC0415

        touched = {c.layer for c in changes}
        if touched & {"incidents", "boundaries"}:
            self.sources.clear()
        self.metrics.clear()
        self.static.clear()
        with self.engine.connect() as conn:
            for ch in changes:
                for dep in DEPENDENT_LAYERS.get(ch.layer, (ch.layer,)):
                    bbox = ch.bbox
                    if dep == "heatmap":
                        self.cache.invalidate(["heatmap"], bbox, pad=heat_margin_deg)
                        continue
                    if ch.layer == "incidents" and dep in LAYER_LEVELS and bbox is not None:
                        # metrics of the units containing the points change: their extent
                        bbox = unit_extents(conn, LAYER_LEVELS[dep], bbox)
                        if bbox is None:
                            continue
                    self.cache.invalidate([dep], bbox, pad=tile_pad_deg)
        log.info("applied %d map changes", len(changes))
