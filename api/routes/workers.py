"""The worker's file (一人一卷) and the year-end review (issue 14).

* ``GET /workers?unit=`` — the workers the caller manages;
* ``GET /workers/{id}/file`` (JSON), ``file.pdf`` (the dossier, Chinese font embedded),
  ``file.xlsx``, ``file.html`` (a phone-size page of the same); ``POST /workers/{id}/records``
  — trainings, awards, notes, complaints. The worker's managers only (community, street
  and district admins whose units cover one of the worker's grids; admin); every read is
  audited.
* ``GET /review/{year}?unit=`` (JSON), ``/review/{year}.xlsx`` — scores with every
  component, ranks within community/street/district, the shortlist (method:
  ``docs/review.md``).
"""

from __future__ import annotations

from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import HTMLResponse, Response

from api.auth import AccountDep
from api.deps import EngineDep
from api.models.common import error_responses
from api.models.idempotency import IdempotencyKeyHeader
from api.models.workers import Review, WorkerBrief, WorkerFile, WorkerRecord, WorkerRecordIn
from geogrid.core.review import COMPONENT_NAMES, COMPONENTS
from geogrid.services import review, worker_file

__all__ = ["router"]

router = APIRouter(tags=["workers"])

WorkerId = Annotated[
    int, Path(ge=1, le=2**31 - 1, description="the worker's account id", examples=[1])
]
Year = Annotated[int, Path(ge=2000, le=2099, description="the year", examples=[2026])]
YearQ = Annotated[
    int | None,
    Query(ge=2000, le=2099, description="the year (default: this year)", examples=[2026]),
]
Unit = Annotated[
    str | None,
    Query(description="only workers with a grid in this unit", examples=["450902001001"]),
]
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FILE_ERRORS = error_responses(400, 401, 403, 404)
_BINARY: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}


def _download(content: bytes, media_type: str, name: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/workers",
    response_model=list[WorkerBrief],
    summary="The workers the caller manages",
    responses=_FILE_ERRORS,
)
def list_workers(engine: EngineDep, account: AccountDep, unit: Unit = None) -> list[dict[str, Any]]:
    return worker_file.list_workers(engine, account, unit=unit)


@router.get(
    "/workers/{worker_id}/file",
    response_model=WorkerFile,
    summary="The worker's file (一人一卷)",
    responses=_FILE_ERRORS,
)
def get_file(
    engine: EngineDep, account: AccountDep, worker_id: WorkerId, year: YearQ = None
) -> dict[str, Any]:
    """Basic information, grids over time, each month's register, incidents, satisfaction,
    evaluation rounds, records and the year-end review's components."""
    return worker_file.worker_file(engine, account, worker_id, year=year)


@router.get(
    "/workers/{worker_id}/file.pdf",
    summary="The worker's file as a PDF dossier",
    response_class=Response,
    responses={200: {"content": {"application/pdf": _BINARY}}, **_FILE_ERRORS},
)
def get_file_pdf(
    engine: EngineDep, account: AccountDep, worker_id: WorkerId, year: YearQ = None
) -> Response:
    pdf = worker_file.worker_file_pdf(engine, account, worker_id, year=year)
    return _download(pdf, "application/pdf", f"worker-{worker_id}-file.pdf")


@router.get(
    "/workers/{worker_id}/file.xlsx",
    summary="The worker's file as an Excel workbook",
    response_class=Response,
    responses={200: {"content": {_XLSX: _BINARY}}, **_FILE_ERRORS},
)
def get_file_xlsx(
    engine: EngineDep, account: AccountDep, worker_id: WorkerId, year: YearQ = None
) -> Response:
    data = worker_file.worker_file_xlsx(engine, account, worker_id, year=year)
    return _download(data, _XLSX, f"worker-{worker_id}-file.xlsx")


def _table(head: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = (
        "".join("<tr>" + "".join(f"<td>{escape(_text(v))}</td>" for v in r) + "</tr>" for r in rows)
        or f'<tr><td colspan="{len(head)}">（无 none）</td></tr>'
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _text(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


_PAGE_CSS = (
    "body{margin:0;font:15px/1.5 system-ui,'WenQuanYi Micro Hei',sans-serif;color:#1f2933}"
    "main{max-width:720px;margin:0 auto;padding:12px}h1{font-size:1.25rem}h2{font-size:1rem;"
    "margin:16px 0 6px}.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;"
    "font-size:.85rem}th,td{border:1px solid #cbd2d9;padding:4px 6px;text-align:left}"
    "th{background:#e4e7eb}.en{color:#52606d;font-size:.85rem}"
)


@router.get(
    "/workers/{worker_id}/file.html",
    summary="The worker's file as a page (phone-size)",
    response_class=HTMLResponse,
    responses=_FILE_ERRORS,
)
def get_file_html(
    engine: EngineDep, account: AccountDep, worker_id: WorkerId, year: YearQ = None
) -> HTMLResponse:
    f = worker_file.worker_file(engine, account, worker_id, year=year)
    w, inc, sat = f["worker"], f["incidents"], f["satisfaction"]
    parts = [
        f"<h1>网格员档案 {escape(w['name'])} · {f['year']}年</h1>",
        f'<div class="en">Grid worker\'s file — {escape(w["ref"] or "")}</div>',
        "<h2>基本信息 Basic information</h2>",
        _table(
            ["网格 Grids", "单位 Units"],
            [
                [
                    "、".join(g["name"] or g["code"] for g in w["grids"]),
                    " / ".join(u["name"] or u["code"] for u in w["units"].values()),
                ]
            ],
        ),
        "<h2>月度登记 Monthly register</h2>",
        _table(
            ["月份", "上报", "办结", "按时", "服务"],
            [
                [m["month"], m["reported"], m["handled"], m["on_time"], m["entries"]]
                for m in f["months"]
            ],
        ),
        "<h2>事件与满意度 Incidents and satisfaction</h2>",
        _table(
            ["上报", "办结", "按时", "满意度答卷", "平均分"],
            [[inc["reported"], inc["handled"], inc["on_time"], sat["answers"], sat["mean_score"]]],
        ),
        "<h2>群众测评 Evaluation rounds</h2>",
        _table(
            ["批次", "网格", "答卷", "平均分"],
            [[e["label"], e["grid_name"], e["answers"], e["mean_score"]] for e in f["evaluations"]],
        ),
        "<h2>培训表彰备注 Records</h2>",
        _table(
            ["日期", "类别", "事项"],
            [[str(r["at"])[:10], r["kind_zh"], r["title"]] for r in f["records"]],
        ),
    ]
    if f["review"]:
        r = f["review"]
        parts += [
            "<h2>年度考评 Year-end review</h2>",
            _table(
                ["项目", "值"],
                [[COMPONENT_NAMES[k][0], r[k]] for k in COMPONENTS]
                + [
                    ["扣分", r["deduction"]],
                    ["总分", r["score"]],
                    ["社区排名", r["rank_community"]],
                ],
            ),
        ]
    body = "".join(
        p if p.startswith("<h") or p.startswith("<div") else f'<div class="scroll">{p}</div>'
        for p in parts
    )
    html = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>网格员档案 {escape(w['name'])}</title><style>{_PAGE_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.post(
    "/workers/{worker_id}/records",
    status_code=status.HTTP_201_CREATED,
    response_model=WorkerRecord,
    summary="Add a training, award, note or complaint to a worker's file",
    responses=error_responses(400, 401, 403, 404, 409),
)
def add_record(
    engine: EngineDep,
    account: AccountDep,
    worker_id: WorkerId,
    body: WorkerRecordIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """A new record of the worker's file (their managers; 404 outside the caller's units).
    A retry with the same ``Idempotency-Key`` answers the first record."""
    return worker_file.add_record(
        engine,
        account,
        worker_id,
        kind=body.kind,
        title=body.title,
        at=body.at,
        detail=body.detail,
        verified=body.verified,
        idempotency_key=idempotency_key,
    )


@router.get(
    "/review/{year}.xlsx",
    summary="The year-end review as an Excel workbook",
    response_class=Response,
    responses={200: {"content": {_XLSX: _BINARY}}, **error_responses(400, 401, 403)},
)
def get_review_xlsx(
    engine: EngineDep, account: AccountDep, year: Year, unit: Unit = None
) -> Response:
    data = review.review_xlsx(engine, account, year, unit=unit)
    return _download(data, _XLSX, f"review-{year}.xlsx")


@router.get(
    "/review/{year}.html",
    summary="The staff performance table (a page, filters by unit)",
    response_class=HTMLResponse,
    responses=error_responses(400, 401, 403),
)
def get_review_html(
    engine: EngineDep, account: AccountDep, year: Year, unit: Unit = None
) -> HTMLResponse:
    """The review as a page for leaders: one row per worker with every component, the
    score, the ranks and the shortlist mark; a form filters by unit."""
    data = review.review(engine, account, year, unit=unit)
    short = set(data["shortlist"])
    head = ["姓名 Name", "社区 Community", *(COMPONENT_NAMES[k][0] for k in COMPONENTS)]
    head += ["扣分", "总分 Score", "社区排名", "街道排名", "区排名", "入围"]
    rows = [
        [
            w["name"],
            w["community_code"],
            *(w[k] for k in COMPONENTS),
            w["deduction"],
            w["score"],
            w["rank_community"],
            w["rank_street"],
            w["rank_district"],
            "★" if w["account_id"] in short else "",
        ]
        for w in data["workers"]
    ]
    form = (
        f'<form method="get"><label>单位 Unit <input name="unit" value="{escape(unit or "")}" '
        'inputmode="numeric" maxlength="15"></label> <button>筛选 Filter</button> '
        f'<a href="/review/{year}.xlsx'
        + (f"?unit={escape(unit)}" if unit else "")
        + '">Excel</a></form>'
    )
    body = (
        f'<h1>{year}年度网格员考评</h1><div class="en">Year-end review — staff performance'
        f"{' · ' + escape(unit) if unit else ''}</div>{form}"
        f'<div class="scroll">{_table(head, rows)}</div>'
        '<p class="en">方法 Method: docs/review.md — 按负荷归一化的工作量、按时办结率、群众满意度、'
        "群众测评、巡查覆盖率，减去有效投诉扣分。</p>"
    )
    html = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{year}年度考评</title><style>{_PAGE_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get(
    "/review/{year}",
    response_model=Review,
    summary="The year-end review: scores, ranks, shortlist",
    responses=error_responses(400, 401, 403),
)
def get_review(
    engine: EngineDep, account: AccountDep, year: Year, unit: Unit = None
) -> dict[str, Any]:
    """Per worker: every component, the deduction, the score and the ranks within
    community, street and district; the outstanding-worker shortlist (docs/review.md)."""
    return review.review(engine, account, year, unit=unit)
