"""The daily service register (为民服务事项登记表, issue 13): a worker's service items of the
day, and the monthly register exported in the form's tabular layout (Excel, PDF). Every
endpoint needs a bearer token; ``GET /register`` itself is in :mod:`api.routes.incidents`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from api.auth import AccountDep
from api.deps import EngineDep
from api.models.common import error_responses
from api.models.idempotency import IdempotencyKeyHeader
from api.models.service_register import Entry, EntryIn
from geogrid.core.scope import Scope
from geogrid.services import service_register
from geogrid.services.register import export_register

__all__ = ["router", "XLSX_TYPE"]

router = APIRouter(tags=["register"])

#: the media type of an Excel workbook
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

Month = Annotated[str, Query(description="YYYY-MM, in the city's time zone", examples=["2026-05"])]
Level = Annotated[
    str,
    Query(
        description="worker (one row per grid worker), community, street or district",
        examples=["worker"],
    ),
]
Unit = Annotated[
    str | None,
    Query(description="only rows inside this unit code", examples=["450902001001"]),
]


@router.post(
    "/register/entries",
    status_code=status.HTTP_201_CREATED,
    response_model=Entry,
    summary="Record a service item of the day",
    responses=error_responses(400, 401, 403, 409),
)
def record_entry(
    body: EntryIn,
    engine: EngineDep,
    account: AccountDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """Record one service item (走访入户, 矛盾调解, 代办服务, 隐患排查, 政策宣传, 其他) of the
    caller's day, with the household/building and people involved, the result and photos.
    A retry with the same ``Idempotency-Key`` returns the first answer."""
    return service_register.record_entry(
        engine,
        actor=account,
        day=body.day,
        kind=body.kind,
        result=body.result,
        household_id=body.household_id,
        building_id=body.building_id,
        person_ids=body.person_ids,
        people_count=body.people_count,
        note=body.note,
        lon=body.lon,
        lat=body.lat,
        crs=body.crs,
        accuracy_m=body.accuracy_m,
        media=body.media,
        idempotency_key=idempotency_key,
    )


@router.get(
    "/register/entries",
    response_model=list[Entry],
    summary="A month's service entries",
    responses=error_responses(400, 401),
)
def list_entries(
    engine: EngineDep,
    account: AccountDep,
    month: Month,
    account_id: Annotated[
        int | None,
        Query(ge=1, le=2**31 - 1, description="one worker's entries (an account id)", examples=[1]),
    ] = None,
) -> Any:
    """A month's entries: a worker's own, an admin's subtree, the city for city-wide roles
    (results, notes and names masked for planners, leaders and analysts)."""
    return service_register.list_entries(
        engine, scope=Scope.of(account), month=month, account_id=account_id
    )


def _export(
    fmt: str, media_type: str, engine: Any, account: Any, month: str, level: str, unit: str | None
) -> Response:
    data = export_register(engine, month, level, scope=Scope.of(account), fmt=fmt, unit=unit)
    name = f"register-{month}-{level}{'-' + unit if unit else ''}.{fmt}"
    return Response(
        content=data,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/register.xlsx",
    summary="The monthly register as an Excel workbook",
    response_class=Response,
    responses={
        200: {
            "content": {XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}}},
            "description": "the register's form, one sheet",
        },
        **error_responses(400, 401),
    },
)
def register_xlsx(
    engine: EngineDep, account: AccountDep, month: Month, level: Level = "worker", unit: Unit = None
) -> Response:
    """The monthly register (entries per kind and incidents) in the form's layout with its
    Chinese headers, scoped and masked as ``GET /register``."""
    return _export("xlsx", XLSX_TYPE, engine, account, month, level, unit)


@router.get(
    "/register.pdf",
    summary="The monthly register as a PDF",
    response_class=Response,
    responses={
        200: {
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            "description": "the register's form",
        },
        **error_responses(400, 401),
    },
)
def register_pdf(
    engine: EngineDep, account: AccountDep, month: Month, level: Level = "worker", unit: Unit = None
) -> Response:
    """The monthly register as a PDF (A4 landscape, Chinese font embedded), scoped and
    masked as ``GET /register``."""
    return _export("pdf", "application/pdf", engine, account, month, level, unit)
