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
* **svc_<kind>** — the worker's daily service register entries (``service_entry``) of each
  kind of :data:`geogrid.core.service_register.SERVICE_KINDS` whose ``day`` (a calendar
  day in the city's zone) falls in the month: ``svc_visit`` 走访入户, ``svc_mediation``
  矛盾调解, ``svc_paperwork`` 代办服务, ``svc_hazard`` 隐患排查, ``svc_policy`` 政策宣传,
  ``svc_other`` 其他; **entries** — their total; **people_served** — the sum of their
  ``people_count``.

Roll-ups (community, street, district) group workers by the unit their first grid (lowest
code) belongs to in the published boundary version (falling back to the code prefix when
the grid is not in it). Counts are sums of the workers' rows; medians are recomputed from
the underlying incidents, never averaged.

The register's tabular form (the columns of the paper form, Chinese headers) is
:func:`register_table`; the exports (Excel, PDF) lay it out.

This module is pure: :func:`register_frame` turns the month's rows
(:func:`geogrid.store.workflow.register_rows`) into the register;
:func:`geogrid.services.register.monthly_register` reads them for a month.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from geogrid.core.hierarchy import CODE_LENGTH
from geogrid.core.service_register import SERVICE_KINDS, register_column
from geogrid.errors import InvalidInput

__all__ = [
    "REGISTER_LEVELS",
    "SERVICE_COLUMNS",
    "ENTRY_FRAME_COLUMNS",
    "check_register_level",
    "register_frame",
    "register_table",
    "register_title",
]

#: the rows a register can have: one per worker, or per unit of an upper level
REGISTER_LEVELS = ("worker", "community", "street", "district")
_UPPER = REGISTER_LEVELS[1:]
#: the register's columns counting service entries, one per kind, in the form's order
SERVICE_COLUMNS = tuple(register_column(k.code) for k in SERVICE_KINDS)
#: the columns of the entries frame :func:`register_frame` takes
ENTRY_FRAME_COLUMNS = ("worker_id", "id", "kind", "people_count")


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
    entries: pd.DataFrame | None = None,
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
    entries : DataFrame, optional
        worker_id, id, kind, people_count: the workers' service entries of the month
        (none when omitted).

    Returns
    -------
    DataFrame. ``level='worker'``: month, worker_id, worker_name, ref, grid_codes,
    community_code, street_code, district_code, reported, handled, on_time, on_time_rate,
    median_hours, then :data:`SERVICE_COLUMNS`, entries, people_served. Other levels:
    month, level, code, name, workers, and the same counts (one row per unit that has a
    worker).

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
    >>> entries = pd.DataFrame({"worker_id": [1, 1, 1], "id": [1, 2, 3],
    ...     "kind": ["visit", "visit", "policy"], "people_count": [2, 1, 30]})
    >>> r = register_frame("2026-03", workers, reported, handled, units, "street", entries)
    >>> r.loc[0, ["svc_visit", "svc_policy", "svc_other", "entries", "people_served"]].tolist()
    [2, 1, 0, 3, 33]
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
    ent = pd.DataFrame(columns=list(ENTRY_FRAME_COLUMNS)) if entries is None else entries
    ent = ent.merge(codes, on="worker_id", how="inner")
    for k in SERVICE_KINDS:
        per = ent[ent["kind"] == k.code].groupby(key).size()
        out[register_column(k.code)] = idx.map(per).fillna(0).astype(int).to_numpy()
    out["entries"] = out[list(SERVICE_COLUMNS)].sum(axis=1).astype(int)
    people = pd.to_numeric(ent["people_count"], errors="coerce").fillna(0).groupby(ent[key]).sum()
    out["people_served"] = idx.map(people).fillna(0).astype(int).to_numpy()
    return out.reset_index(drop=True)


def register_title(month: str, unit_name: str | None = None) -> str:
    """The form's title for a month (and a unit).

    >>> register_title("2026-03", "江滨社区")
    '江滨社区 社区网格员为民服务事项登记表（2026年03月）'
    """
    y, m = month.split("-")
    head = f"{unit_name} " if unit_name else ""
    return f"{head}社区网格员为民服务事项登记表（{y}年{m}月）"


#: the form's columns: (register column, Chinese header) for each level's rows
_WORKER_HEAD = (
    ("worker_name", "网格员"),
    ("ref", "工号"),
    ("grid_codes", "所属网格"),
    ("community_code", "所属社区"),
)
_UNIT_HEAD = (("code", "单位代码"), ("name", "单位名称"), ("workers", "网格员人数"))
_COUNTS = (
    *((register_column(k.code), k.name_zh) for k in SERVICE_KINDS),
    ("entries", "服务事项合计"),
    ("people_served", "服务人次"),
    ("reported", "上报事件"),
    ("handled", "办结事件"),
    ("on_time", "按时办结"),
    ("on_time_rate", "按时办结率"),
    ("median_hours", "办结时长中位数（小时）"),
)


def register_table(frame: pd.DataFrame, level: str = "worker") -> tuple[list[str], list[list[Any]]]:
    """The register in its tabular form: the Chinese headers and one list of cells per row
    (序号 first; the on-time rate as a percentage text, hours with one decimal, empty
    cells for NaN), then a 合计 (total) row summing the counts.

    >>> f = pd.DataFrame({"code": ["450902001001"], "name": ["江滨社区"], "workers": [3],
    ...     **{c: [1] for c, _ in _COUNTS}})
    >>> f["on_time_rate"] = [0.5]
    >>> head, rows = register_table(f, "community")
    >>> head[:4], rows[0][-2:], rows[-1][0]
    (['序号', '单位代码', '单位名称', '网格员人数'], ['50.0%', '1.0'], '合计')
    """
    check_register_level(level)
    lead = _WORKER_HEAD if level == "worker" else _UNIT_HEAD
    cols = [c for c, _ in (*lead, *_COUNTS)]
    head = ["序号", *[h for _, h in (*lead, *_COUNTS)]]
    rows: list[list[Any]] = []
    for i, (_, r) in enumerate(frame.iterrows(), start=1):
        cells: list[Any] = [i]
        for c in cols:
            v = r.get(c)
            if v is None or (isinstance(v, float) and np.isnan(v)):
                cells.append("")
            elif c == "on_time_rate":
                cells.append(f"{float(v) * 100:.1f}%")
            elif c == "median_hours":
                cells.append(f"{float(v):.1f}")
            elif isinstance(v, (np.integer, int)) and not isinstance(v, bool):
                cells.append(int(v))
            else:
                cells.append(str(v))
        rows.append(cells)
    summed = {c for c, _ in _COUNTS if c not in ("on_time_rate", "median_hours")}
    if level != "worker":
        summed.add("workers")
    total: list[Any] = ["合计"]
    for c in cols:
        total.append(int(frame[c].sum()) if c in summed and c in frame else "")
    handled = int(frame["handled"].sum()) if "handled" in frame else 0
    if handled and "on_time" in frame:
        total[cols.index("on_time_rate") + 1] = f"{frame['on_time'].sum() / handled * 100:.1f}%"
    rows.append(total)
    return head, rows
