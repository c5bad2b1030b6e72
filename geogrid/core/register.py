"""The grid worker's monthly register (社区网格员为民服务事项登记表) and its roll-ups.

Definitions, for a calendar month in local time (Asia/Shanghai, UTC+8, by default):

* **reported** — incidents whose ``reporter_id`` is the worker and whose ``reported_at``
  falls in the month.
* **handled** — incidents whose ``assignee_id`` is the worker *now*, whose status is
  ``resolved`` or ``closed``, and whose ``resolved_at`` falls in the month. (An incident
  escalated away from the worker is credited to whoever it was assigned to when resolved;
  a reopened incident has no ``resolved_at`` until it is resolved again; rejected and
  duplicate reports are not "handled".)
* **on_time** — handled incidents with ``resolved_at <= due_at``
  (``due_at = reported_at + limit_hours`` of the category).
* **on_time_rate** — ``on_time / handled`` (NaN when nothing was handled).
* **median_hours** — the median of ``resolved_at - reported_at`` in hours over the handled
  incidents (NaN when none).

Roll-ups (community, street, district) group workers by the unit their first grid (lowest
code) belongs to in the published boundary version (falling back to the code prefix when
the grid is not in it). Counts are sums of the workers' rows; medians are recomputed from
the underlying incidents, never averaged.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine

from geogrid.core.hierarchy import CODE_LENGTH
from geogrid.errors import InvalidInput

__all__ = ["monthly_register", "month_bounds", "REGISTER_LEVELS"]

REGISTER_LEVELS = ("worker", "community", "street", "district")
_PREFIX = CODE_LENGTH


def month_bounds(month: str, tz: str = "Asia/Shanghai") -> tuple[datetime, datetime]:
    """``[start, end)`` of a month ``YYYY-MM`` in time zone ``tz``.

    >>> [d.isoformat() for d in month_bounds("2026-12")]
    ['2026-12-01T00:00:00+08:00', '2027-01-01T00:00:00+08:00']
    """
    m = re.fullmatch(r"(\d{4})-(\d{2})", str(month or ""))
    if not m or not 1 <= int(m.group(2)) <= 12 or not 1970 <= int(m.group(1)) < 2200:
        raise InvalidInput(
            "month", month, "a month as YYYY-MM from 1970-01 to 2199-12, e.g. 2026-05"
        )
    y, mo = int(m.group(1)), int(m.group(2))
    zone = ZoneInfo(tz)
    start = datetime(y, mo, 1, tzinfo=zone)
    end = datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=zone)
    return start, end


def _hours(handled: pd.DataFrame) -> pd.Series:
    if handled.empty:
        return pd.Series(dtype=float)
    d = pd.to_datetime(handled["resolved_at"], utc=True) - pd.to_datetime(
        handled["reported_at"], utc=True
    )
    return d.dt.total_seconds() / 3600.0


def monthly_register(
    engine: Engine | Connection,
    month: str,
    level: str = "worker",
    *,
    tz: str = "Asia/Shanghai",
) -> pd.DataFrame:
    """The register of a month, per worker or rolled up to a level.

    Parameters
    ----------
    engine : database
    month : ``YYYY-MM``
    level : ``worker`` (one row per grid worker), ``community``, ``street`` or ``district``
    tz : time zone of the month's bounds

    Returns
    -------
    DataFrame. ``level='worker'``: month, worker_id, worker_name, ref, grid_codes,
    community_code, street_code, district_code, reported, handled, on_time, on_time_rate,
    median_hours. Other levels: month, level, code, name, workers, reported, handled,
    on_time, on_time_rate, median_hours (one row per unit that has a worker).
    """
    from geogrid.store.workflow import register_rows

    if level not in REGISTER_LEVELS:
        raise InvalidInput("level", level, "one of " + ", ".join(REGISTER_LEVELS))
    start, end = month_bounds(month, tz)
    workers, reported, handled, units = register_rows(engine, start, end)

    parent = dict(zip(units["code"], units["parent_code"], strict=True))
    names = dict(zip(units["code"], units["name"], strict=True))
    w = workers.copy()
    first = w["grid_codes"].map(lambda g: g[0] if len(g) else None)
    chain = {"community": [], "street": [], "district": []}
    for g in first:
        code = g
        for lv in ("community", "street", "district"):
            up = parent.get(code) if code is not None else None
            if up is None and g is not None:
                up = g[: _PREFIX[lv]]
            chain[lv].append(up)
            code = up
    for lv, vals in chain.items():
        w[f"{lv}_code"] = vals
    w["grid_codes"] = w["grid_codes"].map(lambda g: ",".join(g))

    handled = handled.assign(hours=_hours(handled))
    handled["on_time"] = pd.to_datetime(handled["resolved_at"], utc=True) <= pd.to_datetime(
        handled["due_at"], utc=True
    )
    handled = handled.merge(
        w[["worker_id", "community_code", "street_code", "district_code"]],
        on="worker_id",
        how="inner",
    )
    reported = reported.merge(
        w[["worker_id", "community_code", "street_code", "district_code"]],
        on="worker_id",
        how="inner",
    )

    key = "worker_id" if level == "worker" else f"{level}_code"
    rep = reported.groupby(key).size()
    grp = handled.groupby(key)
    han = grp.size()
    ont = grp["on_time"].sum()
    med = grp["hours"].median()

    if level == "worker":
        out = w[
            [
                "worker_id",
                "worker_name",
                "ref",
                "grid_codes",
                "community_code",
                "street_code",
                "district_code",
            ]
        ].copy()
        idx = out["worker_id"]
    else:
        counts = w.groupby(key).size()
        out = pd.DataFrame(
            {
                "level": level,
                "code": counts.index,
                "name": [names.get(c) for c in counts.index],
                "workers": counts.to_numpy(),
            }
        )
        idx = out["code"]
    out.insert(0, "month", month)
    out["reported"] = idx.map(rep).fillna(0).astype(int).to_numpy()
    out["handled"] = idx.map(han).fillna(0).astype(int).to_numpy()
    out["on_time"] = idx.map(ont).fillna(0).astype(int).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["on_time_rate"] = np.where(
            out["handled"] > 0, out["on_time"] / out["handled"].where(out["handled"] > 0, 1), np.nan
        )
    out["median_hours"] = idx.map(med).astype(float).to_numpy()
    return out.reset_index(drop=True)
