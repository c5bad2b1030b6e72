"""Incidents in their workflow: report, read, move through statuses, escalate, overdue lists,
and the monthly register. Every endpoint needs a bearer token (``geogrid users add``).

Coordinates: ``lon``/``lat`` are in the system named by ``crs`` — ``wgs84`` (GPS, the
default), ``gcj02`` (AMap/Gaode, Tencent, WeChat) or ``bd09`` (Baidu), or an EPSG code.
Incidents are stored in WGS84 (EPSG:4326) with the coordinate as received kept in
``src_crs``/``src_lon``/``src_lat``; responses give ``lon``/``lat`` in WGS84.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status

from api.auth import AccountDep
from api.deps import EngineDep, ReadEngineDep
from api.json import jsonable
from api.models.common import error_responses
from api.models.idempotency import IdempotencyKeyHeader
from api.models.incidents import (
    EscalateIn,
    Incident,
    IncidentIn,
    NoteIn,
    OverdueIncident,
    RegisterRow,
    TransitionIn,
)
from geogrid.core.hierarchy import Level
from geogrid.core.lifecycle import STATUSES
from geogrid.core.scope import Scope
from geogrid.services import incidents
from geogrid.services.register import monthly_register

__all__ = ["router"]

router = APIRouter(tags=["incidents"])

IncidentId = Annotated[int, Path(ge=1, description="incident id", examples=[1024])]
_AUTH = error_responses(400, 401, 403)


@router.post(
    "/incidents",
    status_code=status.HTTP_201_CREATED,
    response_model=Incident,
    summary="Report an incident",
    responses={**_AUTH, **error_responses(409)},
)
def report_incident(
    body: IncidentIn,
    engine: EngineDep,
    account: AccountDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """Report an incident. It is attributed to the published boundaries and assigned to its
    grid's worker (or the unit its category needs). A worker may report only inside their
    own grids (403 otherwise). Send an ``Idempotency-Key`` to retry safely: a retry with
    the same key and body returns the first answer (201) instead of a second incident."""
    return incidents.create_incident(
        engine,
        category=body.category,
        lon=body.lon,
        lat=body.lat,
        crs=body.crs,
        description=body.description,
        reported_at=body.reported_at,
        reporter_id=account.id,
        actor=account,
        idempotency_key=idempotency_key,
        media=body.media,
        accuracy_m=body.accuracy_m,
    )


@router.get(
    "/incidents",
    response_model=list[Incident],
    summary="Incidents, newest first",
    responses=error_responses(400, 401),
)
def list_incidents(
    engine: EngineDep,
    read: ReadEngineDep,
    account: AccountDep,
    unit: Annotated[
        str | None,
        Query(description="unit code (any level: 6, 9, 12 or 15 digits)", examples=["450902001"]),
    ] = None,
    status_: Annotated[
        str | None,
        Query(
            alias="status",
            description=f"comma-separated statuses: {', '.join(STATUSES)}",
            examples=["reported,accepted"],
        ),
    ] = None,
    category: Annotated[
        str | None,
        Query(description="comma-separated category codes", examples=["garbage,dispute"]),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="at most this many incidents", examples=[100])
    ] = 100,
    offset: Annotated[
        int,
        Query(ge=0, le=10_000_000, description="skip this many incidents first", examples=[0]),
    ] = 0,
) -> list[dict[str, Any]]:
    """Incidents matching every filter given, newest report first: only those in the
    caller's units (a worker's grids, an admin's subtree; the whole city for city-wide
    roles), with personal fields (description's contact details, notes) masked for
    planners, leaders and analysts."""
    return incidents.list_incidents(
        read,
        scope=Scope.of(account),
        audit_bind=engine,
        unit_code=unit,
        statuses=status_.split(",") if status_ else None,
        categories=category.split(",") if category else None,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/incidents/overdue",
    response_model=list[OverdueIncident],
    summary="Overdue incidents, per unit",
    responses=error_responses(400, 401),
)
def overdue_incidents(
    engine: ReadEngineDep,
    account: AccountDep,
    unit: Annotated[
        str | None,
        Query(
            description="unit code; its level is read from its length unless `level` is given",
            examples=["450902001001001"],
        ),
    ] = None,
    level: Annotated[
        Level | None,
        Query(
            description="grid, community, street or district: the unit column rows are "
            "grouped by (default: the level of `unit`, else grid)",
            examples=["community"],
        ),
    ] = None,
    sort: Annotated[
        str,
        Query(
            description="unit (by unit, then due time), overdue (longest overdue first) or "
            "reported (newest report first)",
            examples=["overdue"],
        ),
    ] = "unit",
    limit: Annotated[
        int, Query(ge=1, le=5000, description="at most this many incidents", examples=[500])
    ] = 1000,
    offset: Annotated[
        int,
        Query(ge=0, le=10_000_000, description="skip this many incidents first", examples=[0]),
    ] = 0,
) -> Any:
    """Incidents past their time limit and not resolved, grouped by unit (a page of
    `limit` rows from `offset`; ask for the next page while a page is full)."""
    return jsonable(
        incidents.overdue(
            engine,
            unit_code=unit,
            level=level,
            scope=Scope.of(account),
            sort=sort,
            limit=limit,
            offset=offset,
        ).to_dict("records")
    )


@router.get(
    "/incidents/{incident_id}",
    response_model=Incident,
    summary="One incident with its history",
    responses=error_responses(401, 404),
)
def get_incident(
    engine: EngineDep, read: ReadEngineDep, account: AccountDep, incident_id: IncidentId
) -> dict[str, Any]:
    """One incident with its units at every level and its full history (404 outside the
    caller's units; actors' names and notes masked for planners, leaders and analysts)."""
    return incidents.get_incident(
        read, incident_id, scope=Scope.of(account), with_history=True, audit_bind=engine
    )


@router.post(
    "/incidents/{incident_id}/transitions",
    response_model=Incident,
    summary="Move an incident to a new status",
    responses=error_responses(400, 401, 403, 404, 409),
)
def transition_incident(
    engine: EngineDep,
    account: AccountDep,
    incident_id: IncidentId,
    body: TransitionIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """Move an incident to a new status (409 when the lifecycle does not allow it; 403
    outside the account's units; a retry with the same ``Idempotency-Key`` returns the
    first answer).

    With ``expected_updated_at``: 409 ``{"code": "conflict", "current": {…}}`` when the
    incident changed since (nothing is overwritten). ``media``: photos attached (the
    'after' photo on resolve). Verified resolution (核查结案): the worker who resolved an
    incident cannot close it (403 naming the rule) unless its category says
    ``verify = none``; a community admin or above over its units closes it, or sends it
    back (``in_progress``) with a reason in ``note``."""
    return incidents.transition(
        engine,
        incident_id,
        body.status,
        account,
        body.note,
        idempotency_key=idempotency_key,
        expected_updated_at=body.expected_updated_at,
        media=body.media,
    )


@router.post(
    "/incidents/{incident_id}/notes",
    status_code=status.HTTP_201_CREATED,
    response_model=Incident,
    summary="Add a note (and photos) to an incident",
    responses=error_responses(400, 401, 403, 404, 409),
)
def add_note(
    engine: EngineDep,
    account: AccountDep,
    incident_id: IncidentId,
    body: NoteIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """A note in the incident's history, with photos (uploaded first with
    ``PUT /media/{sha256}``); 409 with the current incident when ``expected_updated_at``
    is older than its last change. Answers the incident with its history."""
    return incidents.add_note(
        engine,
        incident_id,
        body.note,
        account,
        media=body.media,
        public=body.public,
        expected_updated_at=body.expected_updated_at,
        idempotency_key=idempotency_key,
    )


@router.post(
    "/incidents/{incident_id}/escalate",
    response_model=Incident,
    summary="Hand an incident up to a higher level",
    responses=error_responses(400, 401, 403, 404, 409),
)
def escalate_incident(
    engine: EngineDep,
    account: AccountDep,
    incident_id: IncidentId,
    body: EscalateIn | None = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """Hand an incident up to a higher level (default the next; a retry with the same
    ``Idempotency-Key`` returns the first answer)."""
    to_level = body.to_level if body else None
    note = body.note if body else None
    return incidents.escalate(
        engine, incident_id, account, to_level, note, idempotency_key=idempotency_key
    )


@router.get(
    "/register",
    response_model=list[RegisterRow],
    summary="The monthly register",
    responses=error_responses(400, 401),
)
def register(
    engine: EngineDep,
    account: AccountDep,
    month: Annotated[
        str, Query(description="YYYY-MM, in the city's time zone", examples=["2026-05"])
    ],
    level: Annotated[
        str,
        Query(
            description="worker (one row per grid worker), community, street or district",
            examples=["worker"],
        ),
    ] = "worker",
    limit: Annotated[
        int, Query(ge=1, le=10_000, description="at most this many rows", examples=[1000])
    ] = 10_000,
    offset: Annotated[
        int, Query(ge=0, le=10_000_000, description="skip this many rows first", examples=[0])
    ] = 0,
) -> Any:
    """The monthly register (为民服务事项登记表): reported, handled, on time, median hours
    (a page of `limit` rows from `offset`)."""
    return jsonable(
        monthly_register(
            engine, month, level, scope=Scope.of(account), limit=limit, offset=offset
        ).to_dict("records")
    )
