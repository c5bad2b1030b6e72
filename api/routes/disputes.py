"""Disputes (矛盾纠纷): parties, cause, mediation sessions and the outcome. Parties are
personal: clear inside the caller's units, masked for city-wide readers; a dispute
outside a unit-bound caller's units is 404."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status

from api.auth import AccountDep
from api.deps import EngineDep
from api.models.common import error_responses
from api.models.disputes import Dispute, DisputeIn, OutcomeIn, SessionIn
from api.models.idempotency import IdempotencyKeyHeader
from geogrid.core.disputes import DISPUTE_STATUSES
from geogrid.core.scope import Scope
from geogrid.services import disputes

__all__ = ["router"]

router = APIRouter(tags=["disputes"])

DisputeId = Annotated[int, Path(ge=1, le=2**62, description="dispute id", examples=[1])]


@router.post(
    "/disputes",
    status_code=status.HTTP_201_CREATED,
    response_model=Dispute,
    summary="Record a dispute",
    responses=error_responses(400, 401, 403, 404, 409),
)
def create_dispute(
    body: DisputeIn,
    engine: EngineDep,
    account: AccountDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """A dispute at an incident, a point (`lon`/`lat` in `crs`) or a grid (403 outside
    the caller's units)."""
    return disputes.create_dispute(
        engine,
        cause=body.cause,
        category=body.category,
        parties=[p.model_dump() for p in body.parties],
        actor=account,
        incident_id=body.incident_id,
        lon=body.lon,
        lat=body.lat,
        crs=body.crs,
        grid_code=body.grid_code,
        at=body.at,
        media=body.media,
        idempotency_key=idempotency_key,
    )


@router.get(
    "/disputes",
    response_model=list[Dispute],
    summary="Disputes, newest first",
    responses=error_responses(400, 401),
)
def list_disputes(
    engine: EngineDep,
    account: AccountDep,
    status_: Annotated[
        str | None,
        Query(
            alias="status",
            max_length=200,
            description=f"comma-separated: {', '.join(DISPUTE_STATUSES)}",
            examples=["open,mediating"],
        ),
    ] = None,
    unit: Annotated[
        str | None,
        Query(max_length=15, description="unit code (any level)", examples=["450902001"]),
    ] = None,
    incident_id: Annotated[
        int | None,
        Query(ge=1, le=2**62, description="only those linked to this incident", examples=[1]),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="at most this many disputes", examples=[100])
    ] = 100,
    offset: Annotated[
        int,
        Query(ge=0, le=10_000_000, description="skip this many disputes first", examples=[0]),
    ] = 0,
) -> list[dict[str, Any]]:
    """Disputes in the caller's units (the whole city for city-wide roles, parties
    masked)."""
    return disputes.list_disputes(
        engine,
        scope=Scope.of(account),
        statuses=status_.split(",") if status_ else None,
        unit_code=unit,
        incident_id=incident_id,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/disputes/{dispute_id}",
    response_model=Dispute,
    summary="One dispute with its sessions",
    responses=error_responses(401, 404),
)
def get_dispute(dispute_id: DisputeId, engine: EngineDep, account: AccountDep) -> dict[str, Any]:
    """One dispute with its mediation sessions (404 outside the caller's units)."""
    return disputes.get_dispute(engine, dispute_id, scope=Scope.of(account))


@router.post(
    "/disputes/{dispute_id}/sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=Dispute,
    summary="Record a mediation session",
    responses=error_responses(400, 401, 403, 404, 409),
)
def add_session(
    dispute_id: DisputeId,
    body: SessionIn,
    engine: EngineDep,
    account: AccountDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """A mediation session held by the caller; with an `outcome` it closes the dispute
    (409 when it is closed already)."""
    return disputes.add_session(
        engine,
        dispute_id,
        actor=account,
        note=body.note,
        at=body.at,
        outcome=body.outcome,
        outcome_note=body.outcome_note,
        media=body.media,
        idempotency_key=idempotency_key,
    )


@router.post(
    "/disputes/{dispute_id}/outcome",
    response_model=Dispute,
    summary="Close a dispute with its outcome",
    responses=error_responses(400, 401, 403, 404, 409),
)
def record_outcome(
    dispute_id: DisputeId,
    body: OutcomeIn,
    engine: EngineDep,
    account: AccountDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """Resolved, referred or agreement signed (409 when it is closed already)."""
    return disputes.record_outcome(
        engine,
        dispute_id,
        actor=account,
        outcome=body.outcome,
        note=body.note,
        at=body.at,
        idempotency_key=idempotency_key,
    )
