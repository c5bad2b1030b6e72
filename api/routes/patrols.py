"""Patrols (issue 13): a worker uploads a patrol's GPS track and check-ins; leaders and
admins read a day's tracks and metrics. Every endpoint needs a bearer token.

Coordinates: points and check-ins are in the system named by ``crs`` (wgs84, gcj02, bd09);
tracks are answered in WGS84. Lengths and areas are measured in the city's metric CRS.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from api.auth import AccountDep
from api.deps import EngineDep
from api.models.common import error_responses
from api.models.idempotency import IdempotencyKeyHeader
from api.models.patrols import PatrolCollection, PatrolIn, PatrolMetric, PatrolOut
from geogrid.core.scope import Scope
from geogrid.services import patrols

__all__ = ["router"]

router = APIRouter(tags=["patrols"])

Day = Annotated[
    str, Query(description="YYYY-MM-DD, a day in the city's time zone", examples=["2026-05-04"])
]
Unit = Annotated[
    str | None,
    Query(description="a unit code (6, 9, 12 or 15 digits)", examples=["450902001"]),
]


@router.post(
    "/patrols",
    status_code=status.HTTP_201_CREATED,
    response_model=PatrolOut,
    summary="Upload a patrol",
    responses={**error_responses(400, 401, 403, 409)},
)
def upload_patrol(
    body: PatrolIn,
    engine: EngineDep,
    account: AccountDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """Store a patrol's track (cleaned: accuracy filter, sampling interval, GPS jumps) with
    its distance, time and coverage in each grid and the buildings visited. A retry with the
    same ``Idempotency-Key`` returns the first answer."""
    return patrols.record_patrol(
        engine,
        actor=account,
        started_at=body.started_at,
        ended_at=body.ended_at,
        crs=body.crs,
        points=body.points,
        checkins=[c.model_dump() for c in body.checkins],
        media=body.media,
        idempotency_key=idempotency_key,
    )


@router.get(
    "/patrols",
    response_model=PatrolCollection,
    summary="A day's patrol tracks (GeoJSON)",
    responses=error_responses(400, 401),
)
def day_patrols(
    engine: EngineDep,
    account: AccountDep,
    day: Day,
    account_id: Annotated[
        int | None,
        Query(ge=1, le=2**31 - 1, description="one worker's patrols (an account id)", examples=[1]),
    ] = None,
    unit: Unit = None,
) -> dict[str, Any]:
    """The day's tracks as a FeatureCollection: a worker sees their own, an admin their
    subtree's, city-wide roles all (workers' names masked for planners, leaders, analysts)."""
    return patrols.list_patrols(
        engine, scope=Scope.of(account), day=day, account_id=account_id, unit=unit
    )


@router.get(
    "/patrols/metrics",
    response_model=list[PatrolMetric],
    summary="A day's patrol metrics per worker and grid",
    responses=error_responses(400, 401),
)
def day_metrics(engine: EngineDep, account: AccountDep, day: Day, unit: Unit = None) -> Any:
    """Per worker × grid: patrols, distance, time in the grid, buildings visited, coverage
    (of the union of the day's tracks), scoped as ``GET /patrols``."""
    return patrols.patrol_metrics(engine, scope=Scope.of(account), day=day, unit=unit)
