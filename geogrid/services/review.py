"""The year-end review of grid workers (issue 14): read each worker's year, score it with
:mod:`geogrid.core.review` (method and example: ``docs/review.md``), rank and shortlist,
and export it to Excel.

Who: community, street and district admins (the workers with a grid in their units, names
clear), admin (everyone, clear), leaders and analysts (everyone, names masked). Scores
are computed over every worker of the city (the activity median and the load reference
are city-wide), then filtered to the caller's scope and ``unit``; the shortlist is drawn
from the rows shown.
"""

from __future__ import annotations

import io
from dataclasses import asdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import Connection, Engine

from geogrid.core import review as rv
from geogrid.core.accounts import Account
from geogrid.core.hierarchy import LEVEL_COLUMN, level_of_code, parent_chain
from geogrid.core.loadindex import grid_reference, load_score
from geogrid.core.masking import mask_name, mask_ref
from geogrid.core.scope import Scope
from geogrid.errors import Forbidden, InvalidInput
from geogrid.services import audit
from geogrid.settings import get_settings
from geogrid.store import residents as store
from geogrid.store.engine import connection

__all__ = [
    "REVIEW_ROLES",
    "check_unit",
    "year_bounds",
    "scheme",
    "review_frame",
    "review",
    "review_xlsx",
]

Bind = Engine | Connection

REVIEW_ROLES = frozenset(
    {"community_admin", "street_admin", "district_admin", "admin", "leader", "analyst"}
)
_FIRST_YEAR, _LAST_YEAR = 2000, 2100


def year_bounds(year: int, tz: str | None = None) -> tuple[datetime, datetime]:
    """``[1 January, next 1 January)`` of ``year`` in the city's zone."""
    if isinstance(year, bool) or not isinstance(year, int) or not _FIRST_YEAR <= year < _LAST_YEAR:
        raise InvalidInput("year", year, f"a year from {_FIRST_YEAR} to {_LAST_YEAR - 1}")
    zone = ZoneInfo(tz or get_settings().city.timezone)
    return datetime(year, 1, 1, tzinfo=zone), datetime(year + 1, 1, 1, tzinfo=zone)


def scheme() -> rv.ReviewScheme:
    """The configured scheme (setting ``review_scheme`` over the defaults)."""
    return rv.ReviewScheme.from_mapping(get_settings().review_scheme)


def check_unit(unit: str | None) -> None:
    """A unit code of digits with a level's length (InvalidInput otherwise)."""
    if unit is None:
        return
    if not (unit.isascii() and unit.isdigit()):
        raise InvalidInput("unit", unit[:40], "a unit code of digits (6, 9, 12 or 15)")
    level_of_code(unit, "unit")


def _require(actor: Account) -> None:
    if actor.role not in REVIEW_ROLES:
        raise Forbidden(
            f"role {actor.role!r} does not read the year-end review (roles: "
            + ", ".join(sorted(REVIEW_ROLES))
            + ")"
        )


def _grid_loads(conn: Connection, start: datetime, end: datetime) -> dict[str, float]:
    rows = store.grid_load_parts(conn, start, end)
    if not rows:
        return {}
    e = np.array([r["effort"] for r in rows], dtype=float)
    h = np.array([r["households"] for r in rows], dtype=float)
    a = np.array([r["area_m2"] for r in rows], dtype=float) / 1e6
    scores = load_score(e, h, a, reference=grid_reference(e, h, a))
    return {r["code"]: float(s) for r, s in zip(rows, scores, strict=True)}


def review_frame(
    bind: Bind, year: int, *, review_scheme: rv.ReviewScheme | None = None
) -> pd.DataFrame:
    """Every worker's inputs, components, score and ranks for ``year`` (no scope: the
    callers filter)."""
    start, end = year_bounds(year)
    s = review_scheme or scheme()
    with connection(bind) as conn:
        workers = [w for w in store.worker_rows(conn) if w["grids"]]
        ids = [int(w["id"]) for w in workers]
        loads = _grid_loads(conn, start, end)
        counts = {int(r["account_id"]): r for r in store.incident_counts(conn, ids, start, end)}
        sat = {
            int(r["account_id"]): r for r in store.satisfaction_of_workers(conn, ids, start, end)
        }
        ev = {int(r["account_id"]): r for r in store.evaluation_of_workers(conn, ids, start, end)}
        entries = store.service_entries_of_workers(conn, ids, start.date(), end.date())
        patrol = store.patrol_coverage_of_workers(conn, ids, start, end)
        complaints = store.complaints_of_workers(conn, ids, start, end)
    sharing: dict[str, int] = {}
    for w in workers:
        for g in w["grids"]:
            sharing[g] = sharing.get(g, 0) + 1
    rows = []
    for w in workers:
        wid = int(w["id"])
        chain = parent_chain(w["grids"][0])
        c, sa, e = counts.get(wid, {}), sat.get(wid, {}), ev.get(wid, {})
        n_patrol, coverage = patrol.get(wid, (0, np.nan))
        rows.append(
            {
                "account_id": wid,
                "name": w["name"],
                "ref": w["ref"],
                "grids": list(w["grids"]),
                **{LEVEL_COLUMN[lv]: code for lv, code in chain.items()},
                "load": rv.worker_load(loads, list(w["grids"]), sharing),
                "reported": int(c.get("reported", 0)),
                "handled": int(c.get("handled", 0)),
                "on_time": int(c.get("on_time", 0)),
                "entries": int(entries.get(wid, 0)),
                "sat_n": int(sa.get("n", 0)),
                "sat_sum": float(sa.get("score_sum") or 0.0),
                "eval_n": int(e.get("n", 0)),
                "eval_sum": float(e.get("score_sum") or 0.0),
                "patrol_n": int(n_patrol),
                "patrol_coverage": float(coverage),
                "complaints": int(complaints.get(wid, 0)),
            }
        )
    columns = [
        "name",
        "ref",
        "grids",
        *(LEVEL_COLUMN[lv] for lv in ("community", "street", "district")),
    ]
    frame = pd.DataFrame(rows, columns=[*rv.INPUT_COLUMNS, *columns, "grid_code"])
    scored = rv.rank_workers(rv.score_workers(frame, s))
    scored["eligible"] = [s.eligible(r) for r in scored.to_dict("records")]
    scored.attrs.update(year=year, start=start.isoformat(), end=end.isoformat())
    return scored


def _visible(frame: pd.DataFrame, scope: Scope, unit: str | None) -> pd.DataFrame:
    def ok(grids: list[str]) -> bool:
        if unit is not None and not any(g.startswith(unit) for g in grids):
            return False
        return any(
            scope.covers({LEVEL_COLUMN[lv]: c for lv, c in parent_chain(g).items()}) for g in grids
        )

    mask = np.array([ok(list(g)) for g in frame["grids"]], dtype=bool)
    return frame.loc[mask].reset_index(drop=True)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return None if not np.isfinite(v) else float(v)
    if v is pd.NA:
        return None
    return v


def review(
    bind: Bind, actor: Account | None, year: int, *, unit: str | None = None
) -> dict[str, Any]:
    """The review of ``year``: ``{year, scheme, median_activity_rate, workers: [...],
    shortlist: [account ids]}``; ``actor`` None is the CLI (everything, clear)."""
    if actor is not None:
        _require(actor)
    scope = Scope.of(actor) if actor is not None else Scope.system()
    check_unit(unit)
    s = scheme()
    frame = review_frame(bind, year, review_scheme=s)
    active = frame.loc[frame["activity_raw"] > 0, "activity_rate"]
    median = float(active.median()) if len(active) else None
    shown = _visible(frame, scope, unit)
    short = rv.shortlist(shown, s)
    shown["shortlisted"] = shown["account_id"].isin(short["account_id"])
    shown = shown.sort_values(["score", "account_id"], ascending=[False, True], na_position="last")
    clear = scope.personal_clear({}) or scope.kind == "units"
    if not clear:
        shown["name"] = shown["name"].map(lambda v: mask_name(str(v)) if v else v)
        shown["ref"] = shown["ref"].map(lambda v: mask_ref(str(v)) if v else v)
    else:
        audit.record_read(
            bind, scope, "review", shown["account_id"].tolist(), ["name", "ref"], {"year": year}
        )
    keep = [c for c in shown.columns if c not in ("grid_code",)]
    workers = [{k: _clean(v) for k, v in r.items()} for r in shown[keep].to_dict("records")]
    return {
        "year": year,
        "unit": unit,
        "scheme": {**asdict(s), "weights": dict(s.weights)},
        "median_activity_rate": median,
        "workers": workers,
        "shortlist": [int(i) for i in short["account_id"]],
    }


_XLSX_COLUMNS = [
    ("account_id", "编号 ID"),
    ("name", "姓名 Name"),
    ("ref", "工号 Ref"),
    ("community_code", "社区 Community"),
    ("load", "负荷 Load"),
    ("activity_raw", "工作量 Activity"),
    ("expected_activity", "应有工作量 Expected"),
    ("activity", "工作量得分 Activity"),
    ("handled", "办结 Handled"),
    ("on_time", "按时 On time"),
    ("handling", "按时率 Handling"),
    ("sat_n", "满意度答卷 Answers"),
    ("satisfaction", "满意度 Satisfaction"),
    ("eval_n", "测评答卷 Evaluations"),
    ("evaluation", "测评 Evaluation"),
    ("patrol", "巡查覆盖 Patrol"),
    ("complaints", "有效投诉 Complaints"),
    ("deduction", "扣分 Deduction"),
    ("score", "总分 Score"),
    ("rank_community", "社区排名 Rank (community)"),
    ("rank_street", "街道排名 Rank (street)"),
    ("rank_district", "区排名 Rank (district)"),
    ("eligible", "符合条件 Eligible"),
    ("shortlisted", "入围 Shortlisted"),
]


def review_xlsx(bind: Bind, actor: Account | None, year: int, *, unit: str | None = None) -> bytes:
    """The review as an Excel workbook: scores (one row per worker, every component),
    the shortlist, and the scheme used."""
    data = review(bind, actor, year, unit=unit)
    wb = Workbook()
    ws = wb.active
    ws.title = "评分 Scores"
    ws.append([f"{year}年度网格员考评 Year-end review {year}" + (f" — {unit}" if unit else "")])
    ws["A1"].font = Font(bold=True, size=13)
    ws.append([h for _, h in _XLSX_COLUMNS])
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for w in data["workers"]:
        ws.append([_cell(w.get(k)) for k, _ in _XLSX_COLUMNS])
    sl = wb.create_sheet("入围 Shortlist")
    sl.append(["编号 ID", "姓名 Name", "总分 Score"])
    by_id = {w["account_id"]: w for w in data["workers"]}
    for wid in data["shortlist"]:
        sl.append([wid, by_id[wid]["name"], by_id[wid]["score"]])
    m = wb.create_sheet("方法 Method")
    m.append(["项目 Item", "值 Value"])
    for k, v in data["scheme"]["weights"].items():
        m.append([f"weight.{k}", v])
    for k, v in data["scheme"].items():
        if k != "weights":
            m.append([k, v])
    m.append(["median_activity_rate", data["median_activity_rate"]])
    m.append(
        [
            "formula",
            "score = clip(100·Σw·c/Σw − complaint_points·complaints, 0, 100); docs/review.md",
        ]
    )
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _cell(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 4)
    if isinstance(v, list):
        return ", ".join(map(str, v))
    return v
