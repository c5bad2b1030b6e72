"""The map service: vector tiles, heat-map tiles and the per-unit metrics behind them, with
caches that follow the edits (the ``map_change`` log).

One :class:`MapService` lives on the application's context
(:class:`geogrid.services.context.AppContext`, created in the app's lifespan); a bench or a
test builds its own with ``MapService(engine, settings)``. Nothing here is process-wide: the
tile cache (memory LRU, optionally Redis, sized from :class:`geogrid.settings.Settings`),
the memos and the change watcher belong to the instance.

Windows. Every tile is drawn for a :class:`Window` of incidents (``[start, end)`` and a set
of categories); its canonical text is part of every cache key. ``from``/``to`` text is read
exactly as ``/metrics`` reads it (:func:`geogrid.core.timewindow.parse_time`: ISO 8601;
dates and naive times are local time of the city), so tiles and the choropleth agree.

Staleness. :meth:`MapService.poll` reads new ``map_change`` rows (at most every
``poll_interval`` s) and drops the cached tiles whose bounds meet the changed area, in the
changed layer and in the layers that depend on it
(:data:`geogrid.core.tiles.DEPENDENT_LAYERS`); metric tiles also expire after
:data:`METRIC_TTL` seconds (overdue counts move with the clock).

Writes (issue 12). A new or changed incident drops the incident and heat tiles around it
and the metric tiles of the units that contain it (their extents, per level) — never every
cache. The per-unit metrics frames held (one per level and window in use) are *refreshed*,
not cleared: coalesced, at most once per :data:`METRICS_REFRESH` s (and never using more
than a third of a core: the pause after a rebuild is at least twice its duration); the
unit tiles touched since the last refresh are dropped once the new frames are in (not
before: drawn from the same frame they would be the same bytes), so a metric tile shows
a write at most one refresh later. A change that arrives when no
refresh ran recently is applied at once (frames first, then the tiles). Heavy writes thus
cost one metrics rebuild per interval, not one per request. Boundary changes (and changes
of unknown extent) still clear everything.

Cached tiles. :meth:`MapService.cached` answers from the memory level of the tile cache
without I/O (so the API serves hits on its event loop), also when Redis is the shared
second level: every process applies the change log to its own memory level.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from geogrid.core.heatmap import HeatSource, render_tile, to_png, zoom_scale
from geogrid.core.tiles import (
    DEPENDENT_LAYERS,
    LAYER_LEVELS,
    MAX_ZOOM,
    UNIT_METRIC_FIELDS,
    check_tile,
    get_layer,
    heat_bandwidth_m,
    heat_margin_deg,
    heat_tilejson,
    padded_tile_bounds_lonlat,
    tile_pad_deg,
    tilejson,
)
from geogrid.core.timewindow import (
    MAX_WINDOW_DAYS,
    check_window_length,
    parse_time,
    round_window,
)
from geogrid.core.unit_boxes import UnitBoxes
from geogrid.errors import InvalidInput
from geogrid.services.limits import current_statement_timeout, statement_timeout
from geogrid.services.metrics import metrics_frame, refresh_metrics_frame
from geogrid.services.replica import ReadRouter
from geogrid.services.tilecache import ChangeWatcher, Memo, TileCache, params_key
from geogrid.settings import Settings
from geogrid.store.changes import Change, changes_since, unit_boxes
from geogrid.store.engine import autocommit
from geogrid.store.features import unit_extent
from geogrid.store.incidents import category_table
from geogrid.store.replica import primary_lsn
from geogrid.store.rollup import unit_codes_meeting
from geogrid.store.tiles import MetricLiterals, incident_points, incident_tile, unit_tile

__all__ = ["DEFAULT_DAYS", "METRIC_TTL", "MapService", "Window"]

log = logging.getLogger("geogrid.services.mapservice")

T = TypeVar("T")

#: length of the default window (days back from today's 00:00 UTC)
DEFAULT_DAYS = 30
#: seconds a metric tile (or a metrics frame) is kept at most
METRIC_TTL = 300.0
#: seconds between two change-log polls of a request while changes are pushed (issue 12)
PUSH_FALLBACK = 5.0
#: issue 12: shortest pause (s) between two coalesced refreshes of the metrics frames —
#: how long a unit (choropleth) tile may lag behind a report; incidents and heat tiles and
#: the live feed follow at once. Each refresh draws the busy unit tiles again (a z12 grid
#: tile is ~15 ms of PostGIS under load): at 40 reports/s every 2 s left cached tiles
#: 2.4× (one worker) and 3.6× (two) below read-only, every 5 s with the redraws 1.6-1.8×
#: and 1.6-1.7× (bench.tiles)
METRICS_REFRESH = 5.0
#: issue 12: seconds a metrics refresh spends at most drawing again the unit tiles it
#: changes (:meth:`MapService._redraw`); the tiles left over are dropped
REDRAW_S = 1.0

BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Window:
    """The filter of a map: incidents reported in ``[start, end)`` (aware datetimes; None
    is open) of ``categories`` (None = all). ``key`` is its canonical text (part of every
    cache key).

    >>> Window(datetime(2026, 3, 1, tzinfo=UTC), None, ("vendor",)).key
    'category=vendor&from=2026-03-01T00:00:00+00:00'
    """

    start: datetime | None
    end: datetime | None
    categories: tuple[str, ...] | None

    @property
    def key(self) -> str:
        """Canonical, order-independent text of the window."""
        return params_key(
            {
                "from": None if self.start is None else self.start.isoformat(),
                "to": None if self.end is None else self.end.isoformat(),
                "category": self.categories,
            }
        )


class MapService:
    """Everything the map endpoints serve, with caches and change-driven invalidation.

    * :meth:`vector_tile` — MVT of a layer (units with the metrics of a window, incidents);
    * :meth:`heat_tile` — PNG heat-map tile of the incidents of a window;
    * :meth:`unit_metrics` / :meth:`metrics_by_code` — per-unit metrics of a window
      (memoised; OGC items use them too);
    * :meth:`poll` — applies new ``map_change`` rows (at most every ``poll_interval`` s).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The database.
    settings : Settings
        ``tile_cache_size`` (entries in memory), ``redis_url`` (optional shared level) and
        ``city.timezone`` (how dates of ``from``/``to`` are read).
    cache : TileCache, optional
        A tile cache of your own (default: one built from ``settings``).
    poll_interval : float
        Seconds between two reads of the change log.
    metrics_ttl : float
        Seconds a metric tile or metrics frame is kept at most.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        cache: TileCache | None = None,
        poll_interval: float = 0.5,
        metrics_ttl: float = METRIC_TTL,
        reads: ReadRouter | None = None,
    ) -> None:
        self.engine = engine
        # issue 12 (replicas): renders and frames read here; the change log and the
        # primary's WAL position of its last poll with changes (a render must not come
        # from a replica older than the invalidation that dropped the tile) are read on
        # the primary
        self.reads = reads
        self._seen_lsn: int | None = None
        self.settings = settings
        self.cache = (
            cache if cache is not None else TileCache(settings.tile_cache_size, settings.redis_url)
        )
        self.metrics = Memo(size=32, ttl=metrics_ttl)
        self.sources = Memo(size=8)
        self.static = Memo(size=16, ttl=60.0)
        # issue 10: the published units' boxes change only with a publish, which clears
        # them (a ``boundaries`` change); kept 10 min otherwise. With the minute of
        # ``static`` every worker read them again at once (a 40-50 ms query and four
        # STRtrees of 9,000 boxes) in the middle of the reports every minute
        self.boxes = Memo(size=1, ttl=600.0)
        self.metrics_ttl = metrics_ttl
        self._heat_scales: dict[tuple[str, int], float] = {}
        self.watcher: ChangeWatcher[Change] = ChangeWatcher(
            self._fetch_changes, self._apply_changes, poll_interval
        )
        self._poll_interval = poll_interval
        # issue 12: coalesced metrics refresh (see the module's "Writes")
        # (unit layer, extent, change id) awaiting a refresh
        self._pending: list[tuple[str, BBox, int]] = []
        # issue 12 (ROLLUP): where incidents changed since the last refresh (their bboxes):
        # the refresh recomputes only the units there (``refresh_metrics_frame``)
        self._dirty: list[BBox] = []
        # issue 12: the last change in ``_dirty`` (the stamp of the tiles drawn after the
        # refresh: tilecache "Stamps")
        self._dirty_upto = 0
        self._refresh_lock = threading.Lock()  # one refresh at a time
        self._pending_lock = threading.Lock()
        self._next_refresh = 0.0  # monotonic time before which a refresh waits
        self._timer: threading.Timer | None = None
        self._closed = False
        #: coalesced metrics refreshes completed (frames rebuilt, their tiles dropped)
        self.refreshes = 0

    def close(self) -> None:
        """Drop the caches held in memory and release the cache's Redis connections."""
        self._closed = True
        with self._pending_lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None
        self.metrics.clear()
        self.sources.clear()
        self.static.clear()
        self.boxes.clear()
        self.cache.close()

    def read_engine(self, after: int | None = None) -> Engine:
        """The engine of a render or a frame: the replica when it has replayed the last
        change applied to the caches and the primary's WAL position ``after`` (a caller's
        own last write; issue 12), else the primary."""
        if self.reads is None:
            return self.engine
        seen = self._seen_lsn
        need = after if seen is None else seen if after is None else max(seen, after)
        return self.reads.engine(need)

    # ------------------------------------------------------------------ filters
    def window(
        self,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        categories: Iterable[str] | str | None = None,
        *,
        now: datetime | None = None,
    ) -> Window:
        """Normalise a window.

        Parameters
        ----------
        start, end : datetime or str, optional
            ``[start, end)``; text is ISO 8601 (dates and naive times are local time of the
            city). Both None: from 00:00 UTC :data:`DEFAULT_DAYS` days ago (so the cache key
            rolls over daily), open end.
        categories : iterable of str or str, optional
            Category codes (text: comma-separated), checked against the catalogue.
        now : datetime, optional
            The clock (for tests).

        Raises
        ------
        InvalidInput
            ``from``/``to`` unreadable or ``from`` not earlier than ``to``; unknown
            ``category``.
        """
        tz = self.settings.city.timezone
        t0 = parse_time(start, "from", tz)
        t1 = parse_time(end, "to", tz)
        if t0 is None and t1 is None:
            today = (
                (now or datetime.now(UTC))
                .astimezone(UTC)
                .replace(hour=0, minute=0, second=0, microsecond=0)
            )
            t0 = today - timedelta(days=DEFAULT_DAYS)
        if t0 is not None and t1 is not None and t0 >= t1:
            raise InvalidInput(
                "from/to", f"{t0.isoformat()}/{t1.isoformat()}", "from earlier than to"
            )
        if t0 is not None:  # bounded length; whole hours, so cache keys change hourly
            check_window_length(t0, t1 or (now or datetime.now(UTC)), MAX_WINDOW_DAYS)
        t0, t1 = round_window(t0, t1)
        cats = None
        if categories:
            items = categories.split(",") if isinstance(categories, str) else categories
            cats = tuple(sorted({c.strip() for c in items if c and c.strip()}))
            known = self.categories()
            bad = [c for c in cats if c not in known]
            if bad:
                raise InvalidInput("category", ",".join(bad), ", ".join(sorted(known)))
        return Window(t0, t1, cats or None)

    def categories(self) -> frozenset[str]:
        """Codes of the active incident categories (memoised for a minute)."""
        return self.static.get("categories", self._categories)

    def _categories(self) -> frozenset[str]:
        with self.read_engine().connect() as conn:
            return frozenset(str(c) for c in category_table(conn).index)

    def bounds(self) -> BBox | None:
        """WGS84 extent of the published districts (for TileJSON), memoised."""

        def build() -> BBox | None:
            with self.read_engine().connect() as conn:
                return unit_extent(conn, "district").bbox

        return self.static.get("bounds", build)

    @property
    def attribution(self) -> str:
        """Credit line of the tiles: ``geogrid`` and the city's name when configured."""
        name = self.settings.city.name_en
        return f"geogrid · {name}" if name else "geogrid"

    def layer_tilejson(
        self,
        layer: str,
        tiles_url: str,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        categories: Iterable[str] | str | None = None,
    ) -> dict[str, Any]:
        """TileJSON 3.0.0 of vector layer ``layer`` whose tiles are at ``tiles_url`` (a
        ``{z}/{x}/{y}`` template); the window is checked now rather than on every tile."""
        get_layer(layer)
        self.window(start, end, categories)
        return tilejson(
            layer, tiles_url, bounds=self.bounds(), maxzoom=MAX_ZOOM, attribution=self.attribution
        )

    def heat_tilejson(
        self,
        tiles_url: str,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        categories: Iterable[str] | str | None = None,
    ) -> dict[str, Any]:
        """TileJSON 3.0.0 of the heat-map tiles at ``tiles_url`` (window checked now)."""
        self.window(start, end, categories)
        return heat_tilejson(tiles_url, bounds=self.bounds(), attribution=self.attribution)

    # ------------------------------------------------------------------ metrics
    def unit_metrics(self, level: str, window: Window) -> pd.DataFrame:
        """Metrics of the published units of ``level`` for ``window``: a DataFrame with
        ``code``, the metric columns and the unit bbox ``xmin ymin xmax ymax`` (WGS84).

        Built once and held :attr:`metrics_ttl` seconds; an expired frame is still
        answered while one thread builds it again (a province's grid frame takes ~20 s:
        only the first request of a level and window waits for it)."""
        return self.metrics.get_or_stale(
            ("frame", level, window), lambda: self._build_metrics(level, window), self._renew
        )

    def _renew(self, job: Callable[[], None]) -> None:
        """Run a frame's rebuild (:meth:`Memo.get_or_stale`) in a thread of its own."""
        if not self._closed:
            threading.Thread(target=job, name="geogrid-metrics-renew", daemon=True).start()

    def _derived(
        self, name: str, level: str, window: Window, make: Callable[[pd.DataFrame], T]
    ) -> T:
        """``make(frame)`` of the current :meth:`unit_metrics` frame, memoised with the frame
        it was made from: a frame built again (renewed, refreshed) is a new object, so
        what was derived from the one before is made again, never served with it."""
        frame = self.unit_metrics(level, window)
        key = (name, level, window)
        held = self.metrics.peek(key)
        if held is not None and held[0] is frame:
            return cast(T, held[1])
        value = make(frame)
        self.metrics.put(key, (frame, value))
        return value

    def metrics_by_code(self, level: str, window: Window) -> dict[str, dict[str, Any]]:
        """:meth:`unit_metrics` as ``code → {metric: value}`` (metric columns only: no
        names, populations or bboxes), memoised with the frame."""

        def build(df: pd.DataFrame) -> dict[str, dict[str, Any]]:
            cols = [c for c in df.columns if c not in _NOT_METRICS]
            recs = df[cols].to_dict("records")
            return {
                str(c): {str(k): v for k, v in r.items()}
                for c, r in zip(df["code"], recs, strict=True)
            }

        return self._derived("by_code", level, window, build)

    def _frame_timeout_ms(self) -> int | None:
        """The statement budget of a frame's build (and a heat source's): a frame is shared
        by every request of its level and window (built once, see :meth:`unit_metrics`),
        so a request that builds it has at least the *standard* class's budget, not its
        own — a map tile's cheap 5 s ended a province's grid frame (~20 s) in a 503 for
        every tile. Without a request's budget (a thread, the CLI) none is set, as
        before."""
        current = current_statement_timeout()
        if current is None:
            return None
        return max(current, int(self.settings.statement_timeouts.get("standard", current)))

    def _build_metrics(self, level: str, window: Window) -> pd.DataFrame:
        upto = self.watcher.last_id or 0  # committed before the build reads: included
        with statement_timeout(self._frame_timeout_ms()):
            gdf = metrics_frame(
                self.read_engine(),
                level,
                start=window.start,
                end=window.end,
                categories=list(window.categories) if window.categories else None,
            )
        b = gdf.geometry.bounds
        df = pd.DataFrame(gdf.drop(columns="geometry"))
        df[["xmin", "ymin", "xmax", "ymax"]] = b.to_numpy()
        df = df.reset_index(drop=True)
        df.attrs = {str(k): v for k, v in gdf.attrs.items()}  # what the refresh needs
        df.attrs["built"] = time.monotonic()  # partial refreshes keep it: see below
        df.attrs["upto"] = upto
        return df

    #: a frame is refreshed unit by unit when the changes touch at most this share of it
    PARTIAL_REFRESH_SHARE = 0.1

    def _refreshed_metrics(
        self, level: str, window: Window, dirty: list[BBox], codes_of: dict[str, list[str]]
    ) -> pd.DataFrame:
        """The frame of ``level``/``window`` after the incident changes in ``dirty``: only
        the units they touch are recomputed (issue 12 (ROLLUP): a report costs the rows of
        its grid, not a rebuild of every unit) when the frame is held and the touched
        units are few; else rebuilt."""
        old = self.metrics.peek(("frame", level, window))
        # the units a refresh skips keep the state of the last full build (overdue moves
        # with the clock): a frame older than half the metrics TTL is rebuilt in full
        ttl = self.metrics.ttl
        fresh = old is not None and (
            ttl is None or time.monotonic() - float(old.attrs.get("built", 0.0)) < ttl / 2
        )
        if old is not None and fresh and not dirty:
            # nothing changed since its last refresh (an earlier one took the changes
            # this one was scheduled for): kept — it was rebuilt in full (issue 12)
            return old
        if old is not None and fresh and dirty and "version_id" in old.attrs:
            engine = self.read_engine()
            if level not in codes_of:
                codes_of[level] = unit_codes_meeting(
                    engine, int(old.attrs["version_id"]), level, dirty
                )
            codes = codes_of[level]
            if len(codes) <= int(self.PARTIAL_REFRESH_SHARE * len(old)):
                # an open window ("up to now") grows to now: the reports are in it
                grow = datetime.now(UTC) if window.end is None else None
                new = refresh_metrics_frame(
                    engine, old, codes, end=grow, tz=self.settings.city.timezone
                )
                if new is not None:
                    return new
        return self._build_metrics(level, window)

    # ------------------------------------------------------------------ tiles
    def vector_tile(self, layer: str, z: int, x: int, y: int, window: Window) -> tuple[bytes, str]:
        """``(mvt bytes, etag)`` of ``layer`` tile ``z/x/y`` (cached)."""
        get_layer(layer)
        check_tile(z, x, y)
        self.poll()
        hit = self.cache.get(layer, z, x, y, window.key)
        if hit is not None:
            return hit
        token = self.cache.token(layer)
        stamp = self.watcher.last_id  # the changes applied before the render (issue 12)
        level = LAYER_LEVELS.get(layer)
        ttl: float | None
        if level is not None:
            data, stamp = self._unit_tile(layer, level, z, x, y, window)
            ttl = self.metrics_ttl
        else:
            with autocommit(self.read_engine()) as conn:  # no BEGIN/ROLLBACK round trips
                data, _, _ = incident_tile(
                    conn, z, x, y, start=window.start, end=window.end, categories=window.categories
                )
            ttl = None
        tag = self.cache.put(
            layer, z, x, y, window.key, data, token=token, ttl=ttl, stamp=stamp or None
        )
        return data, tag

    def tile_metrics(
        self, level: str, window: Window, z: int, x: int, y: int
    ) -> dict[str, list[Any] | None]:
        """``code`` and the :data:`~geogrid.core.tiles.UNIT_METRIC_FIELDS` of the units of
        ``level`` whose bbox meets tile ``z/x/y`` (padded by the tile buffer): the arrays
        :func:`geogrid.store.tiles.unit_tile` joins. Selected with NumPy over the frame's
        bboxes (a pandas selection per tile cost more than the tile's SQL: bench.tiles)."""
        return self._metric_index(level, window).select(padded_tile_bounds_lonlat(z, x, y))

    def _metric_index(self, level: str, window: Window) -> _MetricIndex:
        return self._derived("index", level, window, _MetricIndex.of)

    def _unit_tile(
        self, layer: str, level: str, z: int, x: int, y: int, window: Window
    ) -> tuple[bytes, int]:
        """The tile's bytes and the change-log position its metrics reflect."""
        idx = self._metric_index(level, window)
        literals = idx.literals(padded_tile_bounds_lonlat(z, x, y))
        # autocommit: one statement, no BEGIN/ROLLBACK round trips (a tenth of a z14 tile)
        with autocommit(self.read_engine()) as conn:
            data, _ = unit_tile(conn, level, layer, z, x, y, literals=literals)
        return data, idx.upto

    def heat_source(self, window: Window) -> HeatSource:
        """The incident points of ``window`` prepared for heat rendering (memoised)."""

        def build() -> HeatSource:
            # shared by every heat tile of the window, as a frame: the standard budget
            with statement_timeout(self._frame_timeout_ms()), self.read_engine().connect() as conn:
                lon, lat = incident_points(
                    conn, start=window.start, end=window.end, categories=window.categories
                )
            b = self.bounds()
            ref = 0.5 * (b[1] + b[3]) if b else None
            return HeatSource.from_lonlat(lon, lat, ref_lat=ref)

        return self.sources.get(window.key, build)

    def heat_bandwidth_m(self, z: int) -> float:
        """The heat kernel's bandwidth (ground metres) at zoom ``z`` for this city."""
        return heat_bandwidth_m(z, self._ref_lat())

    def _ref_lat(self) -> float:
        """The latitude (degrees) at which heat bandwidths are ground metres: the middle of
        the published districts, else the configured map centre, else the equator."""
        b = self.bounds()
        if b:
            return 0.5 * (b[1] + b[3])
        center = self.settings.city.center
        return float(center[1]) if center else 0.0

    def heat_scale(self, z: int, window: Window) -> float:
        """Top of the colour scale at zoom ``z`` (density per ground m²), quantised to
        quarter powers of two so that a small edit does not recolour every tile."""
        raw = zoom_scale(self.heat_source(window), z, self.heat_bandwidth_m(z))
        q = 0.0 if raw <= 0 else 2.0 ** (round(math.log2(raw) * 4.0) / 4.0)
        key = (window.key, z)
        old = self._heat_scales.get(key)
        self._heat_scales[key] = q
        if old is not None and old != q:  # the scale moved: every tile of this zoom is stale
            self.cache.invalidate(["heatmap"], None, zooms=[z])
        return q

    def heat_tile(self, z: int, x: int, y: int, window: Window) -> tuple[bytes, str]:
        """``(png bytes, etag)`` of heat tile ``z/x/y`` (256 px, cached)."""
        check_tile(z, x, y)
        self.poll()
        hit = self.cache.get("heatmap", z, x, y, window.key)
        if hit is not None:
            return hit
        vmax = self.heat_scale(z, window)  # may invalidate this zoom: take the token after
        token = self.cache.token("heatmap")
        stamp = self.watcher.last_id
        d = render_tile(self.heat_source(window), z, x, y, bandwidth_m=self.heat_bandwidth_m(z))
        png = to_png(d, vmax=vmax)
        tag = self.cache.put("heatmap", z, x, y, window.key, png, token=token, stamp=stamp)
        return png, tag

    def cached(
        self, layer: str, z: int, x: int, y: int, window: Window
    ) -> tuple[bytes, str] | None:
        """A cached tile from the memory level, without any I/O, or None when it is not
        there or a change poll is due (then call :meth:`vector_tile`/:meth:`heat_tile`,
        which poll first and read Redis). Lets an async endpoint answer hits on the event
        loop; with Redis too, since every process applies the changes to its memory."""
        if self.watcher.due():
            return None
        return self.cache.peek(layer, z, x, y, window.key)

    # ------------------------------------------------------------------ changes
    def set_push(self, up: bool) -> None:
        """Issue 12 (live): while a change listener pushes notifications
        (:class:`geogrid.services.live.LiveHub` calls :meth:`poll` with ``force`` on each),
        requests poll the change log only every :data:`PUSH_FALLBACK` s as a fallback;
        when the listener is down, at the normal ``poll_interval`` again."""
        self.watcher.interval = (
            max(self._poll_interval, PUSH_FALLBACK) if up else self._poll_interval
        )

    def poll(self, force: bool = False) -> int:
        """Apply new change rows (throttled unless ``force``); returns how many were applied."""
        try:
            return self.watcher.poll(force)
        except Exception as exc:  # e.g. map_change missing in an old database
            log.warning("change poll failed: %s", exc)
            return 0

    def _fetch_changes(self, last_id: int | None) -> tuple[list[Change], int]:
        with self.engine.connect() as conn:
            found = changes_since(conn, last_id)
            if found[0] and self.reads is not None and self.reads.enabled:
                self._seen_lsn = primary_lsn(conn)  # ≥ the commit of every change read
            return found

    def _apply_changes(self, changes: list[Change]) -> None:
        touched = {c.layer for c in changes}
        last = max(c.id for c in changes)
        with self._pending_lock:  # issue 12 (ROLLUP): where the next refresh must look
            self._dirty += [c.bbox for c in changes if c.bbox is not None]
            self._dirty_upto = max(self._dirty_upto, last)
        everything = bool(touched - {"incidents"}) or any(c.bbox is None for c in changes)
        if touched & {"incidents", "boundaries"}:
            self.sources.clear()
        if everything:  # boundaries, unit layers or unknown extents: as before, all of it
            self.metrics.clear()
            self.static.clear()
            self.boxes.clear()
            self._invalidate(changes)
            log.info("applied %d map changes", len(changes))
            return
        # incidents only: the metrics frames are refreshed (coalesced), not cleared;
        # incident and heat tiles now, unit tiles with the next refresh (now when due)
        pending: list[tuple[str, BBox, int]] = []
        self._invalidate(changes, pending=pending)
        with self._pending_lock:
            self._pending += pending
        if self._refresh_due():
            self._refresh_pending()
        else:
            self._schedule_refresh()
        log.info("applied %d map changes", len(changes))

    def _invalidate(
        self,
        changes: list[Change],
        *,
        units: bool = True,
        others: bool = True,
        pending: list[tuple[str, BBox, int]] | None = None,
    ) -> None:
        """Drop the tiles the changes touch: of the unit layers (``units``) and of the
        others (``others``: incidents, heat map). With ``pending``, the extents of the
        unit tiles incidents touch go there instead (dropped after the next metrics
        refresh: before it, such a tile would be drawn again from the same frame, the
        same bytes — issue 12, a render per touched tile and report saved). Every bbox
        dropped carries its change's id (Redis keeps the tiles another worker drew having
        applied it: tilecache "Stamps")."""
        # issue 10 (REPORTS): the whole batch at once — one extent query per unit level and
        # one pass over each layer's tile index, not one of each per change (at 200
        # reports/s the per-change queries and Redis scans were most of a worker's time)
        drop: dict[str, list[tuple[BBox | None, int]]] = {}
        points: dict[str, list[BBox]] = {}
        for ch in changes:
            for dep in DEPENDENT_LAYERS.get(ch.layer, (ch.layer,)):
                if (units if dep in LAYER_LEVELS else others) is False:
                    continue
                if ch.layer == "incidents" and dep in LAYER_LEVELS and ch.bbox is not None:
                    # metrics of the units containing the points change: their extent
                    points.setdefault(dep, []).append(ch.bbox)
                else:
                    drop.setdefault(dep, []).append((ch.bbox, ch.id))
        if points:
            boxes = list({b for bs in points.values() for b in bs})
            extents = self.unit_boxes().extents([LAYER_LEVELS[d] for d in points], boxes)
            located = [(c.bbox, c.id) for c in changes if c.bbox is not None]
            last = max(c.id for c in changes)
            for dep in points:
                # an extent's change: the last whose point it holds (extents are matched
                # by bbox, so this is the same test; the index's rounded boxes may match a
                # hair more: then the batch's last)
                found = [
                    (e, max((i for b, i in located if _meets(b, e)), default=last))
                    for e in extents[LAYER_LEVELS[dep]]
                ]
                if pending is not None:
                    pending += [(dep, e, i) for e, i in found]
                else:
                    drop.setdefault(dep, []).extend(found)
        self.cache.invalidate_batch(
            {
                dep: ([b for b, _ in got], heat_margin_deg if dep == "heatmap" else tile_pad_deg)
                for dep, got in drop.items()
            },
            upto={dep: [i for _, i in got] for dep, got in drop.items()},
        )

    def unit_boxes(self) -> UnitBoxes:
        """The published units' boxes of every unit layer, indexed (issue 10: the extents a
        batch of incidents touches, in memory — see :mod:`geogrid.core.unit_boxes`); read
        again after a boundary change (``boxes`` is cleared) or 10 minutes."""

        def build() -> UnitBoxes:
            with self.engine.connect() as conn:
                return UnitBoxes(unit_boxes(conn, sorted(set(LAYER_LEVELS.values()))))

        return self.boxes.get("unit_boxes", build)

    def _refresh_due(self) -> bool:
        return time.monotonic() >= self._next_refresh and not self._refresh_lock.locked()

    def _schedule_refresh(self) -> None:
        """Run :meth:`_refresh_pending` once the pause after the last refresh is over."""
        with self._pending_lock:
            if self._closed or (self._timer is not None and self._timer.is_alive()):
                return
            delay = max(self._next_refresh - time.monotonic(), 0.0)
            self._timer = threading.Timer(delay, self._refresh_pending)
            self._timer.daemon = True
            self._timer.start()

    def _refresh_pending(self) -> None:
        with self._pending_lock:
            self._timer = None
            pending, self._pending = self._pending, []
        if self._closed:
            return
        try:
            self._refresh_frames()
        except Exception as exc:  # the frames could not be rebuilt: drop them instead
            log.warning("metrics refresh failed (%s); frames dropped", exc)
            self.metrics.clear()
        by_layer: dict[str, list[BBox]] = {}
        ids: dict[str, list[int]] = {}
        for layer, bbox, i in pending:
            by_layer.setdefault(layer, []).append(bbox)
            ids.setdefault(layer, []).append(i)
        drops = {k: (v, tile_pad_deg) for k, v in by_layer.items()}
        tokens = {layer: self.cache.token(layer) for layer in drops}
        redrawn = self._redraw(drops, ids)
        self.cache.invalidate_batch(drops, upto=ids)
        for (layer, z, x, y, params), data, stamp in redrawn:
            # put back unless another invalidation of the layer (a publish…) came between
            # the render and here (this one counts one)
            self.cache.put(
                layer,
                z,
                x,
                y,
                params,
                data,
                token=tokens[layer] + 1,
                ttl=self.metrics_ttl,
                stamp=stamp or None,
            )
        self.refreshes += 1
        with self._pending_lock:
            again = bool(self._pending)
        if again:
            self._schedule_refresh()

    def _redraw(
        self, drops: dict[str, tuple[list[BBox], Any]], ids: dict[str, list[int]]
    ) -> list[tuple[tuple[str, int, int, int, str], bytes, int]]:
        """Issue 12: the unit tiles in memory that a refresh's drops would remove, drawn
        again from the refreshed frames first (the most recently used first, for at most
        :data:`REDRAW_S` seconds), so that they are replaced rather than missing. Under a
        stream of reports each refresh emptied the busy part of the map at once, and every
        client's next request waited for the same renders (cached tiles at 40 reports/s:
        2.4× fewer than read-only with one worker, 3.6× with two). A tile another worker
        already drew past the changes that meet it (its bar: ``ids``, the change of each
        bbox of ``drops``) is taken from Redis — not past every change this process saw,
        which at 40 reports/s across a city another worker's refresh never was. The rest
        are dropped as before."""
        windows = {
            k[2].key: k[2] for k in self.metrics.keys() if isinstance(k, tuple) and k[0] == "frame"
        }
        out: list[tuple[tuple[str, int, int, int, str], bytes, int]] = []
        deadline = time.monotonic() + REDRAW_S
        for key, bar in self.cache.held(drops, ids):
            layer, z, x, y, params = key
            level, window = LAYER_LEVELS.get(layer), windows.get(params)
            if level is None or window is None:
                continue
            if time.monotonic() > deadline:
                break
            try:
                shared = self.cache.stamped(key, bar) if bar else None
                if shared is not None:
                    out.append((key, shared[0], bar))
                else:
                    data, stamp = self._unit_tile(layer, level, z, x, y, window)
                    out.append((key, data, stamp))
            except Exception as exc:  # dropped instead
                log.warning("redraw of %s failed: %s", key, exc)
        return out

    def _refresh_frames(self) -> None:
        """Rebuild every metrics frame held (each level and window in use) and replace it;
        what is derived from a frame (codes, tile index) is dropped with it. The next
        refresh waits at least :data:`METRICS_REFRESH` s and twice this one's duration."""
        with self._refresh_lock:
            t0 = time.monotonic()
            frames = [k for k in self.metrics.keys() if isinstance(k, tuple) and k[0] == "frame"]
            with self._pending_lock:
                dirty, self._dirty = self._dirty, []
                upto, self._dirty_upto = self._dirty_upto, 0
            codes_of: dict[str, list[str]] = {}  # touched units per level, one query each
            for key in frames:
                _, level, window = key
                df = self._refreshed_metrics(level, window, dirty, codes_of)
                if int(df.attrs.get("upto", 0)) < upto:  # the changes it has folded in
                    df.attrs = {**df.attrs, "upto": upto}
                self.metrics.put(key, df)
                self.metrics.discard(("index", level, window))
                self.metrics.discard(("by_code", level, window))
            took = time.monotonic() - t0
            self._next_refresh = time.monotonic() + max(METRICS_REFRESH, 2.0 * took)
            log.debug("refreshed %d metrics frames in %.3f s", len(frames), took)


def _meets(a: BBox, b: BBox) -> bool:
    """Whether two WGS84 bboxes meet (edges included)."""
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


@dataclass(frozen=True)
class _MetricIndex:
    """A metrics frame as arrays: unit bboxes and the tile fields, for fast selection."""

    xmin: np.ndarray
    ymin: np.ndarray
    xmax: np.ndarray
    ymax: np.ndarray
    columns: dict[str, np.ndarray | None]
    #: the tile statement's metric arrays, formatted once per frame
    formatted: MetricLiterals = field(repr=False, compare=False)
    #: the change-log position the frame reflects (its ``upto``; 0 unknown)
    upto: int = 0

    @classmethod
    def of(cls, df: pd.DataFrame) -> _MetricIndex:
        cols: dict[str, np.ndarray | None] = {"code": df["code"].astype(str).to_numpy(object)}
        for f in UNIT_METRIC_FIELDS:
            cols[f] = df[f].to_numpy() if f in df else None
        b = {c: df[c].to_numpy(np.float64) for c in ("xmin", "ymin", "xmax", "ymax")}
        upto = int(df.attrs.get("upto", 0))
        return cls(b["xmin"], b["ymin"], b["xmax"], b["ymax"], cols, MetricLiterals(cols), upto)

    def rows(self, bbox: BBox) -> np.ndarray:
        """Positions of the units whose bbox meets ``bbox``."""
        w, s, e, n = bbox
        return np.flatnonzero(
            (self.xmax >= w) & (self.xmin <= e) & (self.ymax >= s) & (self.ymin <= n)
        )

    def select(self, bbox: BBox) -> dict[str, list[Any] | None]:
        i = self.rows(bbox)
        return {k: None if a is None else a[i].tolist() for k, a in self.columns.items()}

    def literals(self, bbox: BBox) -> dict[str, str]:
        """The tile statement's metric arrays of the units meeting ``bbox``, from items
        formatted once per frame (:class:`~geogrid.store.tiles.MetricLiterals`)."""
        return self.formatted.params(self.rows(bbox))


#: columns of :meth:`MapService.unit_metrics` that are not metrics of the window
_NOT_METRICS = frozenset(
    {
        "code",
        "name",
        "level",
        "parent_code",
        "population",
        "households",
        "area_m2",
        "geometry",
        "effort_incidents",  # kept for the frame's refresh (FRAME_EXTRA)
        "xmin",
        "ymin",
        "xmax",
        "ymax",
    }
)
