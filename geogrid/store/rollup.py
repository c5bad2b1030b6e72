"""Per-unit aggregates of a window from the daily rollup ``incident_daily`` (migration
0016), with the same columns and numbers as :func:`geogrid.store.metrics.aggregate_units`.

What comes from where (``t`` = the time the state is read at):

* ``incidents``, ``previous_incidents``, ``effort_incidents`` and the window part of
  ``mismatched`` depend only on the day an incident was reported: whole local days of the
  rollup's zone are summed from ``incident_daily``; the partial days at the edges of
  ``[prev_start, start)`` and ``[start, end)`` (a window not on the rollup's midnights)
  are counted on ``incident`` (``reported_at`` index; partitions pruned).
* ``open_backlog``, ``overdue``, ``open_overdue_window`` are a state at ``t``, not a sum
  over report days: counted on ``incident`` over the incidents open now (the
  ``incident_status_due`` index) plus, when needed, those done after ``t`` (the partial
  ``incident_done_at`` index). Bounded by the backlog and by what was closed since ``t``,
  not by the history.
* ``resolved``, ``resolved_on_time`` and the median/p90 hours to resolve are counted in
  the one statement that must read the window's resolved incidents anyway (percentiles
  are not additive: exact medians need the values). Bounded by the window's resolved
  incidents (a month), not by the history.

Sums over categories multiply a day's count by the category's effort (the same
``category.effort`` the base path adds per row; equal up to float rounding).
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, text

from geogrid.core.hierarchy import LEVEL_COLUMN
from geogrid.core.lifecycle import DONE_STATUSES, HANDLED_STATUSES, OPEN_STATUSES
from geogrid.store.columns import fetch_columns
from geogrid.store.engine import connection as _connect

__all__ = ["aggregate_units_rollup", "rollup_zone", "unit_codes_meeting", "whole_days"]

# Status lists are written into the SQL as literals (constants of core, never user input)
# so that the planner can match the partial indexes' predicates in generic plans too.
_OPEN = ", ".join(f"'{s}'" for s in OPEN_STATUSES)
_DONE = ", ".join(f"'{s}'" for s in DONE_STATUSES)
_HANDLED = ", ".join(f"'{s}'" for s in HANDLED_STATUSES)
_DONE_AT = "COALESCE(i.resolved_at, i.closed_at, i.updated_at)"
_CATS = "(CAST(:cats AS text[]) IS NULL OR {a}.category = ANY(CAST(:cats AS text[])))"
_CODES = "(CAST(:codes AS text[]) IS NULL OR {a}.{col} = ANY(CAST(:codes AS text[])))"


def rollup_zone(bind: Engine | Connection) -> str | None:
    """The zone of the rollup's days, or None when the database has no rollup."""
    with _connect(bind) as conn:
        if conn.execute(text("SELECT to_regprocedure('incident_daily_zone()')")).scalar() is None:
            return None
        return str(conn.execute(text("SELECT incident_daily_zone()")).scalar_one())


def _midnight(d: date, zone: ZoneInfo) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=zone)


def whole_days(start: datetime, end: datetime, zone: str) -> tuple[date, date]:
    """``(first, stop)``: the local days ``first <= day < stop`` of ``zone`` that lie
    wholly in ``[start, end)`` (``first == stop`` when none does).

    >>> from datetime import UTC
    >>> whole_days(datetime(2026, 5, 1, 16, tzinfo=UTC), datetime(2026, 5, 4, 3, tzinfo=UTC),
    ...            "Asia/Shanghai")
    (datetime.date(2026, 5, 2), datetime.date(2026, 5, 4))
    """
    z = ZoneInfo(zone)
    first = start.astimezone(z).date()
    if _midnight(first, z) < start:
        first += timedelta(days=1)
    stop = end.astimezone(z).date()  # its midnight is <= end
    return first, max(first, stop)


def _edges(a: datetime, b: datetime, days: tuple[date, date], zone: str) -> list[datetime]:
    """The partial pieces of ``[a, b)`` around its whole days, as [lo, hi) pairs."""
    z = ZoneInfo(zone)
    if days[0] == days[1]:
        return [a, b, b, b]
    return [a, _midnight(days[0], z), _midnight(days[1], z), b]


def aggregate_units_rollup(
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
    zone: str,
    codes: list[str] | None = None,
) -> pd.DataFrame:
    """Per-unit aggregates of a window (as :func:`geogrid.store.metrics.aggregate_units`:
    same columns, same definitions and selection, one row per code with any figure)
    from the rollup whose days are in ``zone`` (:func:`rollup_zone`).

    ``codes``: only these units of the level (the incremental refresh of a map's
    metrics frame after a few reports); None: every unit.

    With an Engine the three statements run on three pooled connections at once.
    """
    col = LEVEL_COLUMN[level]
    code_d, code_i = _CODES.format(a="d", col=col), _CODES.format(a="i", col=col)
    wd = whole_days(start, end, zone)
    pd_ = whole_days(prev_start, start, zone)
    we, pe = _edges(start, end, wd, zone), _edges(prev_start, start, pd_, zone)
    params: dict[str, Any] = {
        "ps": prev_start,
        "s": start,
        "e": end,
        "t": t,
        "v": version_id,
        "cats": list(categories) if categories is not None else None,
        "codes": list(codes) if codes is not None else None,
        "w0": wd[0],
        "w1": wd[1],
        "p0": pd_[0],
        "p1": pd_[1],
        **{f"we{k}": v for k, v in enumerate(we)},
        **{f"pe{k}": v for k, v in enumerate(pe)},
    }
    in_w = "((i.reported_at >= :we0 AND i.reported_at < :we1) OR (i.reported_at >= :we2 AND i.reported_at < :we3))"
    in_p = "((i.reported_at >= :pe0 AND i.reported_at < :pe1) OR (i.reported_at >= :pe2 AND i.reported_at < :pe3))"
    # one hash aggregate by code over the rollup's days and the edges' rows (a category's
    # effort joined per row, the version compared per row: no second grouping level)
    counts_sql = f"""
        SELECT r.code, sum(r.inc)::bigint AS inc, sum(r.prev)::bigint AS prev,
               sum(r.inc * c.effort)::float8 AS effort,
               COALESCE(sum(r.inc + r.prev) FILTER (
                   WHERE r.version_id IS DISTINCT FROM :v), 0)::bigint AS mismatched
        FROM (
            SELECT d.{col} AS code, d.version_id, d.category,
                   CASE WHEN d.day >= :w0 AND d.day < :w1 THEN d.incidents ELSE 0 END AS inc,
                   CASE WHEN d.day >= :p0 AND d.day < :p1 THEN d.incidents ELSE 0 END AS prev
            FROM incident_daily d
            WHERE ((d.day >= :w0 AND d.day < :w1) OR (d.day >= :p0 AND d.day < :p1))
              AND {_CATS.format(a="d")} AND {code_d}
            UNION ALL
            SELECT i.{col}, i.version_id, i.category,
                   CASE WHEN {in_w} THEN 1 ELSE 0 END, CASE WHEN {in_p} THEN 1 ELSE 0 END
            FROM incident i
            WHERE ({in_w} OR {in_p}) AND {_CATS.format(a="i")} AND {code_i}
        ) r JOIN category c ON c.code = r.category
        GROUP BY r.code
    """
    # the selection of the base path: reported in [prev_start, end) whatever the status,
    # or earlier and open now (or, for a past t, done after t)
    older_done = f"(i.reported_at >= :ps{' OR true' if past else ''})"
    backlog_sql = f"""
        SELECT i.{col} AS code, count(*) AS backlog,
               count(*) FILTER (WHERE i.due_at < :t) AS overdue,
               count(*) FILTER (WHERE i.reported_at >= :s AND i.reported_at < :e
                                AND i.due_at < :t) AS overdue_window,
               count(*) FILTER (WHERE i.reported_at < :ps
                                AND i.version_id IS DISTINCT FROM :v) AS mismatched
        FROM incident i
        WHERE i.reported_at < :t AND {_CATS.format(a="i")} AND {code_i}
          AND (i.status IN ({_OPEN})
               OR (i.status IN ({_DONE}) AND {_DONE_AT} > :t AND {older_done}))
        GROUP BY 1
    """
    # hours as float8 (date_part): EXTRACT returns numeric since PostgreSQL 14, and the
    # per-grid sorts of numerics were a third of this statement (issue 12). Grouped by the
    # code in the C collation (the same groups: equality does not depend on it): the rows
    # are sorted by memcmp, and the planner cannot walk the (code, reported_at) index for
    # the order instead — at a province's month that visited 7.9 M rows at random, 17 s
    resolved_sql = f"""
        SELECT code, resolved, on_time, q[1] AS median, q[2] AS p90 FROM (
            SELECT i.{col} COLLATE "C" AS code, count(*) AS resolved,
                   count(*) FILTER (WHERE i.resolved_at <= i.due_at) AS on_time,
                   percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (
                       ORDER BY date_part('epoch', i.resolved_at - i.reported_at) / 3600.0) AS q
            FROM incident i
            WHERE i.reported_at >= :s AND i.reported_at < :e AND i.status IN ({_HANDLED})
              AND i.resolved_at IS NOT NULL AND i.resolved_at <= :t
              AND {_CATS.format(a="i")} AND {code_i}
            GROUP BY 1
        ) r
    """

    def run(sql: str, names: list[str]) -> list[list[Any]]:
        with _connect(bind) as c:
            c.execute(text("SET LOCAL work_mem = '64MB'"))
            return fetch_columns(c, sql, params, names)

    a_names = ["code", "inc", "prev", "effort", "mismatched"]
    b_names = ["code", "backlog", "overdue", "overdue_window", "mismatched"]
    r_names = ["code", "resolved", "on_time", "median", "p90"]
    if isinstance(bind, Engine):  # three pooled connections: the statements run at once
        with ThreadPoolExecutor(max_workers=2) as ex:
            # the request's statement budget (a context variable) goes with the statements
            f_res = ex.submit(contextvars.copy_context().run, run, resolved_sql, r_names)
            f_back = ex.submit(contextvars.copy_context().run, run, backlog_sql, b_names)
            counts = run(counts_sql, a_names)
            backlog, resolved = f_back.result(), f_res.result()
    else:
        counts = run(counts_sql, a_names)
        backlog, resolved = run(backlog_sql, b_names), run(resolved_sql, r_names)

    # one row per code seen by any statement (a None code — outside every grid — is a key
    # like any other), each statement's columns scattered to their codes' positions
    codes = list(dict.fromkeys([*counts[0], *backlog[0], *resolved[0]]))
    at = {c: i for i, c in enumerate(codes)}

    def spread(cols: list[list[Any]], i: int, fill: float | int) -> np.ndarray:
        out = np.full(len(codes), fill, dtype=float if isinstance(fill, float) else np.int64)
        if cols[0]:
            idx = np.fromiter(map(at.__getitem__, cols[0]), dtype=np.intp, count=len(cols[0]))
            out[idx] = np.asarray(cols[i], dtype=out.dtype)
        return out

    return pd.DataFrame(
        {
            "code": pd.Series(codes, dtype=object),
            "incidents": spread(counts, 1, 0),
            "previous_incidents": spread(counts, 2, 0),
            "effort_incidents": spread(counts, 3, 0.0),
            "open_backlog": spread(backlog, 1, 0),
            "overdue": spread(backlog, 2, 0),
            "resolved": spread(resolved, 1, 0),
            "resolved_on_time": spread(resolved, 2, 0),
            "open_overdue_window": spread(backlog, 3, 0),
            "mismatched": spread(counts, 4, 0) + spread(backlog, 4, 0),
            "median_hours": spread(resolved, 3, np.nan),
            "p90_hours": spread(resolved, 4, np.nan),
        }
    )


def unit_codes_meeting(
    bind: Engine | Connection, version_id: int, level: str, bboxes: Sequence[Sequence[float]]
) -> list[str]:
    """Codes of a version's units of ``level`` that meet any of the WGS84 ``bboxes``
    (west, south, east, north): the units whose metrics a batch of reports changes. A
    box of one report is a point (``ST_Envelope`` of its corners, not a degenerate
    polygon, which would meet nothing)."""
    if not bboxes:
        return []
    cols = list(zip(*[tuple(float(v) for v in b) for b in bboxes], strict=True))
    with _connect(bind) as conn:
        rows = conn.execute(
            text(
                "SELECT DISTINCT u.code FROM unnest(CAST(:w AS float8[]), CAST(:s AS float8[]), "
                "CAST(:e AS float8[]), CAST(:n AS float8[])) AS b(w, s, e, n) "
                "JOIN unit u ON u.version_id = :v AND u.level = :lv "
                "AND ST_Intersects(u.geom, ST_SetSRID(ST_Envelope(ST_MakeLine("
                "ST_MakePoint(b.w, b.s), ST_MakePoint(b.e, b.n))), 4326))"
            ),
            {
                "v": version_id,
                "lv": level,
                **{k: list(c) for k, c in zip("wsen", cols, strict=True)},
            },
        ).all()
    return sorted(str(r[0]) for r in rows)
