"""``GET /audit``: the append-only audit trail, for admins; and :func:`audit_client`, the
dependency that binds the request's client (IP, user agent) for the audit rows written
while it is served (:func:`geogrid.services.audit.bind_client`); ``api.main`` adds it to
every router."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.auth import AccountDep
from api.deps import EngineDep
from api.models.audit import AuditEntry
from api.models.common import error_responses
from geogrid.core.scope import Scope
from geogrid.services import audit

__all__ = ["router", "audit_client"]


async def audit_client(request: Request) -> None:
    """Bind the client of this request for the audit trail (async, so the binding is in
    the request's context and reaches the endpoint's thread)."""
    audit.bind_client(
        request.client.host if request.client else None, request.headers.get("user-agent")
    )


router = APIRouter(tags=["audit"])


@router.get(
    "/audit",
    response_model=list[AuditEntry],
    summary="The audit trail (admins)",
    responses=error_responses(400, 401, 403),
)
def audit_log(
    engine: EngineDep,
    account: AccountDep,
    actor: Annotated[
        int | None,
        Query(ge=1, le=2**31 - 1, description="only this account's actions", examples=[3]),
    ] = None,
    resource: Annotated[
        str | None,
        Query(
            max_length=100,
            description="only this kind of record (incident, register, plan, account …)",
            examples=["incident"],
        ),
    ] = None,
    action: Annotated[
        str | None,
        Query(
            max_length=100,
            description="only this action (incident.read, incident.create …)",
            examples=["incident.read"],
        ),
    ] = None,
    since: Annotated[
        datetime | None,
        Query(
            description="from this time on (ISO 8601 with a time zone)",
            examples=["2026-05-01T00:00:00+08:00"],
        ),
    ] = None,
    until: Annotated[
        datetime | None,
        Query(
            description="before this time (ISO 8601 with a time zone)",
            examples=["2026-06-01T00:00:00+08:00"],
        ),
    ] = None,
    limit: Annotated[
        int,
        Query(ge=1, le=audit.MAX_AUDIT_ROWS, description="at most this many rows", examples=[100]),
    ] = 100,
    offset: Annotated[
        int, Query(ge=0, le=2**31 - 1, description="skip this many rows first", examples=[0])
    ] = 0,
) -> list[dict[str, Any]]:
    """Recorded writes and clear reads of personal fields, newest first (admins only)."""
    return audit.audit_log(
        engine,
        scope=Scope.of(account),
        actor_id=actor,
        resource=resource,
        action=action,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
