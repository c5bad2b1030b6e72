"""The SQL behind :mod:`geogrid.services.metrics`: per-unit aggregates of incidents, the rows
the vectorised (pandas) path needs, worker assignments, unit totals, unit fingerprints and
trend counts. Rows in, rows out: no caches, no orchestration.

Level columns are chosen from a fixed mapping (``grid`` → ``grid_code`` …), never from user
text; every value is a bound parameter. Times are timezone-aware; PostgreSQL compares
``timestamptz`` values in UTC.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, text

from geogrid.core.hierarchy import LEVEL_COLUMN
from geogrid.core.lifecycle import DONE_STATUSES, HANDLED_STATUSES, OPEN_STATUSES
from geogrid.store.columns import fetch_columns
from geogrid.store.engine import connection as _connect

__all__ = [
    "INCIDENT_FRAME_COLUMNS",
    "aggregate_units",
    "category_efforts",
    "grid_totals",
    "incident_rows",
    "incident_time_range",
    "metric_rows",
    "trend_counts",
    "unit_fingerprint",
    "worker_fte",
]

_RESOLVED = HANDLED_STATUSES  # resolved or closed: the incidents that count as resolved

#: columns :func:`incident_rows` can return (``lon``/``lat`` are EPSG:4326 degrees)
INCIDENT_FRAME_COLUMNS = {
    "id": "i.id",
    "category": "i.category",
    "status": "i.status",
    "reported_at": "i.reported_at",
    "accepted_at": "i.accepted_at",
    "dispatched_at": "i.dispatched_at",
    "resolved_at": "i.resolved_at",
    "closed_at": "i.closed_at",
    "due_at": "i.due_at",
    "updated_at": "i.updated_at",
    "grid_code": "i.grid_code",
    "community_code": "i.community_code",
    "street_code": "i.street_code",
    "district_code": "i.district_code",
    "version_id": "i.version_id",
    "assigned_level": "i.assigned_level",
    "assigned_unit": "i.assigned_unit",
    "assignee_id": "i.assignee_id",
    "reporter_id": "i.reporter_id",
    "reporter_kind": "i.reporter_kind",
    "lon": "ST_X(i.geom)",
    "lat": "ST_Y(i.geom)",
}


def _frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    """A DataFrame from result rows (plain tuples: pandas is slow on Row objects)."""
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)


def _window_filter(old_done_after: bool) -> str:
    """Rows the metrics need: reported in [prev_start, end), plus incidents reported earlier
    that were still open at ``t`` (current open statuses; and, when ``t`` is in the past,
    those done after ``t`` -- that branch is a sequential scan)."""
    old = "i.status = ANY(:open)"
    if old_done_after:
        old = f"({old} OR COALESCE(i.resolved_at, i.closed_at, i.updated_at) > :t)"
    return (
        "((i.reported_at >= :ps AND i.reported_at < :e) "
        f"OR (i.reported_at < :ps AND {old})) "
        "AND (CAST(:cats AS text[]) IS NULL OR i.category = ANY(CAST(:cats AS text[])))"
    )


def _params(prev_start, start, end, t, categories, version_id) -> dict[str, Any]:
    return {
        "ps": prev_start,
        "s": start,
        "e": end,
        "t": t,
        "v": version_id,
        "cats": list(categories) if categories is not None else None,
        "open": list(OPEN_STATUSES),
        "done": list(DONE_STATUSES),
        "resolved": list(_RESOLVED),
    }


def aggregate_units(
    bind: Engine | Connection,
    level: str,
    *,
    prev_start: datetime,
    start: datetime,
    end: datetime,
    t: datetime,
    categories: list[str] | None,
    version_id: int,
    past: bool,
) -> pd.DataFrame:
    """Per-unit incident aggregates in one pass over the window's rows (PostGIS path).

    Definitions (``t`` = the time the state is read at, ``min(end, now)``):

    * ``incidents`` / ``previous_incidents``: reported in ``[start, end)`` /
      ``[prev_start, start)``.
    * ``effort_incidents``: Σ category effort over ``incidents``.
    * ``open_backlog``: reported before ``t`` and open at ``t`` (not done, or done after ``t``).
    * ``overdue``: open at ``t`` with ``due_at < t``.
    * ``resolved``: in the window, status resolved/closed with ``resolved_at <= t``;
      ``resolved_on_time``: of those, ``resolved_at <= due_at``; ``open_overdue_window``:
      in the window, open at ``t`` and past due.
    * ``median_hours`` / ``p90_hours``: ``percentile_cont`` (linear) of
      ``resolved_at - reported_at`` in hours over ``resolved`` (a second statement; with an
      Engine both statements run in parallel on two pooled connections).
    * ``mismatched``: rows whose stored attribution is not ``version_id``.

    ``past`` (``t`` before now) adds the incidents reported before ``prev_start`` and done
    after ``t`` to the backlog candidates (a sequential scan; when ``t`` is now only the
    currently open ones qualify, found through the status index).

    Returns one row per code of the level column (a ``None`` code = outside every grid).
    """
    col = LEVEL_COLUMN[level]
    counts_sql = f"""
        WITH w AS (
            SELECT i.{col} AS code, i.reported_at, i.status, i.resolved_at, i.due_at,
                   i.version_id, c.effort,
                   (i.reported_at >= :s AND i.reported_at < :e) AS in_win,
                   (i.reported_at < :t AND NOT (i.status = ANY(:done)
                        AND COALESCE(i.resolved_at, i.closed_at, i.updated_at) <= :t))
                       AS open_t,
                   (i.status = ANY(:resolved) AND i.resolved_at IS NOT NULL
                        AND i.resolved_at <= :t) AS res_t
            FROM incident i JOIN category c ON c.code = i.category
            WHERE {_window_filter(past)}
        )
        SELECT code,
            count(*) FILTER (WHERE in_win) AS incidents,
            count(*) FILTER (WHERE reported_at >= :ps AND reported_at < :s)
                AS previous_incidents,
            COALESCE(sum(effort) FILTER (WHERE in_win), 0) AS effort_incidents,
            count(*) FILTER (WHERE open_t) AS open_backlog,
            count(*) FILTER (WHERE open_t AND due_at < :t) AS overdue,
            count(*) FILTER (WHERE in_win AND res_t) AS resolved,
            count(*) FILTER (WHERE in_win AND res_t AND resolved_at <= due_at)
                AS resolved_on_time,
            count(*) FILTER (WHERE in_win AND open_t AND due_at < :t) AS open_overdue_window,
            count(*) FILTER (WHERE version_id IS DISTINCT FROM :v) AS mismatched
        FROM w GROUP BY code
    """
    # percentiles need a sort per group: only over the window's resolved rows, separately,
    # so that the counts above stay a hash aggregate (measured: 2× faster than one query)
    pct_sql = f"""
        SELECT i.{col} AS code, percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (
                   ORDER BY date_part('epoch', i.resolved_at - i.reported_at) / 3600.0) AS q
        FROM incident i
        WHERE i.reported_at >= :s AND i.reported_at < :e AND i.status = ANY(:resolved)
          AND i.resolved_at IS NOT NULL AND i.resolved_at <= :t
          AND (CAST(:cats AS text[]) IS NULL OR i.category = ANY(CAST(:cats AS text[])))
        GROUP BY 1
    """
    params = _params(prev_start, start, end, t, categories, version_id)

    def run(sql: str, conn: Connection | None = None) -> Sequence[Any]:
        with _connect(conn if conn is not None else bind) as c:
            c.execute(text("SET LOCAL work_mem = '64MB'"))
            return c.execute(text(sql), params).all()

    if isinstance(bind, Engine):  # two pooled connections: the statements run in parallel
        with ThreadPoolExecutor(max_workers=2) as ex:
            # the request's statement budget (a context variable) goes with the statement
            fut = ex.submit(contextvars.copy_context().run, run, pct_sql)
            counts = run(counts_sql)
            pct = fut.result()
    else:
        counts, pct = run(counts_sql), run(pct_sql)
    cols = [
        "code",
        "incidents",
        "previous_incidents",
        "effort_incidents",
        "open_backlog",
        "overdue",
        "resolved",
        "resolved_on_time",
        "open_overdue_window",
        "mismatched",
    ]
    df = _frame(counts, cols)
    df["effort_incidents"] = df["effort_incidents"].astype(float)
    q = {code: (float(v[0]), float(v[1])) for code, v in pct if v is not None}
    df["median_hours"] = df["code"].map(lambda c: q.get(c, (np.nan, np.nan))[0]).astype(float)
    df["p90_hours"] = df["code"].map(lambda c: q.get(c, (np.nan, np.nan))[1]).astype(float)
    return df


def metric_rows(
    bind: Engine | Connection,
    *,
    prev_start: datetime,
    start: datetime,
    end: datetime,
    t: datetime,
    categories: list[str] | None,
    version_id: int,
    with_points: bool,
    past: bool,
) -> pd.DataFrame:
    """The rows the vectorised path aggregates (same selection as :func:`aggregate_units`):
    category, effort, status, reported_at, resolved_at, due_at, done_at, version_id, the four
    codes and, with ``with_points``, lon/lat (EPSG:4326).

    Times travel as epoch seconds (float8, microsecond precision) and become UTC
    timestamps here: parsing datetimes row by row in the driver was most of the cost."""
    pts = ", ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat" if with_points else ""
    sql = (
        "SELECT i.category, c.effort, i.status, EXTRACT(EPOCH FROM i.reported_at)::float8, "
        "EXTRACT(EPOCH FROM i.resolved_at)::float8, EXTRACT(EPOCH FROM i.due_at)::float8, "
        "EXTRACT(EPOCH FROM COALESCE(i.resolved_at, i.closed_at, i.updated_at))::float8, "
        f"i.version_id, i.grid_code, i.community_code, i.street_code, i.district_code{pts} "
        "FROM incident i JOIN category c ON c.code = i.category "
        f"WHERE {_window_filter(past)}"
    )
    params = _params(prev_start, start, end, t, categories, version_id)
    with _connect(bind) as conn:
        rows = conn.execute(text(sql), params).all()
    cols = [
        "category",
        "effort",
        "status",
        "reported_at",
        "resolved_at",
        "due_at",
        "done_at",
        "version_id",
        "grid_code",
        "community_code",
        "street_code",
        "district_code",
    ]
    df = _frame(rows, cols + (["lon", "lat"] if with_points else []))
    for c in ("reported_at", "resolved_at", "due_at", "done_at"):
        sec = pd.to_numeric(df[c], errors="coerce").astype(float)
        df[c] = pd.to_datetime((sec * 1e6).round(), unit="us", utc=True)
    df["effort"] = df["effort"].astype(float)
    return df


def incident_rows(
    bind: Engine | Connection,
    *,
    start: datetime,
    end: datetime,
    categories: list[str] | None,
    columns: list[str],
) -> pd.DataFrame:
    """Incidents reported in ``[start, end)`` with the named columns (see
    :data:`INCIDENT_FRAME_COLUMNS`), ordered by ``reported_at``."""
    sel = ", ".join(f"{INCIDENT_FRAME_COLUMNS[c]} AS {c}" for c in columns)
    sql = (
        f"SELECT {sel} FROM incident i WHERE i.reported_at >= :s AND i.reported_at < :e "
        "AND (CAST(:cats AS text[]) IS NULL OR i.category = ANY(CAST(:cats AS text[]))) "
        "ORDER BY i.reported_at, i.id"
    )
    with _connect(bind) as conn:
        res = conn.execute(text(sql), {"s": start, "e": end, "cats": categories})
        return _frame(res.all(), columns)


def incident_time_range(bind: Engine | Connection) -> tuple[datetime | None, datetime | None]:
    """(first, last) ``reported_at`` of all incidents (None, None when there are none)."""
    with _connect(bind) as conn:
        row = conn.execute(text("SELECT min(reported_at), max(reported_at) FROM incident")).one()
    return row[0], row[1]


def category_efforts(bind: Engine | Connection) -> pd.DataFrame:
    """code, name_zh, name_en, limit_hours, effort, active of every category."""
    with _connect(bind) as conn:
        res = conn.execute(
            text(
                "SELECT code, name_zh, name_en, limit_hours, effort, active "
                "FROM category ORDER BY code"
            )
        )
        return pd.DataFrame(res.all(), columns=list(res.keys()))


def worker_fte(bind: Engine | Connection, version_id: int, level: str) -> pd.Series:
    """Worker full-time equivalents per unit code of a level: an active grid worker serving
    *k* grids of the version counts 1/k in each (assignments to grids outside the version
    are ignored), so FTEs add up the hierarchy. Summed in SQL (issue 12: fetching every
    assignment and grouping it in Python was a fifth of a month of grid metrics)."""
    up = {
        "grid": "g.code",
        "community": "g.parent_code",
        "street": "c.parent_code",
        "district": "s.parent_code",
    }[level]
    joins = ""
    if level in ("street", "district"):
        joins += " JOIN unit c ON c.version_id = g.version_id AND c.code = g.parent_code"
    if level == "district":
        joins += " JOIN unit s ON s.version_id = c.version_id AND s.code = c.parent_code"
    sql = (
        f"SELECT x.code, sum(1.0::float8 / x.k) AS fte FROM ("
        f"SELECT {up} AS code, count(*) OVER (PARTITION BY au.account_id) AS k "
        "FROM account a JOIN account_unit au ON au.account_id = a.id "
        "JOIN unit g ON g.version_id = :v AND g.level = 'grid' "
        f"AND g.code = au.unit_code{joins} "
        "WHERE a.role = 'worker' AND a.active) x GROUP BY x.code"
    )
    with _connect(bind) as conn:
        codes, fte = fetch_columns(conn, sql, {"v": version_id}, ["code", "fte"])
    return pd.Series(np.asarray(fte, dtype=float), index=pd.Index(codes, dtype=object))


def unit_fingerprint(
    bind: Engine | Connection, version_id: int, level: str
) -> tuple[int, int | None]:
    """(count, max id) of a version's units at a level: changes when a draft is edited by
    deleting/inserting rows, so cached geometries are refreshed."""
    with _connect(bind) as conn:
        row = conn.execute(
            text("SELECT count(*), max(id) FROM unit WHERE version_id = :v AND level = :l"),
            {"v": version_id, "l": level},
        ).one()
    return (int(row[0]), row[1])


def trend_counts(
    bind: Engine | Connection,
    level: str,
    code: str,
    *,
    start: datetime,
    end: datetime,
    interval: str,
    tz: str,
    categories: list[str] | None,
) -> pd.DataFrame:
    """Incidents of one unit per ``week``/``month`` (periods start at local midnight in
    ``tz``; weeks on Monday): period (naive local), incidents, resolved, overdue_now."""
    col = LEVEL_COLUMN[level]
    sql = (
        "SELECT date_trunc(:iv, i.reported_at AT TIME ZONE :tz) AS period, count(*) AS n, "
        "count(*) FILTER (WHERE i.status = ANY(:resolved)) AS resolved "
        f"FROM incident i WHERE i.{col} = :code AND i.reported_at >= :s AND i.reported_at < :e "
        "AND (CAST(:cats AS text[]) IS NULL OR i.category = ANY(CAST(:cats AS text[]))) "
        "GROUP BY 1 ORDER BY 1"
    )
    with _connect(bind) as conn:
        rows = conn.execute(
            text(sql),
            {
                "iv": interval,
                "tz": tz,
                "code": code,
                "s": start,
                "e": end,
                "cats": categories,
                "resolved": list(_RESOLVED),
            },
        ).all()
    return _frame(rows, ["period", "incidents", "resolved"])


def grid_totals(bind: Engine | Connection, version_id: int) -> tuple[int, float, float]:
    """(number of grids, Σ households, Σ area_m2) of a version's grids."""
    with _connect(bind) as conn:
        row = conn.execute(
            text(
                "SELECT count(*), COALESCE(sum(households), 0), COALESCE(sum(area_m2), 0) "
                "FROM unit WHERE version_id = :v AND level = 'grid'"
            ),
            {"v": version_id},
        ).one()
    return int(row[0]), float(row[1]), float(row[2])
