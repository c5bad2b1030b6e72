"""Patrol tracks: clean a phone's GPS points and measure a patrol against the grids.

Everything here is pure and vectorised (numpy, shapely 2); lengths and areas are measured
in a metric CRS (the city's, or :func:`geogrid.core.crs.metric_crs` of the track: the
CGCS2000 3° Gauss-Kruger zone), never in degrees.

Definitions
-----------
**Cleaning** (:func:`clean_track`), in this order:

1. points with a non-finite coordinate or time are dropped; points whose reported
   accuracy is worse than ``max_accuracy_m`` are dropped (a missing accuracy is kept);
2. points are sorted by time; of points with the same time the first is kept;
3. **sampling**: a point is kept when at least ``min_interval_s`` seconds passed since the
   last kept point (greedy from the first point);
4. **jumps**: a point reached *and* left faster than ``max_speed_mps`` (a GPS spike) is
   dropped, repeatedly until none is left;
5. **parts**: the track is cut where consecutive points are more than ``max_gap_s`` apart
   or still joined faster than ``max_speed_mps`` (a ride, a lost signal); parts of fewer
   than two points are dropped. Distances and times are only counted inside parts.

**Distance** is the sum of the parts' lengths. **Time in a grid**: every segment between
two consecutive kept points is split at the grids' boundaries and its time is interpolated
along it (constant speed on a segment): a grid gets ``dt × (length inside / length)``;
a segment of zero length (standing still) gives its time to the grid covering it. A
stretch on a shared boundary is shared equally.

**Coverage** of a grid: the share of its area within ``buffer_m`` (50 m) of the track —
the track's parts buffered in the metric CRS (round caps and joins), intersected with the
grid, area ratio. A day's coverage is that of the union of the day's tracks.

**Dwell points**: where the track stays within ``dwell_radius_m`` (25 m) of a point for at
least ``dwell_min_s`` (60 s): the mean position of those points.

**Buildings visited**: the distinct buildings named by a check-in, plus the buildings
within ``visit_radius_m`` (30 m) of a check-in's position or of a dwell point. Walking past
a building does not count as a visit; stopping at it does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyproj
import shapely
from shapely import STRtree

from geogrid.core.crs import metric_crs, project_xy, transform_geometries
from geogrid.errors import InvalidInput

__all__ = [
    "TrackRules",
    "Track",
    "GridMetrics",
    "MAX_POINTS",
    "clean_track",
    "track_crs",
    "grid_metrics",
    "coverage",
    "buffer_lines",
    "BUFFER_PIECE",
    "dwell_points",
    "near_points",
    "locate_points",
    "track_lines_wgs84",
    "parse_day",
    "day_bounds",
]

#: the most points one patrol may upload (a 12-hour patrol at one point per second is 43,200)
MAX_POINTS = 50_000


@dataclass(frozen=True)
class TrackRules:
    """The rules of :func:`clean_track` and the measures (see the module notes).

    ``min_interval_s`` and ``max_accuracy_m`` come from the settings
    (``patrol_min_interval_s``, ``patrol_max_accuracy_m``).
    """

    min_interval_s: float = 5.0
    max_accuracy_m: float = 50.0
    max_speed_mps: float = 10.0
    max_gap_s: float = 300.0
    buffer_m: float = 50.0
    dwell_radius_m: float = 25.0
    dwell_min_s: float = 60.0
    visit_radius_m: float = 30.0

    def __post_init__(self) -> None:
        for name in (
            "max_accuracy_m",
            "max_speed_mps",
            "max_gap_s",
            "buffer_m",
            "dwell_radius_m",
            "dwell_min_s",
            "visit_radius_m",
        ):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise InvalidInput(name, v, "a positive number")
        if not (np.isfinite(self.min_interval_s) and self.min_interval_s >= 0):
            raise InvalidInput("min_interval_s", self.min_interval_s, "a number of seconds >= 0")


@dataclass
class Track:
    """A cleaned track: kept points in time order, in WGS84 and in the metric CRS.

    ``part`` numbers the parts (0, 1, …); ``t`` is seconds since the epoch (UTC).
    """

    lon: np.ndarray
    lat: np.ndarray
    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    accuracy: np.ndarray
    part: np.ndarray
    crs: pyproj.CRS
    received: int = 0

    @property
    def n(self) -> int:
        return int(self.t.size)

    def segments(self) -> np.ndarray:
        """Indices i of the segments (i → i+1) inside a part."""
        if self.n < 2:
            return np.zeros(0, dtype=int)
        return np.nonzero(self.part[1:] == self.part[:-1])[0]

    @property
    def distance_m(self) -> float:
        i = self.segments()
        return float(np.hypot(self.x[i + 1] - self.x[i], self.y[i + 1] - self.y[i]).sum())

    def lines(self) -> shapely.Geometry:
        """The parts as a metric MultiLineString (empty when there are none)."""
        return _lines(self.x, self.y, self.part)

    def lines_wgs84(self) -> shapely.Geometry:
        """The parts as a WGS84 MultiLineString (empty when there are none)."""
        return _lines(self.lon, self.lat, self.part)


def _lines(x: np.ndarray, y: np.ndarray, part: np.ndarray) -> shapely.Geometry:
    if x.size < 2:
        return shapely.MultiLineString()
    coords = np.column_stack([x, y])
    return shapely.multilinestrings(shapely.linestrings(coords, indices=part))


def track_crs(lon: np.ndarray, configured: str | None) -> pyproj.CRS:
    """The metric CRS of a track: the city's configured one, else the Gauss-Kruger zone of
    the points' middle longitude."""
    if configured:
        return pyproj.CRS.from_user_input(configured)
    finite = lon[np.isfinite(lon)]
    if finite.size == 0:
        raise InvalidInput("points", [], "at least one point with a finite longitude")
    return metric_crs(float((finite.min() + finite.max()) / 2.0))


def _thin(t: np.ndarray, interval: float) -> np.ndarray:
    """Indices kept by greedy sampling: each at least ``interval`` after the previous."""
    if t.size == 0 or interval <= 0:
        return np.arange(t.size)
    keep = [0]
    i = 0
    while True:
        j = int(np.searchsorted(t, t[i] + interval, side="left"))
        if j >= t.size:
            break
        keep.append(j)
        i = j
    return np.asarray(keep, dtype=int)


def _speeds(x: np.ndarray, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    dt = np.diff(t)
    d = np.hypot(np.diff(x), np.diff(y))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(dt > 0, d / np.where(dt > 0, dt, 1.0), np.inf)


def clean_track(
    lon: Any,
    lat: Any,
    t_s: Any,
    accuracy_m: Any = None,
    *,
    rules: TrackRules = TrackRules(),
    crs: pyproj.CRS | str | None = None,
) -> Track:
    """Clean a track's raw points (see the module notes).

    Parameters
    ----------
    lon, lat : array-like
        WGS84 degrees.
    t_s : array-like
        Times, seconds since the epoch.
    accuracy_m : array-like, optional
        The phone's reported horizontal accuracy (NaN: unknown).
    rules : TrackRules
    crs : the metric CRS (default :func:`track_crs`)

    >>> x0, y0 = 110.15, 22.63
    >>> lon = x0 + np.arange(7) * 0.0001; lat = np.full(7, y0)
    >>> t = np.array([0, 2, 10, 20, 30, 40, 50.0])
    >>> acc = np.array([5, 5, 5, 200, 5, 5, 5.0])
    >>> tr = clean_track(lon, lat, t, acc, rules=TrackRules(min_interval_s=5))
    >>> tr.t.tolist(), tr.part.tolist()
    ([0.0, 10.0, 30.0, 40.0, 50.0], [0, 0, 0, 0, 0])
    """
    x = np.asarray(lon, dtype=float).ravel()
    y = np.asarray(lat, dtype=float).ravel()
    t = np.asarray(t_s, dtype=float).ravel()
    n = x.size
    if y.size != n or t.size != n:
        raise InvalidInput("points", f"{n} lon, {y.size} lat, {t.size} times", "equal lengths")
    acc = np.full(n, np.nan) if accuracy_m is None else np.asarray(accuracy_m, dtype=float).ravel()
    if acc.size != n:
        raise InvalidInput("accuracy_m", f"{acc.size} values", f"one per point ({n})")
    target = pyproj.CRS.from_user_input(crs) if crs is not None else track_crs(x, None)
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(t)
    ok &= ~(acc > rules.max_accuracy_m)  # NaN (unknown) accuracy is kept
    x, y, t, acc = x[ok], y[ok], t[ok], acc[ok]
    order = np.argsort(t, kind="stable")
    x, y, t, acc = x[order], y[order], t[order], acc[order]
    if t.size:
        first = np.concatenate([[True], np.diff(t) > 0])
        x, y, t, acc = x[first], y[first], t[first], acc[first]
    keep = _thin(t, rules.min_interval_s)
    x, y, t, acc = x[keep], y[keep], t[keep], acc[keep]
    mx, my = project_xy(x, y, target) if x.size else (x.copy(), y.copy())
    mx, my = np.asarray(mx, dtype=float), np.asarray(my, dtype=float)
    # jumps: drop spikes (reached and left too fast), repeatedly
    alive = np.ones(t.size, dtype=bool)
    for _ in range(t.size):
        idx = np.nonzero(alive)[0]
        if idx.size < 3:
            break
        v = _speeds(mx[idx], my[idx], t[idx])
        spike = np.zeros(idx.size, dtype=bool)
        spike[1:-1] = (v[:-1] > rules.max_speed_mps) & (v[1:] > rules.max_speed_mps)
        if not spike.any():
            break
        # drop the worst spike of each run, so that a real turn next to a spike survives
        score = np.where(spike, np.concatenate([[0.0], np.minimum(v[:-1], v[1:]), [0.0]]), 0.0)
        alive[idx[int(np.argmax(score))]] = False
    x, y, t, acc, mx, my = x[alive], y[alive], t[alive], acc[alive], mx[alive], my[alive]
    # parts: cut at gaps and at remaining too-fast segments
    if t.size >= 2:
        v = _speeds(mx, my, t)
        cut = (np.diff(t) > rules.max_gap_s) | (v > rules.max_speed_mps)
        part = np.concatenate([[0], np.cumsum(cut)])
    else:
        part = np.zeros(t.size, dtype=int)
    sizes = np.bincount(part) if part.size else np.zeros(0, dtype=int)
    big = sizes[part] >= 2 if part.size else np.zeros(0, dtype=bool)
    x, y, t, acc, mx, my, part = (a[big] for a in (x, y, t, acc, mx, my, part))
    if part.size:
        part = np.unique(part, return_inverse=True)[1].astype(int)
    return Track(x, y, mx, my, t, acc, part, target, received=n)


@dataclass
class GridMetrics:
    """Per grid: seconds in it, metres walked in it, coverage (0..1)."""

    codes: list[str]
    seconds: np.ndarray
    length_m: np.ndarray
    coverage: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    def rows(self, *, min_value: float = 0.0) -> list[dict[str, Any]]:
        """One dict per grid the track touched (time, length or coverage above 0)."""
        out = []
        for i, code in enumerate(self.codes):
            s, ln, c = float(self.seconds[i]), float(self.length_m[i]), float(self.coverage[i])
            if s > min_value or ln > min_value or c > min_value:
                out.append({"grid_code": code, "seconds_in_grid": s, "length_m": ln, "coverage": c})
        return out


def _grid_areas(grids_m: np.ndarray) -> np.ndarray:
    return np.asarray(shapely.area(grids_m), dtype=float)


#: vertices per piece of a track buffered at once (see :func:`buffer_lines`)
BUFFER_PIECE = 32


def buffer_lines(lines_m: shapely.Geometry, buffer_m: float) -> shapely.Geometry:
    """The area within ``buffer_m`` of lines (metric; round caps and joins, 64 segments a
    quarter circle): the lines cut into pieces of :data:`BUFFER_PIECE` segments, each
    buffered, then united. The same area as buffering the whole line, but GEOS's buffer
    of one long line that crosses itself many times (a worker going back and forth) grows
    much faster than linearly: 2,000 fixes took two minutes whole, under a second in
    pieces.

    >>> line = shapely.LineString([(0, 0), (100, 0)])
    >>> round(float(buffer_lines(line, 10).area))  # 100 × 20 + π·10², to the polygon's error
    2314
    """
    pieces = []
    for part in shapely.get_parts(lines_m):
        xy = shapely.get_coordinates(part)
        if len(xy) < 2:
            continue
        for i in range(0, len(xy) - 1, BUFFER_PIECE):
            pieces.append(shapely.linestrings(xy[i : i + BUFFER_PIECE + 1]))
    if not pieces:
        return shapely.Polygon()
    return shapely.union_all(
        shapely.buffer(np.asarray(pieces, dtype=object), buffer_m, quad_segs=64)
    )


def coverage(lines_m: shapely.Geometry, grids_m: Any, buffer_m: float) -> np.ndarray:
    """Share of each grid's area within ``buffer_m`` of ``lines_m`` (all metric).

    >>> g = [shapely.box(0, 0, 500, 500)]
    >>> line = shapely.LineString([(100, 250), (400, 250)])
    >>> round(float(coverage(line, g, 50)[0]), 4)  # (300*100 + pi*50**2) / 500**2
    0.1514
    """
    grids = np.asarray(grids_m, dtype=object)
    out = np.zeros(grids.size, dtype=float)
    if grids.size == 0 or lines_m is None or shapely.is_empty(lines_m):
        return out
    buf = buffer_lines(lines_m, buffer_m)
    hit = shapely.intersects(grids, buf)
    if hit.any():
        try:
            inter = shapely.intersection(grids[hit], buf)
        except shapely.errors.GEOSException:
            # a buffer of a self-crossing track can make GEOS's overlay fail on nearly
            # coincident edges ("side location conflict"); snapping both to a 1 cm grid
            # (the CRS is metric) makes the overlay robust at no visible cost in area
            inter = shapely.intersection(
                shapely.make_valid(grids[hit]), shapely.make_valid(buf), grid_size=0.01
            )
        areas = _grid_areas(grids[hit])
        with np.errstate(divide="ignore", invalid="ignore"):
            out[hit] = np.where(areas > 0, shapely.area(inter) / areas, 0.0)
    return np.clip(out, 0.0, 1.0)


def grid_metrics(
    track: Track, codes: Sequence[str], grids_m: Sequence[Any], *, buffer_m: float = 50.0
) -> GridMetrics:
    """Seconds, metres and coverage of a track in each grid (grids in the track's CRS).

    >>> tr = Track(*(np.array(v, dtype=float) for v in ([0, 0, 0], [0, 0, 0],
    ...            [100, 500, 900], [250, 250, 250], [0, 40, 80], [5, 5, 5])),
    ...            part=np.zeros(3, dtype=int), crs=pyproj.CRS.from_epsg(4546))
    >>> m = grid_metrics(tr, ["a", "b"], [shapely.box(0, 0, 500, 500),
    ...                  shapely.box(500, 0, 1000, 500)])
    >>> m.seconds.tolist(), m.length_m.tolist()
    ([40.0, 40.0], [400.0, 400.0])
    """
    grids = np.asarray(grids_m, dtype=object)
    ng = grids.size
    seconds: np.ndarray = np.zeros(ng)
    length: np.ndarray = np.zeros(ng)
    seg = track.segments()
    if ng and seg.size:
        x0, y0 = track.x[seg], track.y[seg]
        x1, y1 = track.x[seg + 1], track.y[seg + 1]
        dt = track.t[seg + 1] - track.t[seg]
        seglen = np.hypot(x1 - x0, y1 - y0)
        moving = seglen > 0
        coords = np.stack([np.column_stack([x0, y0]), np.column_stack([x1, y1])], axis=1)
        lines = shapely.linestrings(coords)
        points = shapely.points(np.column_stack([x0, y0]))
        tree = STRtree(grids)
        probe = np.where(moving, lines, points)
        a, b = tree.query(probe, predicate="intersects")
        frac = np.ones(a.size)
        mv = moving[a]
        if mv.any():
            inside = shapely.length(shapely.intersection(lines[a[mv]], grids[b[mv]]))
            frac[mv] = inside / seglen[a[mv]]
        total = np.bincount(a, frac, minlength=seg.size)
        frac = frac / np.maximum(total[a], 1.0)  # a stretch on a shared edge: shared
        seconds = np.bincount(b, frac * dt[a], minlength=ng)
        length = np.bincount(b, frac * seglen[a], minlength=ng)
    cov = coverage(track.lines(), grids, buffer_m)
    return GridMetrics(list(codes), seconds, length, cov)


def dwell_points(track: Track, radius_m: float, min_s: float) -> np.ndarray:
    """Dwell points (metric x, y rows): where the track stays within ``radius_m`` of a
    point for at least ``min_s`` seconds (inside one part).

    >>> tr = Track(*(np.array(v, dtype=float) for v in ([0] * 4, [0] * 4,
    ...            [0, 5, 3, 200], [0, 4, 0, 0], [0, 40, 80, 120], [5] * 4)),
    ...            part=np.zeros(4, dtype=int), crs=pyproj.CRS.from_epsg(4546))
    >>> dwell_points(tr, 25, 60).round(2).tolist()
    [[2.67, 1.33]]
    """
    out: list[tuple[float, float]] = []
    n = track.n
    i = 0
    while i < n:
        d = np.hypot(track.x[i:] - track.x[i], track.y[i:] - track.y[i])
        leave = np.nonzero((d > radius_m) | (track.part[i:] != track.part[i]))[0]
        j = i + (int(leave[0]) if leave.size else n - i)
        if j - 1 > i and track.t[j - 1] - track.t[i] >= min_s:
            out.append((float(track.x[i:j].mean()), float(track.y[i:j].mean())))
            i = j
        else:
            i += 1
    return np.asarray(out, dtype=float).reshape(-1, 2)


def near_points(
    bx: np.ndarray, by: np.ndarray, px: np.ndarray, py: np.ndarray, radius_m: float
) -> np.ndarray:
    """Indices of the buildings (``bx``, ``by``) within ``radius_m`` of any point (``px``,
    ``py``), all metric, sorted.

    >>> near_points(np.array([0.0, 100.0]), np.array([0.0, 0.0]), np.array([20.0]),
    ...             np.array([0.0]), 30).tolist()
    [0]
    """
    if bx.size == 0 or px.size == 0:
        return np.zeros(0, dtype=int)
    tree = STRtree(shapely.points(np.column_stack([bx, by])))
    _, hits = tree.query(
        shapely.points(np.column_stack([px, py])), predicate="dwithin", distance=radius_m
    )
    return np.unique(hits)


def locate_points(points_m: Sequence[Any], grids_m: Sequence[Any]) -> np.ndarray:
    """For each point, the index of the first grid covering it (-1: none)."""
    pts = np.asarray(points_m, dtype=object)
    out = np.full(pts.size, -1, dtype=int)
    grids = np.asarray(grids_m, dtype=object)
    if pts.size == 0 or grids.size == 0:
        return out
    a, b = STRtree(grids).query(pts, predicate="intersects")
    for p, g in sorted(zip(a.tolist(), b.tolist(), strict=True), reverse=True):
        out[p] = g  # the lowest grid index wins
    return out


def track_lines_wgs84(lines_m: shapely.Geometry, crs: pyproj.CRS) -> shapely.Geometry:
    """A metric geometry back in WGS84."""
    return transform_geometries(lines_m, crs, "wgs84")


def parse_day(value: Any, parameter: str = "day") -> date:
    """A calendar day from ``YYYY-MM-DD`` (or a date).

    >>> parse_day("2026-05-04")
    datetime.date(2026, 5, 4)
    """
    allowed = "a day as YYYY-MM-DD from 1970-01-01 to 2199-12-31, e.g. 2026-05-04"
    if isinstance(value, date) and not isinstance(value, datetime):
        d = value
    else:
        try:
            d = date.fromisoformat(str(value))
        except ValueError:
            raise InvalidInput(parameter, value, allowed) from None
    if not 1970 <= d.year < 2200:
        raise InvalidInput(parameter, str(value), allowed)
    return d


def day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of a calendar day in time zone ``tz``.

    >>> [d.isoformat() for d in day_bounds(date(2026, 5, 4), "Asia/Shanghai")]
    ['2026-05-04T00:00:00+08:00', '2026-05-05T00:00:00+08:00']
    """
    zone = ZoneInfo(tz)
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    nxt = day + timedelta(days=1)
    return start, datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)
