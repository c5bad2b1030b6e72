"""The worker's file (一人一卷, issue 14): one dossier per grid worker for their managers —
basic information, grids over time, each month's register, incidents reported / handled /
on time, the satisfaction of their incidents, evaluation rounds, trainings, awards, notes
and complaints, and the year-end review's components — as JSON, a PDF dossier (ReportLab,
the Chinese font embedded) and an Excel workbook (openpyxl).

Who: the worker's managers — community, street and district admins whose units cover one
of the worker's grids — and admin. Anyone else gets 404 (a worker outside the caller's
units does not exist for them). Every read is a clear read of personal data and is
written to the audit trail.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from typing import Any
from xml.sax.saxutils import escape

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy import Connection, Engine

from geogrid.core import review as rv
from geogrid.core.accounts import Account
from geogrid.core.hierarchy import LEVEL_COLUMN, parent_chain
from geogrid.core.scope import Scope
from geogrid.errors import Forbidden, InvalidInput, NotFound
from geogrid.services import audit, idempotency
from geogrid.services.register import PDF_FONT, monthly_register
from geogrid.services.review import check_unit, review_frame, year_bounds
from geogrid.settings import get_settings
from geogrid.store import residents as store
from geogrid.store.engine import connection, transaction

__all__ = [
    "MANAGER_ROLES",
    "list_workers",
    "resolve_worker",
    "worker_file",
    "worker_file_pdf",
    "worker_file_xlsx",
    "add_record",
]

Bind = Engine | Connection

MANAGER_ROLES = frozenset({"community_admin", "street_admin", "district_admin", "admin"})
_FONT = "WQYMicroHei"


def _now() -> datetime:
    return datetime.now(UTC)


def _codes(grid: str) -> dict[str, str]:
    return {LEVEL_COLUMN[lv]: c for lv, c in parent_chain(grid).items()}


def _manages(scope: Scope, grids: list[str]) -> bool:
    """Is the caller one of the managers of a worker with these grids?"""
    if scope.kind == "city":
        return scope.personal_clear({})  # admin and the CLI; not leaders or planners
    return scope.kind == "units" and any(scope.covers(_codes(g)) for g in grids)


def _require(actor: Account | None) -> Scope:
    if actor is None:
        return Scope.system()
    if actor.role not in MANAGER_ROLES:
        raise Forbidden(
            f"role {actor.role!r} does not read workers' files (the worker's managers: "
            + ", ".join(sorted(MANAGER_ROLES))
            + ")"
        )
    return Scope.of(actor)


def list_workers(
    bind: Bind, actor: Account | None, *, unit: str | None = None
) -> list[dict[str, Any]]:
    """The workers the caller manages (with a grid in ``unit`` when given): id, name, ref,
    active, grids with names."""
    scope = _require(actor)
    check_unit(unit)
    with connection(bind) as c:
        rows = [
            w
            for w in store.worker_rows(c)
            if _manages(scope, list(w["grids"]))
            and (unit is None or any(g.startswith(unit) for g in w["grids"]))
        ]
        names = store.unit_names(c, sorted({g for w in rows for g in w["grids"]}))
    out = [
        {
            "id": int(w["id"]),
            "name": w["name"],
            "ref": w["ref"],
            "active": bool(w["active"]),
            "grids": [{"code": g, "name": names.get(g)} for g in w["grids"]],
        }
        for w in rows
    ]
    audit.record_read(bind, scope, "worker", [w["id"] for w in out], ["name", "ref"])
    return out


def resolve_worker(bind: Bind, key: str) -> int:
    """The account id of a worker named by id, reference or name (InvalidInput when none
    or several match)."""
    with connection(bind) as c:
        rows = store.worker_rows(c)
    key = str(key).strip()
    found = [w for w in rows if str(w["id"]) == key or w["ref"] == key or w["name"] == key]
    if len(found) != 1:
        what = "no worker" if not found else f"{len(found)} workers"
        raise InvalidInput("WORKER", key, f"the id, reference or name of one worker ({what} match)")
    return int(found[0]["id"])


def _worker(conn: Connection, scope: Scope, worker_id: int) -> dict[str, Any]:
    for w in store.worker_rows(conn):
        if int(w["id"]) == int(worker_id) and _manages(scope, list(w["grids"])):
            return w
    raise NotFound(f"worker {worker_id} does not exist (or is not one you manage)")


def _months(year: int, today: date) -> list[str]:
    last = 12 if year < today.year else today.month
    return [f"{year}-{m:02d}" for m in range(1, last + 1)] if year <= today.year else []


def worker_file(
    bind: Bind, actor: Account | None, worker_id: int, *, year: int | None = None
) -> dict[str, Any]:
    """The worker's file for ``year`` (default: this year, in the city's zone)."""
    scope = _require(actor)
    tz = get_settings().city.timezone
    today = pd.Timestamp.now(tz=tz).date()
    year = year or today.year
    start, end = year_bounds(year, tz)
    with connection(bind) as c:
        w = _worker(c, scope, worker_id)
        grids = list(w["grids"])
        history = store.staffing_history(c, worker_id)
        names = store.unit_names(
            c, sorted({*grids, *(h["grid_code"] for h in history if h["grid_code"])})
        )
        chain = parent_chain(grids[0]) if grids else {}
        upper = store.unit_names(c, [v for k, v in chain.items() if k != "grid"])
        counts = store.incident_counts(c, [worker_id], start, end)[0]
        answers = store.satisfaction_list(c, worker_id, start, end)
        rounds = store.rounds_of_worker(c, worker_id)
        for rnd in rounds:
            rnd["criterion_means"] = store.criterion_means(c, rnd["id"])
        records = store.records_of(c, worker_id)
        teams = store.teams_of(c, worker_id)
    months = []
    for m in _months(year, today):
        reg = monthly_register(bind, m, "worker", scope=Scope.system())
        row = reg[reg["worker_id"] == worker_id] if "worker_id" in reg.columns else reg.iloc[0:0]
        r: dict[Any, Any] = dict(row.iloc[0].to_dict()) if len(row) else {}
        months.append(
            {
                "month": m,
                "reported": int(r.get("reported", 0) or 0),
                "handled": int(r.get("handled", 0) or 0),
                "on_time": int(r.get("on_time", 0) or 0),
                "median_hours": _num(r.get("median_hours")),
                "entries": int(r.get("entries", 0) or 0),
                "people_served": int(r.get("people_served", 0) or 0),
            }
        )
    frame = review_frame(bind, year)
    mine = frame[frame["account_id"] == worker_id]
    review_row = (
        {
            k: _num(mine.iloc[0][k])
            for k in (
                *rv.COMPONENTS,
                "load",
                "activity_raw",
                "expected_activity",
                "deduction",
                "score",
                "rank_community",
                "rank_street",
                "rank_district",
            )
        }
        if len(mine)
        else None
    )
    n = len(answers)
    scores = [a["score"] for a in answers]
    out = {
        "year": year,
        "worker": {
            "id": int(w["id"]),
            "name": w["name"],
            "ref": w["ref"],
            "role": w["role"],
            "active": bool(w["active"]),
            "created_at": w["created_at"],
            "grids": [{"code": g, "name": names.get(g)} for g in grids],
            "units": {
                lv: {"code": code, "name": upper.get(code)}
                for lv, code in chain.items()
                if lv != "grid"
            },
        },
        "grids_over_time": [
            {
                "at": h["published_at"] or h["decided_at"],
                "action": h["action"],
                "grid_code": h["grid_code"],
                "grid_name": names.get(h["grid_code"]) if h["grid_code"] else None,
                "plan": h["plan_name"],
                "published": h["published_at"] is not None,
            }
            for h in history
        ],
        "teams": [
            {
                "id": int(t["id"]),
                "name": t["name"],
                "role": t["role"],
                "since": t["added_at"],
                "grids": list(t["grids"] or []),
            }
            for t in teams
        ],
        "months": months,
        "incidents": {
            "reported": int(counts["reported"]),
            "handled": int(counts["handled"]),
            "on_time": int(counts["on_time"]),
            "on_time_share": (int(counts["on_time"]) / int(counts["handled"]))
            if counts["handled"]
            else None,
        },
        "satisfaction": {
            "answers": n,
            "mean_score": (sum(scores) / n) if n else None,
            "satisfied_share": (
                sum(1 for a in answers if a["solved"] != "no" and a["score"] >= 3) / n
            )
            if n
            else None,
            "items": answers,
        },
        "evaluations": [
            {
                "id": int(r["id"]),
                "label": r["label"],
                "grid_code": r["grid_code"],
                "grid_name": r["grid_name"],
                "opens_at": r["opens_at"],
                "closes_at": r["closes_at"],
                "answers": int(r["answers"]),
                "mean_score": _num(r["mean_score"]),
                "criterion_means": r["criterion_means"],
            }
            for r in rounds
        ],
        "records": [{**r, "kind_zh": rv.RECORD_KIND_NAMES[r["kind"]][0]} for r in records],
        "review": review_row,
    }
    audit.record_read(bind, scope, "worker", [worker_id], ["name", "ref", "file"], {"year": year})
    return out


def _num(v: Any) -> Any:
    if v is None or v is pd.NA:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    if f != f:  # NaN
        return None
    return int(f) if float(f).is_integer() and not isinstance(v, float) else f


def add_record(
    bind: Bind,
    actor: Account,
    worker_id: int,
    *,
    kind: str,
    title: str,
    at: datetime | None = None,
    detail: str | None = None,
    verified: bool = False,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Add a training, award, note or complaint to a worker's file (their managers). With
    ``idempotency_key`` a retry of the same record answers the first one (no second row);
    the same key for another record is a Conflict."""
    scope = _require(actor)
    if kind not in rv.RECORD_KINDS:
        raise InvalidInput("kind", kind, "one of " + ", ".join(rv.RECORD_KINDS))
    if not isinstance(title, str) or not 1 <= len(title.strip()) <= 200:
        raise InvalidInput("title", title, "1 to 200 characters")
    if at is not None and at.tzinfo is None:
        raise InvalidInput("at", at.isoformat(), "a date-time with a time zone")
    principal = idempotency.principal_of(actor.id)
    with transaction(bind) as c:
        _worker(c, scope, worker_id)
        first = idempotency.replay_or_claim(
            c,
            idempotency_key,
            principal=principal,
            operation="worker_record",
            request={
                "worker_id": int(worker_id),
                "kind": kind,
                "title": title.strip(),
                "at": at,
                "detail": detail,
                "verified": bool(verified),
            },
        )
        if first is not None:
            return first
        row = store.insert_record(
            c,
            {
                "account_id": int(worker_id),
                "kind": kind,
                "at": at or _now(),
                "title": title.strip(),
                "detail": detail,
                "verified": bool(verified),
                "created_by": actor.id,
            },
        )
        audit.record(
            c,
            actor=actor,
            action="worker.record",
            resource="worker",
            ids=[worker_id],
            detail={"kind": kind},
        )
        idempotency.remember(
            c, idempotency_key, principal=principal, answer=row, resource_id=row.get("id")
        )
    return row


# --------------------------------------------------------------------------- exports
def _font() -> str:
    if _FONT not in pdfmetrics.getRegisteredFontNames():
        if not PDF_FONT.exists():
            raise InvalidInput(
                "font", str(PDF_FONT), "the WenQuanYi Micro Hei font (fonts-wqy-microhei)"
            )
        pdfmetrics.registerFont(TTFont(_FONT, str(PDF_FONT), subfontIndex=0))
    return _FONT


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, datetime):
        return v.astimezone(pd.Timestamp.now(tz=get_settings().city.timezone).tzinfo).strftime(
            "%Y-%m-%d"
        )
    return str(v)


def _sections(f: dict[str, Any]) -> list[tuple[str, list[list[Any]]]]:
    """The dossier's tables: (title, rows with a header row)."""
    w = f["worker"]
    units = " / ".join(u["name"] or u["code"] for u in f["worker"]["units"].values())
    inc = f["incidents"]
    sat = f["satisfaction"]
    out: list[tuple[str, list[list[Any]]]] = [
        (
            "基本信息 Basic information",
            [
                ["项目 Item", "内容 Value"],
                ["姓名 Name", w["name"]],
                ["工号 Ref", w["ref"]],
                ["单位 Units", units],
                ["网格 Grids", "、".join(g["name"] or g["code"] for g in w["grids"])],
                ["在岗 Active", "是 yes" if w["active"] else "否 no"],
            ],
        ),
        (
            "网格变动 Grids over time",
            [["时间 When", "变动 Action", "网格 Grid", "方案 Plan"]]
            + [
                [_fmt(h["at"]), h["action"], h["grid_name"] or h["grid_code"] or "—", h["plan"]]
                for h in f["grids_over_time"]
            ],
        ),
        (
            "所在团队 Teams",
            [["团队 Team", "角色 Role", "加入 Since", "网格 Grids"]]
            + [[t["name"], t["role"], _fmt(t["since"]), "、".join(t["grids"])] for t in f["teams"]],
        ),
        (
            "月度登记 Monthly register",
            [
                [
                    "月份 Month",
                    "上报 Reported",
                    "办结 Handled",
                    "按时 On time",
                    "服务 Entries",
                    "服务人数 People",
                ]
            ]
            + [
                [
                    m["month"],
                    m["reported"],
                    m["handled"],
                    m["on_time"],
                    m["entries"],
                    m["people_served"],
                ]
                for m in f["months"]
            ],
        ),
        (
            "事件办理 Incidents",
            [
                ["上报 Reported", "办结 Handled", "按时 On time", "按时率 Share"],
                [inc["reported"], inc["handled"], inc["on_time"], _fmt(inc["on_time_share"])],
            ],
        ),
        (
            "群众满意度 Satisfaction",
            [
                ["答卷 Answers", "平均分 Mean", "满意率 Satisfied"],
                [sat["answers"], _fmt(sat["mean_score"]), _fmt(sat["satisfied_share"])],
            ],
        ),
        (
            "群众测评 Evaluation rounds",
            [["批次 Round", "网格 Grid", "答卷 Answers", "平均分 Mean"]]
            + [
                [e["label"], e["grid_name"] or e["grid_code"], e["answers"], _fmt(e["mean_score"])]
                for e in f["evaluations"]
            ],
        ),
        (
            "培训、表彰、备注 Trainings, awards, notes",
            [["日期 Date", "类别 Kind", "事项 Title", "核实 Verified"]]
            + [
                [
                    _fmt(r["at"]),
                    f"{r['kind_zh']} {r['kind']}",
                    r["title"],
                    "是" if r["verified"] else "—",
                ]
                for r in f["records"]
            ],
        ),
    ]
    if f["review"]:
        r = f["review"]
        out.append(
            (
                "年度考评 Year-end review",
                [["项目 Item", "值 Value"]]
                + [[f"{rv.COMPONENT_NAMES[k][0]} {k}", _fmt(r[k])] for k in rv.COMPONENTS]
                + [
                    ["扣分 Deduction", _fmt(r["deduction"])],
                    ["总分 Score", _fmt(r["score"])],
                    ["社区排名 Rank", _fmt(r["rank_community"])],
                ],
            )
        )
    return out


def worker_file_pdf(
    bind: Bind, actor: Account | None, worker_id: int, *, year: int | None = None
) -> bytes:
    """The dossier as a PDF (A4, the Chinese font embedded)."""
    f = worker_file(bind, actor, worker_id, year=year)
    font = _font()
    title = ParagraphStyle("t", fontName=font, fontSize=16, leading=22)
    head = ParagraphStyle("h", fontName=font, fontSize=12, leading=18, spaceBefore=8)
    cellst = ParagraphStyle("c", fontName=font, fontSize=8.5, leading=11)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=f"网格员档案 {f['worker']['name']} {f['year']}",
        author="geogrid",
    )
    story: list[Any] = [
        Paragraph(escape(f"网格员档案（一人一卷）{f['worker']['name']} · {f['year']}年"), title),
        Paragraph(
            escape(
                f"Grid worker's file: {f['worker']['name']} ({f['worker']['ref'] or ''}), {f['year']}"
            ),
            cellst,
        ),
        Spacer(1, 4 * mm),
    ]
    for name, rows in _sections(f):
        story.append(Paragraph(escape(name), head))
        if len(rows) == 1:
            rows = [*rows, ["（无 none）"] + [""] * (len(rows[0]) - 1)]
        data = [[Paragraph(escape(_fmt(v)), cellst) for v in r] for r in rows]
        t = Table(data, repeatRows=1, hAlign="LEFT")
        t.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e4e7eb")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        story.append(t)
    doc.build(story)
    return buf.getvalue()


def worker_file_xlsx(
    bind: Bind, actor: Account | None, worker_id: int, *, year: int | None = None
) -> bytes:
    """The dossier as an Excel workbook: one sheet per section."""
    f = worker_file(bind, actor, worker_id, year=year)
    wb = Workbook()
    first = True
    for name, rows in _sections(f):
        ws = wb.active if first else wb.create_sheet()
        first = False
        ws.title = name.split(" ")[0][:31]
        ws.append([name])
        ws["A1"].font = Font(bold=True)
        for r in rows:
            ws.append([v if isinstance(v, int | float) else _fmt(v) for v in r])
        for cell in ws[2]:
            cell.font = Font(bold=True)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
