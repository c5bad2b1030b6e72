"""Per-unit load metrics from incident aggregates: the pure half of
:func:`geogrid.services.metrics.load_metrics`.

The database gives per-unit sums (:func:`geogrid.store.metrics.aggregate_units`) or, on the
time-travel path, the window's rows; this module turns rows into the same sums
(:func:`aggregate_incident_rows`, the vectorised twin of the SQL), derives rates from sums
(:func:`unit_metrics`: rates are recomputed from sums, never averaged; worker full-time
equivalents come summed from :func:`geogrid.store.metrics.worker_fte`) and lays out weekly
or monthly trends (:func:`fill_periods`). The definitions are in :mod:`geogrid.services.metrics`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from geogrid.core.hierarchy import LEVEL_COLUMN
from geogrid.core.lifecycle import DONE_STATUSES, HANDLED_STATUSES
from geogrid.core.loadindex import LoadWeights, load_score

__all__ = [
    "AGGREGATE_COUNTS",
    "TREND_INTERVALS",
    "aggregate_incident_rows",
    "fill_periods",
    "unit_metrics",
]

#: integer sums per unit of :func:`aggregate_incident_rows` (and of the SQL aggregate)
AGGREGATE_COUNTS = [
    "incidents",
    "previous_incidents",
    "open_backlog",
    "overdue",
    "resolved",
    "resolved_on_time",
    "open_overdue_window",
    "mismatched",
]

#: trend interval → (pandas frequency of period starts, default window in days)
TREND_INTERVALS: dict[str, tuple[str, int]] = {"week": ("W-MON", 182), "month": ("MS", 365)}


def aggregate_incident_rows(
    rows: pd.DataFrame,
    level: str,
    *,
    prev_start: datetime,
    start: datetime,
    end: datetime,
    t: datetime,
) -> pd.DataFrame:
    """Per-unit sums of the window's incident rows (the pandas twin of
    :func:`geogrid.store.metrics.aggregate_units`; same definitions, same columns).

    Parameters
    ----------
    rows : DataFrame
        As :func:`geogrid.store.metrics.metric_rows`: status, effort, reported_at,
        resolved_at, due_at, done_at (UTC timestamps) and the level's code column.
    level : str
        The level whose code column units are grouped by.
    prev_start, start, end, t : datetime (aware)
        The previous window starts at ``prev_start``; the window is ``[start, end)``; the
        state is read at ``t``.

    Returns
    -------
    DataFrame: code, :data:`AGGREGATE_COUNTS`, effort_incidents, median_hours, p90_hours
    (one row per code; a None code = outside every grid).
    """
    col = LEVEL_COLUMN[level]
    rep = rows["reported_at"]
    in_win = ((rep >= start) & (rep < end)).to_numpy()
    prev = ((rep >= prev_start) & (rep < start)).to_numpy()
    done = rows["status"].isin(DONE_STATUSES).to_numpy()
    open_t = (rep < t).to_numpy() & ~(done & (rows["done_at"] <= t).to_numpy())
    res_t = (
        rows["status"].isin(HANDLED_STATUSES)
        & rows["resolved_at"].notna()
        & (rows["resolved_at"] <= t)
    ).to_numpy()
    past_due = (rows["due_at"] < t).to_numpy()
    on_time = (rows["resolved_at"] <= rows["due_at"]).to_numpy()
    frame = pd.DataFrame(
        {
            "code": rows[col].to_numpy(dtype=object),
            "incidents": in_win.astype(np.int64),
            "previous_incidents": prev.astype(np.int64),
            "effort_incidents": np.where(in_win, rows["effort"].to_numpy(float), 0.0),
            "open_backlog": open_t.astype(np.int64),
            "overdue": (open_t & past_due).astype(np.int64),
            "resolved": (in_win & res_t).astype(np.int64),
            "resolved_on_time": (in_win & res_t & on_time).astype(np.int64),
            "open_overdue_window": (in_win & open_t & past_due).astype(np.int64),
            "mismatched": np.zeros(len(rows), dtype=np.int64),
        }
    )
    sums = frame.groupby("code", dropna=False, sort=False).sum()
    res = rows.loc[in_win & res_t]
    hours = (res["resolved_at"] - res["reported_at"]).dt.total_seconds() / 3600.0
    q = hours.groupby(res[col].to_numpy(dtype=object)).quantile(np.array([0.5, 0.9])).unstack()
    if q.empty:
        q = pd.DataFrame(columns=[0.5, 0.9], dtype=float)
    sums["median_hours"] = q[0.5].reindex(sums.index)
    sums["p90_hours"] = q[0.9].reindex(sums.index)
    return sums.reset_index().rename(columns={"index": "code"})


def unit_metrics(
    units: pd.DataFrame,
    aggregates: pd.DataFrame,
    fte: pd.Series,
    *,
    reference: tuple[float, float, float],
    weights: LoadWeights,
) -> pd.DataFrame:
    """The metrics of units from their aggregates.

    Parameters
    ----------
    units : DataFrame
        code, name, level, parent_code, population, households, area_m2 (m²).
    aggregates : DataFrame
        Per-code sums (:func:`aggregate_incident_rows` or the SQL aggregate).
    fte : Series
        Worker FTEs by code (:func:`geogrid.store.metrics.worker_fte`).
    reference : (float, float, float)
        Grid means of the load index (:func:`geogrid.core.loadindex.grid_reference`).
    weights : LoadWeights

    Returns
    -------
    DataFrame aligned with ``units`` (default index): the unit columns, the counts, rates
    (NaN where the denominator is 0), ``effort_incidents``, ``area_km2`` and ``load_index``.
    """
    # built column by column in NumPy and joined to the units once: inserting twenty
    # columns one at a time into a frame with Arrow-string labels took 13 ms (issue 12)
    n = len(units)
    index = pd.Index(units["code"].to_numpy(dtype=object))
    agg = aggregates[aggregates["code"].notna()]
    pos = index.get_indexer(agg["code"].to_numpy(dtype=object))
    rows = np.flatnonzero(pos >= 0)
    at = pos[rows]

    def spread(name: str, fill: float) -> np.ndarray:
        """The aggregate column ``name`` at the units' positions (``fill`` elsewhere and
        where it is missing)."""
        col = np.full(n, fill, dtype=float)
        if name in agg.columns:
            col[at] = pd.to_numeric(agg[name]).to_numpy(dtype=float, na_value=fill)[rows]
        return col

    new: dict[str, Any] = {c: spread(c, 0.0).astype(np.int64) for c in AGGREGATE_COUNTS}
    new["effort_incidents"] = spread("effort_incidents", 0.0)
    pop = units["population"].to_numpy(dtype=float)
    households = units["households"].to_numpy(dtype=float)
    km2 = units["area_m2"].to_numpy(dtype=float) / 1e6
    inc = new["incidents"].astype(float)
    workers = fte.reindex(index).to_numpy(dtype=float, na_value=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        new["per_1000_residents"] = np.where(pop > 0, inc / pop * 1000.0, np.nan)
        new["per_km2"] = np.where(km2 > 0, inc / km2, np.nan)
        decided = (new["resolved"] + new["open_overdue_window"]).astype(float)
        new["resolved_within_limit_share"] = np.where(
            decided > 0, new["resolved_on_time"] / decided, np.nan
        )
        new["workers"] = workers.round(6)
        new["incidents_per_worker"] = np.where(new["workers"] > 0, inc / new["workers"], np.nan)
        prev = new["previous_incidents"].astype(float)
        new["change"] = new["incidents"] - new["previous_incidents"]
        new["change_pct"] = np.where(prev > 0, new["change"] / prev * 100.0, np.nan)
    new["median_hours_to_resolve"] = spread("median_hours", np.nan)
    new["p90_hours_to_resolve"] = spread("p90_hours", np.nan)
    new["area_km2"] = km2
    new["load_index"] = load_score(
        new["effort_incidents"], households, km2, reference=reference, weights=weights
    )
    base = pd.DataFrame(units).reset_index(drop=True)
    extra = pd.DataFrame(new, index=base.index)
    return pd.concat([base.drop(columns=[c for c in new if c in base.columns]), extra], axis=1)


def fill_periods(
    counts: pd.DataFrame, start: datetime, end: datetime, interval: str, tz: str
) -> pd.DataFrame:
    """Every week (starting Monday) or calendar month of ``[start, end)`` in time zone
    ``tz``, with the counts of the periods that have any (0 elsewhere).

    Parameters
    ----------
    counts : DataFrame
        period (naive local start of the period), incidents, resolved.
    start, end : datetime (aware)
    interval : {"week", "month"}
    tz : str
        IANA time zone of the periods.

    Returns
    -------
    DataFrame: period (aware local start), incidents, resolved (int64).

    >>> from datetime import UTC
    >>> c = pd.DataFrame({"period": [pd.Timestamp("2026-02-01")], "incidents": [3],
    ...                   "resolved": [1]})
    >>> f = fill_periods(c, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC),
    ...                  "month", "UTC")
    >>> f["incidents"].tolist()
    [0, 3]
    """
    zone = ZoneInfo(tz)
    first = pd.Timestamp(start.astimezone(zone).replace(tzinfo=None)).normalize()
    last = pd.Timestamp(end.astimezone(zone).replace(tzinfo=None))
    if interval == "week":
        first = first - pd.Timedelta(days=first.weekday())
    else:
        first = first.replace(day=1)
    periods = pd.date_range(first, last, freq=TREND_INTERVALS[interval][0])
    periods = periods[periods < last]
    df = counts.copy()
    df["period"] = pd.to_datetime(df["period"])
    out = df.set_index("period")[["incidents", "resolved"]].reindex(
        periods.union(pd.DatetimeIndex(df["period"])), fill_value=0
    )
    out.index = pd.DatetimeIndex(out.index).tz_localize(zone)
    out.index.name = "period"
    return out.astype(np.int64).reset_index()
