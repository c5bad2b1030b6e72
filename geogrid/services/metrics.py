"""Per-unit load metrics, roll-ups, the load index, and incident frames for analysts.

What a metric means
-------------------
For a level (``grid``, ``community``, ``street``, ``district``), a time window
``[start, end)`` (default: the 30 days up to now) and optionally some categories, every
unit of the boundary version gets the columns of :data:`METRICS`. The state of the
workflow (backlog, overdue, resolved) is read at ``t = min(end, now)``:

* an incident is **in the window** when ``start <= reported_at < end``;
* it is **open at t** when reported before ``t`` and not done by ``t`` (done = resolved,
  closed, rejected or duplicate, at ``COALESCE(resolved_at, closed_at, updated_at)``);
* it is **resolved by t** when its status is resolved/closed and ``resolved_at <= t``;
* ``resolved_within_limit_share`` = resolved by their ``due_at`` / (resolved + still open
  and past due), over the window's incidents: the share of *decided* cases that met the
  limit (open incidents not yet due are undecided and left out; rejected and duplicate
  reports are not cases);
* hours to resolve are ``resolved_at - reported_at`` of the window's resolved incidents;
  median and p90 are linear-interpolation percentiles (PostgreSQL ``percentile_cont`` =
  ``numpy.quantile``'s default).

Roll-ups. Incidents carry the code of every level they fall in (``grid_code`` …
``district_code``), so a level is a ``GROUP BY`` on its own column: counts and sums at a
level are exactly the sums of the units below, rates are recomputed from those sums
(never averaged), and median/p90 are computed from the underlying incidents at each
level. Incidents outside every grid belong to no unit. ``workers`` are full-time
equivalents: a worker serving *k* grids counts 1/*k* in each, so workers also add up.

SQL or pandas? (measured at 1,000,000 demo incidents, 8,798 grids, 2 shared cores)
----------------------------------------------------------------------------------
PostgreSQL does the aggregation; pandas is only the time-travel path. ``python -m
bench.metrics --compare`` on a month (86,184 incidents; the statements read the 183,277
rows of the window, the previous window and the older open backlog), median of 5 warm runs:

===========================  ==========  ==========  ==========
level                        grid        community   district
===========================  ==========  ==========  ==========
``load_metrics`` (all in)    0.38–0.44   0.22–0.29   0.19–0.28 s
SQL aggregation only         0.30–0.40   0.19–0.25   0.14–0.30 s
pandas path (fetch + group)  1.2         1.0         1.1 s
===========================  ==========  ==========  ==========

(two runs; other engineers' test suites shared the two cores, so expect less on a quiet
machine). The pandas path is 3–5× slower because every row must travel to Python: the
fetch is ~1.1 s (times sent as epoch seconds; as timestamps it was 2.6 s) while the
grouping itself takes 50–70 ms; SQL returns at most one row per unit. In SQL the counts
are one hash aggregate with ``FILTER`` clauses, and the percentiles (which need a sort per
group) are a second statement over the window's resolved rows only, run in parallel on a
second pooled connection -- measured twice as fast as one combined ``GROUP BY``. Both
paths give identical numbers (checked by the benchmark and tests/test_metrics.py). Unit
geometries, the grid → community → street → district chain and Gi* weights come from the
caller's :class:`~geogrid.services.unitcache.UnitCache` per (version, level), refreshed when the version's units change
(count / max id), so the hot path never re-reads polygons; the first call per version pays
~0.2–0.5 s to load them.

Time travel. ``version=`` or ``as_of=`` picks the boundary version. Incidents store the
codes of the version they were attributed to (``incident.version_id``); when any incident
the metrics need carries another version, the SQL result is discarded and the rows are
read with their coordinates, those of other versions are re-attributed in memory with
:func:`geogrid.services.attribution.attributor_for_version`, and the same definitions are computed
with pandas (the vectorised path). Nothing is written back.

Load index (for planners)
-------------------------
``load_index`` = 100 · weighted mean of effort-weighted incidents, households and area,
each relative to the city's mean grid (the mean grid is exactly 100; upper levels sum
their grids). The formula and its weights are in :mod:`geogrid.core.loadindex`.

Where things live
-----------------
The metric catalogue is :mod:`geogrid.core.metric_catalogue`; windows are read by
:mod:`geogrid.core.timewindow` in the city's time zone (``settings.city.timezone`` unless
``tz=`` is given); the arithmetic on sums is :mod:`geogrid.core.unitmetrics`; the SQL is
:mod:`geogrid.store.metrics`. This module only orchestrates. Unit geometries, chains and
spatial weights are kept in a :class:`~geogrid.services.unitcache.UnitCache` when one is
passed (``cache=ctx.unit_cache``); without one they are read afresh.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine

from geogrid.core.hierarchy import ATTRIBUTION_COLUMNS, LEVELS_UP
from geogrid.core.hotspots import GiStar, spatial_weights
from geogrid.core.loadindex import LoadWeights, as_weights, load_parts, load_score
from geogrid.core.metric_catalogue import METRIC_COLUMNS, METRICS
from geogrid.core.timewindow import parse_time, resolve_window
from geogrid.core.unitmetrics import (
    TREND_INTERVALS,
    aggregate_incident_rows,
    fill_periods,
    unit_metrics,
)
from geogrid.errors import InvalidInput, NotFound
from geogrid.services.attribution import attributor_for_version
from geogrid.services.unitcache import UnitCache
from geogrid.settings import get_settings
from geogrid.store import metrics as sm
from geogrid.store import residents as store_residents
from geogrid.store import rollup as store_rollup
from geogrid.store.engine import connection as _connect
from geogrid.store.units import load_units, resolve_version

__all__ = [
    "INCIDENT_FRAME_DEFAULT",
    "hotspots_of",
    "incident_frame",
    "incident_time_range",
    "load_index",
    "FRAME_EXTRA",
    "load_metrics",
    "metrics_frame",
    "metrics_from_aggregates",
    "refresh_metrics_frame",
    "unit_hotspots",
    "unit_trend",
]

Bind = Engine | Connection
Categories = Iterable[str] | str | None
Weights = LoadWeights | Mapping[str, float] | None

#: the columns :func:`incident_frame` returns by default
INCIDENT_FRAME_DEFAULT = [
    "id",
    "category",
    "status",
    "reported_at",
    "resolved_at",
    "due_at",
    *ATTRIBUTION_COLUMNS,
    "lon",
    "lat",
]

_LOAD_INDEX_COLUMNS = [
    "code",
    "name",
    "level",
    "parent_code",
    "incidents",
    "effort_incidents",
    "households",
    "area_km2",
    "workers",
]


# --------------------------------------------------------------------------- inputs


def _zone(tz: str | None) -> str:
    """The time zone windows are read in: ``tz``, else the configured city's."""
    return tz or get_settings().city.timezone


def _level(level: str) -> str:
    if level not in LEVELS_UP:
        raise InvalidInput("level", level, "one of " + ", ".join(LEVELS_UP))
    return level


def _categories(conn: Connection, categories: Categories) -> list[str] | None:
    if categories is None:
        return None
    if isinstance(categories, str):
        categories = [c for c in (p.strip() for p in categories.split(",")) if c]
    cats = sorted({str(c) for c in categories})
    if not cats:
        return None
    known = set(sm.category_efforts(conn)["code"])
    bad = [c for c in cats if c not in known]
    if bad:
        raise InvalidInput(
            "category", ",".join(bad), "category codes among " + ", ".join(sorted(known))
        )
    return cats


def _database(conn: Connection) -> str:
    return str(conn.engine.url)


# --------------------------------------------------------------------------- unit data


def _units(conn: Connection, cache: UnitCache, level: str, vid: int) -> gpd.GeoDataFrame:
    """The version's units at a level (EPSG:4326), kept in ``cache``."""
    fp = sm.unit_fingerprint(conn, vid, level)
    return cache.get(
        _database(conn), ("units", vid, level), fp, lambda: load_units(conn, level, version=vid)
    )


def _weights_of(conn: Connection, cache: UnitCache, units: gpd.GeoDataFrame, vid: int, kind: str):
    """Spatial weights of a version's units at a level, kept in ``cache``."""
    level = str(units["level"].iloc[0])
    fp = sm.unit_fingerprint(conn, vid, level)
    metric_crs = get_settings().city.metric_crs
    return cache.get(
        _database(conn),
        ("weights", vid, level, kind),
        fp,
        lambda: spatial_weights(units[["geometry"]], kind, metric_crs=metric_crs),
    )


def _reattribute(conn: Connection, cache: UnitCache, df: pd.DataFrame, vid: int) -> pd.DataFrame:
    """``df`` with the codes of version ``vid``: rows stored with another version are
    re-attributed in memory from their lon/lat (nothing is written back)."""
    other = (df["version_id"].isna() | (df["version_id"] != vid)).to_numpy()
    if not other.any():
        return df
    att = attributor_for_version(conn, vid, cache=cache)
    codes = att.attribute(
        df.loc[other, "lon"].to_numpy(float), df.loc[other, "lat"].to_numpy(float)
    )
    for c in ATTRIBUTION_COLUMNS:
        vals = df[c].to_numpy(dtype=object).copy()
        vals[other] = codes[c].to_numpy(dtype=object)
        df[c] = vals
    return df


# --------------------------------------------------------------------------- residents


def _resident_rows(
    conn: Connection, level: str, start: datetime, end: datetime
) -> dict[str, list[dict[str, Any]]]:
    """Residents' satisfaction and evaluation answers given in ``[start, end)``, grouped by
    the unit column of ``level`` (issue 14)."""
    column = f"{level}_code"
    return {
        "satisfaction": store_residents.satisfaction_by_unit(conn, column, start, end),
        "evaluation": store_residents.evaluation_by_unit(conn, column, start, end),
    }


def _with_residents(out: pd.DataFrame, parts: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """``out`` with residents' satisfaction and evaluation (issue 14) from
    :func:`_resident_rows` (rows carry every level's code, so upper levels are sums, and
    means are recomputed from the sums)."""
    index = pd.Index(out["code"].to_numpy(dtype=object))
    for name, rows in parts.items():
        n = np.zeros(len(index), dtype=np.int64)
        total = np.zeros(len(index), dtype=float)
        if rows:
            pos = index.get_indexer([r["code"] for r in rows])
            hit = pos >= 0
            n[pos[hit]] = np.asarray([int(r["n"]) for r in rows], dtype=np.int64)[hit]
            total[pos[hit]] = np.asarray([float(r["score_sum"]) for r in rows])[hit]
        score = "satisfaction" if name == "satisfaction" else "evaluation_score"
        with np.errstate(divide="ignore", invalid="ignore"):
            out[score] = np.where(n > 0, total / n, np.nan)
        out[f"{name}_answers"] = n
    return out


@dataclass(frozen=True)
class UnitFacts:
    """What the metrics of a level need besides the incident aggregates: the version's
    units (geometry cached), worker FTEs per unit, the grid totals of the load index
    (number of grids, households, area in m²) and the residents' answers of the window."""

    units: gpd.GeoDataFrame
    fte: pd.Series
    grid_totals: tuple[int, float, float]
    residents: dict[str, list[dict[str, Any]]]


def unit_facts(
    engine: Bind,
    level: str,
    *,
    version_id: int,
    start: datetime,
    end: datetime,
    cache: UnitCache,
) -> UnitFacts:
    """The :class:`UnitFacts` of a version's units at a level for the window
    ``[start, end)``."""
    with _connect(engine) as conn:
        return UnitFacts(
            units=_units(conn, cache, level, version_id),
            fte=sm.worker_fte(conn, version_id, level),
            grid_totals=sm.grid_totals(conn, version_id),
            residents=_resident_rows(conn, level, start, end),
        )


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class _Window:
    prev_start: datetime
    start: datetime
    end: datetime
    t: datetime
    categories: list[str] | None
    past: bool


def _compute(
    engine: Bind,
    level: str,
    *,
    start: Any,
    end: Any,
    categories: Categories,
    version: int | None,
    as_of: Any,
    now: Any,
    weights: Weights,
    tz: str | None,
    cache: UnitCache | None,
) -> gpd.GeoDataFrame:
    """Every metric of :data:`METRICS` plus the load index's parts, per unit."""
    level = _level(level)
    zone = _zone(tz)
    start_d, end_d, now_d = resolve_window(start, end, now, tz=zone)
    as_of_d = parse_time(as_of, "as_of", zone)
    w = as_weights(weights)
    cache = cache if cache is not None else UnitCache()
    t = min(end_d, now_d)
    with _connect(engine) as conn:
        vid = resolve_version(conn, version, as_of_d)
        win = _Window(
            prev_start=start_d - (end_d - start_d),
            start=start_d,
            end=end_d,
            t=t,
            categories=_categories(conn, categories),
            past=t < now_d,
        )
        # with an Engine the aggregate's statements run on pooled connections at once,
        # and the units' facts are read on another one meanwhile (issue 12)
        bind = engine if isinstance(engine, Engine) else conn
        with _FactsJob(engine, level, vid, start_d, end_d, cache) as facts_job:
            rollup_zone = store_rollup.rollup_zone(conn)
            if rollup_zone is not None:  # migration 0016: whole days from incident_daily
                agg = store_rollup.aggregate_units_rollup(
                    bind, level, version_id=vid, zone=rollup_zone, **asdict(win)
                )
            else:
                agg = sm.aggregate_units(bind, level, version_id=vid, **asdict(win))
            facts = facts_job.result(conn)
        path = "sql"
        if int(agg["mismatched"].sum()) > 0:
            rows = sm.metric_rows(conn, version_id=vid, with_points=True, **asdict(win))
            rows = _reattribute(conn, cache, rows, vid)
            agg = aggregate_incident_rows(
                rows, level, prev_start=win.prev_start, start=start_d, end=end_d, t=t
            )
            path = "pandas (re-attributed)"
    return metrics_from_aggregates(
        engine,
        level,
        agg,
        version_id=vid,
        prev_start=win.prev_start,
        start=start_d,
        end=end_d,
        t=t,
        categories=win.categories,
        weights=w,
        cache=cache,
        path=path,
        facts=facts,
    )


class _FactsJob:
    """:func:`unit_facts` read on a pooled connection of its own while the caller goes on
    (with an Engine; with a Connection they are read on it when asked for)."""

    def __init__(
        self, engine: Bind, level: str, vid: int, start: datetime, end: datetime, cache: UnitCache
    ) -> None:
        self._level = level
        self._kw: dict[str, Any] = dict(version_id=vid, start=start, end=end, cache=cache)
        self._pool: ThreadPoolExecutor | None = None
        self._future: Future[UnitFacts] | None = None
        if isinstance(engine, Engine):
            self._pool = ThreadPoolExecutor(max_workers=1)
            # the request's statement budget (a context variable) goes with the statements
            read = functools.partial(unit_facts, engine, level, **self._kw)
            self._future = self._pool.submit(contextvars.copy_context().run, read)

    def __enter__(self) -> _FactsJob:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def result(self, conn: Connection) -> UnitFacts:
        if self._future is None:
            return unit_facts(conn, self._level, **self._kw)
        return self._future.result()


def metrics_from_aggregates(
    engine: Bind,
    level: str,
    agg: pd.DataFrame,
    *,
    version_id: int,
    prev_start: datetime,
    start: datetime,
    end: datetime,
    t: datetime,
    categories: list[str] | None,
    weights: LoadWeights,
    cache: UnitCache,
    path: str,
    facts: UnitFacts | None = None,
) -> gpd.GeoDataFrame:
    """The metrics of a version's units from per-unit sums (the SQL aggregate, its pandas
    twin, or the partial sums of a Dask cluster — :mod:`geogrid.services.scale`): units,
    worker FTEs, the load index's grid means, the residents' figures, and ``attrs``.
    ``facts``: the :func:`unit_facts` of the level and window when already read."""
    vid = version_id
    if facts is None:
        facts = unit_facts(engine, level, version_id=vid, start=start, end=end, cache=cache)
    units, fte = facts.units, facts.fte
    n_grids, hh_total, area_total = facts.grid_totals

    # grid means for the load index: all attributed incidents belong to exactly one grid
    effort_total = float(agg.loc[agg["code"].notna(), "effort_incidents"].sum())
    ref = (
        (effort_total / n_grids, hh_total / n_grids, area_total / 1e6 / n_grids)
        if n_grids
        else (0.0, 0.0, 0.0)
    )
    out = unit_metrics(
        pd.DataFrame(units.drop(columns="geometry")), agg, fte, reference=ref, weights=weights
    )
    out = _with_residents(out, facts.residents)  # issue 14
    gdf = gpd.GeoDataFrame(out, geometry=units.geometry.values, crs="EPSG:4326")
    gdf.attrs.update(
        version_id=vid,
        level=level,
        start=start.isoformat(),
        end=end.isoformat(),
        as_at=t.isoformat(),
        previous_start=prev_start.isoformat(),
        categories=categories,
        weights=asdict(weights),
        load_reference=dict(zip(("effort", "households", "area_km2"), ref, strict=True)),
        grid_count=int(n_grids),
        path=path,
    )
    return gdf


def load_metrics(
    engine: Bind,
    level: str = "grid",
    *,
    start: Any = None,
    end: Any = None,
    categories: Categories = None,
    version: int | None = None,
    as_of: Any = None,
    now: Any = None,
    weights: Weights = None,
    tz: str | None = None,
    cache: UnitCache | None = None,
) -> gpd.GeoDataFrame:
    """Load metrics of every unit of a level, for a time window.

    Parameters
    ----------
    engine : Engine or Connection
    level : {"grid", "community", "street", "district"}
    start, end : datetime, date or ISO string, optional
        The window ``[start, end)``; dates and naive values are local time in ``tz``.
        Default: the 30 days up to ``now``.
    categories : iterable of category codes, or a comma-separated string, optional
        Only these categories (unknown codes raise :class:`~geogrid.errors.InvalidInput`).
    version, as_of : int / datetime, optional
        Boundary version by id, or the one published at ``as_of`` (default: the published
        one). Incidents stored with another version are re-attributed in memory.
    now : datetime, optional
        The present (default: the current time); the state is read at ``min(end, now)``.
    weights : LoadWeights or mapping, optional
        Weights of ``load_index`` (:class:`geogrid.core.loadindex.LoadWeights`).
    tz : str, optional
        IANA time zone of dates and naive times (default: ``settings.city.timezone``).
    cache : UnitCache, optional
        Where unit geometries and chains are kept between calls (e.g.
        ``AppContext.unit_cache``); without one they are read afresh.

    Returns
    -------
    GeoDataFrame (EPSG:4326), one row per unit ordered by code, columns
    :data:`~geogrid.core.metric_catalogue.METRIC_COLUMNS` (see
    :data:`~geogrid.core.metric_catalogue.METRICS` for meanings and units). Counts are
    ints; rates are NaN where their denominator is 0. ``attrs`` holds the version, the
    window, the time the state was read at, the categories, the weights and the path taken
    (``sql`` or ``pandas (re-attributed)``).
    """
    gdf = _compute(
        engine,
        level,
        start=start,
        end=end,
        categories=categories,
        version=version,
        as_of=as_of,
        now=now,
        weights=weights,
        tz=tz,
        cache=cache,
    )
    out = gdf[METRIC_COLUMNS]
    out.attrs.update(dict(gdf.attrs))
    return out


#: what a map's metrics frame keeps beyond :data:`METRIC_COLUMNS`: the sums its
#: incremental refresh (:func:`refresh_metrics_frame`) needs
FRAME_EXTRA = ["effort_incidents"]


def metrics_frame(
    engine: Bind,
    level: str,
    *,
    start: Any = None,
    end: Any = None,
    categories: Categories = None,
    now: Any = None,
    tz: str | None = None,
    cache: UnitCache | None = None,
) -> gpd.GeoDataFrame:
    """:func:`load_metrics` of the published version plus :data:`FRAME_EXTRA`, for a map's
    metrics frame that :func:`refresh_metrics_frame` updates in place of a rebuild."""
    gdf = _compute(
        engine,
        level,
        start=start,
        end=end,
        categories=categories,
        version=None,
        as_of=None,
        now=now,
        weights=None,
        tz=tz,
        cache=cache,
    )
    out = gdf[[*METRIC_COLUMNS, *FRAME_EXTRA]]
    out.attrs.update(dict(gdf.attrs))
    return out


def refresh_metrics_frame(
    engine: Bind,
    frame: pd.DataFrame,
    codes: Iterable[str],
    *,
    now: Any = None,
    end: datetime | None = None,
    tz: str | None = None,
) -> pd.DataFrame | None:
    """``frame`` (a :func:`metrics_frame`, possibly without its geometry) with the rows of
    ``codes`` recomputed at ``now`` — what a few reports changed, at the cost of those
    units (issue 12: the map's frames after writes, instead of rebuilding every unit).

    The aggregates of ``codes`` come from the rollup; the city's mean grid (the load
    index's reference) moves by their change in effort, so every unit's ``load_index`` is
    recomputed from the new reference (vectorised). Worker FTEs and residents' answers are
    kept (incident writes do not change them). The other units keep the state read at
    the frame's build time: the map's frames expire after a TTL anyway.

    ``end``: a later end of the window (a map's open window, "up to now", grows to
    include the reports since the build; its start and previous window stay). As every
    report since the build reaches the refresh of its own units, the other units have
    nothing reported in the added stretch.

    Returns None when only a full rebuild is right: no rollup in the database, the
    frame lacks the attributes of :func:`metrics_frame`, or some incidents carry another
    boundary version (the re-attributing path).
    """
    a = dict(frame.attrs)
    if "grid_count" not in a or "effort_incidents" not in frame:
        return None
    wanted = set(str(c) for c in codes)
    sel = frame["code"].astype(str).isin(wanted).to_numpy()
    if not sel.any():
        return frame
    zone = _zone(tz)
    level = str(a["level"])
    start_d = datetime.fromisoformat(a["start"])
    end_d = max(datetime.fromisoformat(a["end"]), end) if end else datetime.fromisoformat(a["end"])
    now_d = parse_time(now, "now", zone) or datetime.now(UTC)
    t = min(end_d, now_d)
    with _connect(engine) as conn:
        rollup_zone = store_rollup.rollup_zone(conn)
    if rollup_zone is None:
        return None
    rows = frame.loc[sel]
    agg = store_rollup.aggregate_units_rollup(
        engine,
        level,
        prev_start=datetime.fromisoformat(a["previous_start"]),
        start=start_d,
        end=end_d,
        t=t,
        categories=a.get("categories"),
        version_id=int(a["version_id"]),
        past=t < now_d,
        zone=rollup_zone,
        codes=rows["code"].astype(str).tolist(),
    )
    if int(agg["mismatched"].sum()) > 0:
        return None
    ref = a["load_reference"]
    n_grids = int(a["grid_count"])
    delta = float(agg["effort_incidents"].sum()) - float(rows["effort_incidents"].sum())
    reference = (
        ref["effort"] + delta / n_grids if n_grids else 0.0,
        ref["households"],
        ref["area_km2"],
    )
    weights = as_weights(a.get("weights"))
    fte = pd.Series(rows["workers"].to_numpy(float), index=rows["code"].to_numpy())
    units = pd.DataFrame(
        rows[["code", "name", "level", "parent_code", "population", "households", "area_m2"]]
    ).reset_index(drop=True)
    part = unit_metrics(units, agg, fte, reference=reference, weights=weights)
    out = frame.copy()
    keep = {"code", "name", "level", "parent_code", "population", "households", "area_m2"}
    for c in part.columns:
        if c in out.columns and c not in keep and c != "workers":
            out.loc[sel, c] = part[c].to_numpy()
    out["load_index"] = load_score(
        out["effort_incidents"].to_numpy(float),
        out["households"].to_numpy(float),
        out["area_m2"].to_numpy(float) / 1e6,
        reference=reference,
        weights=weights,
    )
    out.attrs.update(
        {str(k): v for k, v in a.items()},
        load_reference=dict(zip(("effort", "households", "area_km2"), reference, strict=True)),
        as_at=t.isoformat(),
        end=end_d.isoformat(),
    )
    return out


def load_index(
    engine: Bind,
    level: str = "grid",
    *,
    start: Any = None,
    end: Any = None,
    categories: Categories = None,
    version: int | None = None,
    as_of: Any = None,
    now: Any = None,
    weights: Weights = None,
    tz: str | None = None,
    cache: UnitCache | None = None,
) -> gpd.GeoDataFrame:
    """The load index with its parts, per unit (parameters as :func:`load_metrics`).

    Returns
    -------
    GeoDataFrame (EPSG:4326): code, name, level, parent_code, incidents, effort_incidents,
    households, area_km2, workers, incidents_part, households_part, area_part (each term's
    contribution in index points; they add up to ``load_index``), load_index,
    load_per_worker (``load_index / workers``: NaN without workers), geometry. Sorted by
    code.
    """
    gdf = _compute(
        engine,
        level,
        start=start,
        end=end,
        categories=categories,
        version=version,
        as_of=as_of,
        now=now,
        weights=weights,
        tz=tz,
        cache=cache,
    )
    ref = gdf.attrs["load_reference"]
    parts = load_parts(
        gdf["effort_incidents"],
        gdf["households"].astype(float),
        gdf["area_km2"],
        reference=(ref["effort"], ref["households"], ref["area_km2"]),
        weights=as_weights(weights),
    )
    out = pd.DataFrame(gdf[_LOAD_INDEX_COLUMNS]).copy()
    for name, v in parts.items():
        out[f"{name}_part"] = np.nan_to_num(np.asarray(v, dtype=float))
    out["load_index"] = gdf["load_index"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["load_per_worker"] = np.where(
            out["workers"] > 0, out["load_index"] / out["workers"], np.nan
        )
    res = gpd.GeoDataFrame(out, geometry=gdf.geometry.values, crs="EPSG:4326")
    res.attrs.update(gdf.attrs)
    return res


# --------------------------------------------------------------------------- incidents


def incident_frame(
    engine: Bind,
    start: Any = None,
    end: Any = None,
    categories: Categories = None,
    columns: Iterable[str] | None = None,
    *,
    version: int | None = None,
    as_of: Any = None,
    now: Any = None,
    tz: str | None = None,
    cache: UnitCache | None = None,
) -> pd.DataFrame:
    """Incidents reported in ``[start, end)`` for analysts, ordered by ``reported_at``.

    Parameters
    ----------
    start, end : as :func:`load_metrics` (default: the 30 days up to now)
    categories : category codes (default: all)
    columns : names among :data:`geogrid.store.metrics.INCIDENT_FRAME_COLUMNS` plus
        ``hours_to_resolve``. Default: :data:`INCIDENT_FRAME_DEFAULT`.
    version, as_of : when given, the four code columns are those of that boundary version
        (incidents stored with another version are re-attributed in memory).
    tz, cache : as :func:`load_metrics`

    Returns
    -------
    DataFrame; times are UTC-aware pandas timestamps, ``lon``/``lat`` WGS84 degrees
    (EPSG:4326), ``hours_to_resolve`` = resolved_at - reported_at in hours (NaN if open).
    """
    cols = list(columns) if columns is not None else list(INCIDENT_FRAME_DEFAULT)
    allowed = [*sm.INCIDENT_FRAME_COLUMNS, "hours_to_resolve"]
    bad = [c for c in cols if c not in allowed]
    if bad or not cols:
        raise InvalidInput("columns", bad or cols, "names among " + ", ".join(allowed))
    zone = _zone(tz)
    start_d, end_d, _ = resolve_window(start, end, now, tz=zone)
    need = list(dict.fromkeys(c for c in cols if c != "hours_to_resolve"))
    if "hours_to_resolve" in cols:
        need += [c for c in ("reported_at", "resolved_at") if c not in need]
    travel = version is not None or as_of is not None
    if travel:
        need += [c for c in ("version_id", "lon", "lat", *ATTRIBUTION_COLUMNS) if c not in need]
    with _connect(engine) as conn:
        cats = _categories(conn, categories)
        df = sm.incident_rows(conn, start=start_d, end=end_d, categories=cats, columns=need)
        for c in df.columns:
            if c.endswith("_at"):
                df[c] = pd.to_datetime(df[c], utc=True)
        if travel:
            vid = resolve_version(conn, version, parse_time(as_of, "as_of", zone))
            df = _reattribute(conn, cache if cache is not None else UnitCache(), df, vid)
    if "hours_to_resolve" in cols:
        df["hours_to_resolve"] = (df["resolved_at"] - df["reported_at"]).dt.total_seconds() / 3600.0
    for c in ("lon", "lat"):
        if c in df:
            df[c] = df[c].astype(float)
    return df[cols]


def incident_time_range(engine: Bind) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(first, last) ``reported_at`` of all stored incidents (UTC); NotFound when empty.
    Notebooks and the benchmark use it to pick windows that hold data."""
    lo, hi = sm.incident_time_range(engine)
    if lo is None or hi is None:
        raise NotFound("no incidents are stored yet: run 'geogrid demo load'")
    return pd.Timestamp(lo).tz_convert("UTC"), pd.Timestamp(hi).tz_convert("UTC")


# --------------------------------------------------------------------------- trend


def unit_trend(
    engine: Bind,
    level: str,
    code: str,
    *,
    interval: str = "week",
    start: Any = None,
    end: Any = None,
    categories: Categories = None,
    now: Any = None,
    tz: str | None = None,
) -> pd.DataFrame:
    """Incidents of one unit per week (Monday) or calendar month, in local time ``tz``
    (default: ``settings.city.timezone``).

    Uses the stored attribution (the codes incidents were attributed with). Default window:
    the 26 weeks (``week``) or 12 months (``month``) up to now.

    Returns
    -------
    DataFrame: period (aware local start of the period), incidents, resolved (of those,
    resolved or closed now); every period of the window appears (0 when empty).
    """
    level = _level(level)
    if interval not in TREND_INTERVALS:
        raise InvalidInput("interval", interval, "week or month")
    zone = _zone(tz)
    start_d, end_d, _ = resolve_window(start, end, now, tz=zone, days=TREND_INTERVALS[interval][1])
    most = {"week": 530, "month": 122}[interval]  # ten years of periods
    if (end_d - start_d).days / (7 if interval == "week" else 30.4) > most:
        raise InvalidInput(
            "from",
            start_d.isoformat(),
            f"a window of at most {most} {interval}s for a {interval}ly trend",
        )
    with _connect(engine) as conn:
        if load_units(conn, level, codes=[str(code)]).empty:
            raise NotFound(f"no {level} with code {code!r} in the published boundaries")
        cats = _categories(conn, categories)
        counts = sm.trend_counts(
            conn,
            level,
            str(code),
            start=start_d,
            end=end_d,
            interval=interval,
            tz=zone,
            categories=cats,
        )
    return fill_periods(counts, start_d, end_d, interval, zone)


# --------------------------------------------------------------------------- hot spots


def unit_hotspots(
    engine: Bind,
    level: str = "grid",
    *,
    metric: str = "incidents",
    start: Any = None,
    end: Any = None,
    categories: Categories = None,
    version: int | None = None,
    as_of: Any = None,
    now: Any = None,
    weights: str = "queen",
    permutations: int = 0,
    fdr: bool = True,
    seed: int | None = 0,
    tz: str | None = None,
    cache: UnitCache | None = None,
) -> pd.DataFrame:
    """Getis-Ord Gi* of a metric over the units of a level (:class:`geogrid.core.hotspots.GiStar`).

    ``metric`` is a numeric column of :func:`load_metrics` (NaN counts as 0). Spatial
    weights (queen/rook contiguity or a distance band) are kept in ``cache`` per version
    and level. ``permutations=0`` uses the analytical normal p-values (fast); with
    permutations, the conditional randomisation p-values. Classes are after
    Benjamini–Hochberg when ``fdr``.

    Returns
    -------
    DataFrame: code, name, value, z, p_value, p_fdr, class (``hot_99`` … ``cold_99``,
    ``not_significant``); ``attrs`` as :func:`load_metrics` plus ``metric``. When the metric
    is the same in every unit, every unit is ``not_significant`` (z NaN).
    """
    cache = cache if cache is not None else UnitCache()
    m = load_metrics(
        engine,
        level,
        start=start,
        end=end,
        categories=categories,
        version=version,
        as_of=as_of,
        now=now,
        tz=tz,
        cache=cache,
    )
    return hotspots_of(
        engine,
        m,
        metric,
        weights=weights,
        permutations=permutations,
        fdr=fdr,
        seed=seed,
        cache=cache,
    )


def hotspots_of(
    engine: Bind,
    metrics_gdf: gpd.GeoDataFrame,
    metric: str = "incidents",
    *,
    weights: str = "queen",
    permutations: int = 0,
    fdr: bool = True,
    seed: int | None = 0,
    cache: UnitCache | None = None,
) -> pd.DataFrame:
    """Gi* of a column of a :func:`load_metrics` result (see :func:`unit_hotspots`); rows
    are aligned with ``metrics_gdf``."""
    m = metrics_gdf
    numeric = [k for k in METRICS if k in m.columns and pd.api.types.is_numeric_dtype(m[k])]
    if metric not in numeric:
        raise InvalidInput("metric", metric, "one of " + ", ".join(numeric))
    y = m[metric].astype(float).fillna(0.0).to_numpy()
    out = pd.DataFrame({"code": m["code"].to_numpy(), "name": m["name"].to_numpy(), "value": y})
    if len(y) < 3 or np.ptp(y) == 0:
        out = out.assign(z=np.nan, p_value=np.nan, p_fdr=np.nan, **{"class": "not_significant"})
    else:
        with _connect(engine) as conn:
            w = _weights_of(
                conn, cache if cache is not None else UnitCache(), m, m.attrs["version_id"], weights
            )
        g = GiStar(y, w, permutations=int(permutations), fdr=fdr, seed=seed)
        f = g.to_frame()
        out = out.assign(
            z=f["z"].to_numpy(),
            p_value=f["p_value"].to_numpy(),
            p_fdr=f["p_fdr"].to_numpy(),
            **{"class": np.asarray(f["class"].astype(str))},
        )
    out.attrs.update(m.attrs, metric=metric)
    return out
