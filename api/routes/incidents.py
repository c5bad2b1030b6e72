"""Incidents in their workflow: report, read, move through statuses, escalate, overdue lists,
and the monthly register. Every endpoint needs a bearer token (``geogrid users add``).

Coordinates: ``lon``/``lat`` are in the system named by ``crs`` — ``wgs84`` (GPS, the
default), ``gcj02`` (AMap/Gaode, Tencent, WeChat) or ``bd09`` (Baidu), or an EPSG code.
Incidents are stored in WGS84 (EPSG:4326) with the coordinate as received kept in
``src_crs``/``src_lon``/``src_lat``; responses give ``lon``/``lat`` in WGS84.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, Field

from api.auth import AccountDep
from api.deps import EngineDep
from geogrid.services.register import monthly_register
from geogrid.store import workflow

router = APIRouter(tags=["incidents"])


class IncidentIn(BaseModel):
    category: str = Field(description="category code (see GET /open311/v2/services.json)")
    lon: float = Field(description="longitude (or easting) in `crs`")
    lat: float = Field(description="latitude (or northing) in `crs`")
    crs: str = Field(
        "wgs84",
        description="coordinate system of lon/lat: wgs84 (GPS), gcj02 "
        "(AMap/Tencent/WeChat), bd09 (Baidu) or an EPSG code",
    )
    description: str | None = Field(None, description="what was found")
    reported_at: datetime | None = Field(
        None, description="when it was found (RFC 3339 with time zone); default now"
    )


class TransitionIn(BaseModel):
    status: str = Field(
        description="accepted, dispatched, in_progress, resolved, closed, rejected or duplicate"
    )
    note: str | None = None


class EscalateIn(BaseModel):
    to_level: str | None = Field(
        None, description="community, street or district; default the next level up"
    )
    note: str | None = None


def _clean(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, pd.Timestamp):
        return None if pd.isna(v) else v.isoformat()
    if hasattr(v, "item"):  # numpy scalars
        return _clean(v.item())
    return v


def _records(df: pd.DataFrame) -> list[dict]:
    return [{k: _clean(v) for k, v in r.items()} for r in df.to_dict("records")]


@router.post("/incidents", status_code=status.HTTP_201_CREATED)
def report_incident(body: IncidentIn, engine: EngineDep, account: AccountDep) -> dict:
    """Report an incident. It is attributed to the published boundaries and assigned to its
    grid's worker (or the unit its category needs). A worker may report only inside their
    own grids (403 otherwise)."""
    return workflow.create_incident(
        engine,
        category=body.category,
        lon=body.lon,
        lat=body.lat,
        crs=body.crs,
        description=body.description,
        reported_at=body.reported_at,
        reporter_id=account.id,
        actor=account,
    )


@router.get("/incidents")
def list_incidents(
    engine: EngineDep,
    account: AccountDep,
    unit: Annotated[str | None, Query(description="unit code (any level)")] = None,
    status_: Annotated[
        str | None, Query(alias="status", description="comma-separated statuses")
    ] = None,
    category: Annotated[str | None, Query(description="comma-separated category codes")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict]:
    """Incidents, newest first."""
    return workflow.list_incidents(
        engine,
        unit_code=unit,
        statuses=status_.split(",") if status_ else None,
        categories=category.split(",") if category else None,
        limit=limit,
        offset=offset,
    )


@router.get("/incidents/overdue")
def overdue_incidents(
    engine: EngineDep,
    account: AccountDep,
    unit: Annotated[
        str | None,
        Query(description="unit code; its level is read from its length unless `level` is given"),
    ] = None,
    level: Annotated[
        str | None,
        Query(
            description="grid, community, street or district: the unit column rows are grouped by"
        ),
    ] = None,
) -> list[dict]:
    """Incidents past their time limit and not resolved, grouped by unit."""
    return _records(workflow.overdue(engine, unit_code=unit, level=level))


@router.get("/incidents/{incident_id}")
def get_incident(
    engine: EngineDep,
    account: AccountDep,
    incident_id: Annotated[int, Path(ge=1)],
) -> dict:
    """One incident with its units at every level and its full history."""
    return workflow.get_incident(engine, incident_id, with_history=True)


@router.post("/incidents/{incident_id}/transitions")
def transition_incident(
    engine: EngineDep,
    account: AccountDep,
    incident_id: Annotated[int, Path(ge=1)],
    body: TransitionIn,
) -> dict:
    """Move an incident to a new status (409 when the lifecycle does not allow it; 403
    outside the account's units)."""
    return workflow.transition(engine, incident_id, body.status, account, body.note)


@router.post("/incidents/{incident_id}/escalate")
def escalate_incident(
    engine: EngineDep,
    account: AccountDep,
    incident_id: Annotated[int, Path(ge=1)],
    body: EscalateIn | None = None,
) -> dict:
    """Hand an incident up to a higher level (default the next)."""
    body = body or EscalateIn()
    return workflow.escalate(engine, incident_id, account, body.to_level, body.note)


@router.get("/register")
def register(
    engine: EngineDep,
    account: AccountDep,
    month: Annotated[str, Query(description="YYYY-MM (Asia/Shanghai)")],
    level: Annotated[str, Query(description="worker, community, street or district")] = "worker",
) -> list[dict]:
    """The monthly register (为民服务事项登记表): reported, handled, on time, median hours."""
    return _records(monthly_register(engine, month, level))
