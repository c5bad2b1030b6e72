"""The grid worker's monthly register (社区网格员为民服务事项登记表) and its roll-ups.

Definitions, for a calendar month in the city's local time (``settings.city.timezone``):

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

This module is pure: :func:`register_frame` turns the month's rows
(:func:`geogrid.store.workflow.register_rows`) into the register;
:func:`geogrid.services.register.monthly_register` reads them for a month.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geogrid.core.hierarchy import CODE_LENGTH
from geogrid.errors import InvalidInput

__all__ = ["REGISTER_LEVELS", "check_register_level", "register_frame"]

#: the rows a register can have: one per worker, or per unit of an upper level
REGISTER_LEVELS = ("worker", "community", "street", "district")
_UPPER = REGISTER_LEVELS[1:]


def check_register_level(level: str) -> str:
    """``level`` if it is one of :data:`REGISTER_LEVELS`, else InvalidInput.

    >>> check_register_level("street")
    'street'
    """
    if level not in REGISTER_LEVELS:
        raise InvalidInput("level", level, "one of " + ", ".join(REGISTER_LEVELS))
    return level


def _hours(handled: pd.DataFrame) -> pd.Series:
    if handled.empty:
        return pd.Series(dtype=float)
    d = pd.to_datetime(handled["resolved_at"], utc=True) - pd.to_datetime(
        handled["reported_at"], utc=True
    )
    return d.dt.total_seconds() / 3600.0


def _worker_units(workers: pd.DataFrame, units: pd.DataFrame) -> pd.DataFrame:
    """Workers with the community, street and district of their first grid (from the
    published parent links, else the code prefix) and ``grid_codes`` joined by commas."""
    parent = dict(zip(units["code"], units["parent_code"], strict=True))
    w = workers.copy()
    first = w["grid_codes"].map(lambda g: g[0] if len(g) else None)
    chain: dict[str, list[str | None]] = {lv: [] for lv in _UPPER}
    for g in first:
        code = g
        for lv in _UPPER:
            up = parent.get(code) if code is not None else None
            if up is None and g is not None:
                up = g[: CODE_LENGTH[lv]]
            chain[lv].append(up)
            code = up
    for lv, vals in chain.items():
        w[f"{lv}_code"] = vals
    w["grid_codes"] = w["grid_codes"].map(lambda g: ",".join(g))
    return w


def register_frame(
    month: str,
    workers: pd.DataFrame,
    reported: pd.DataFrame,
    handled: pd.DataFrame,
    units: pd.DataFrame,
    level: str = "worker",
) -> pd.DataFrame:
    """The register of a month from its rows, per worker or rolled up to a level.

    Parameters
    ----------
    month : str
        ``YYYY-MM`` (written in the ``month`` column).
    workers : DataFrame
        worker_id, worker_name, ref, grid_codes (sorted list of grid codes).
    reported : DataFrame
        worker_id, id: incidents the workers reported in the month.
    handled : DataFrame
        worker_id, id, reported_at, resolved_at, due_at: incidents the workers handled.
    units : DataFrame
        code, name, level, parent_code of the published boundary version.
    level : str
        One of :data:`REGISTER_LEVELS`.

    Returns
    -------
    DataFrame. ``level='worker'``: month, worker_id, worker_name, ref, grid_codes,
    community_code, street_code, district_code, reported, handled, on_time, on_time_rate,
    median_hours. Other levels: month, level, code, name, workers, reported, handled,
    on_time, on_time_rate, median_hours (one row per unit that has a worker).

    >>> workers = pd.DataFrame({"worker_id": [1], "worker_name": ["Li"], "ref": ["w1"],
    ...                         "grid_codes": [["450902001001001"]]})
    >>> reported = pd.DataFrame({"worker_id": [1, 1], "id": [10, 11]})
    >>> handled = pd.DataFrame({"worker_id": [1], "id": [10],
    ...     "reported_at": [pd.Timestamp("2026-03-02T02:00Z")],
    ...     "resolved_at": [pd.Timestamp("2026-03-02T08:00Z")],
    ...     "due_at": [pd.Timestamp("2026-03-03T02:00Z")]})
    >>> units = pd.DataFrame(columns=["code", "name", "level", "parent_code"])
    >>> r = register_frame("2026-03", workers, reported, handled, units)
    >>> row = r.iloc[0]
    >>> int(row["reported"]), int(row["handled"]), float(row["median_hours"]), row["street_code"]
    (2, 1, 6.0, '450902001')
    """
    check_register_level(level)
    names = dict(zip(units["code"], units["name"], strict=True))
    w = _worker_units(workers, units)
    codes = w[["worker_id", "community_code", "street_code", "district_code"]]
    handled = handled.assign(hours=_hours(handled))
    handled["on_time"] = pd.to_datetime(handled["resolved_at"], utc=True) <= pd.to_datetime(
        handled["due_at"], utc=True
    )
    handled = handled.merge(codes, on="worker_id", how="inner")
    reported = reported.merge(codes, on="worker_id", how="inner")

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
