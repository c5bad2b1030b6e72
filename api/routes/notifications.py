"""Notifications of the terminal: new assignment, due soon, overdue, escalated — derived
from the incidents when asked, delivered on the next sync."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.auth import AccountDep
from api.deps import ContextDep
from api.models.common import error_responses
from api.models.notifications import Notification
from geogrid.services import notifications

__all__ = ["router"]

router = APIRouter(tags=["terminal"])


@router.get(
    "/notifications",
    response_model=list[Notification],
    summary="My notifications",
    responses=error_responses(400, 401),
)
def list_notifications(
    ctx: ContextDep,
    account: AccountDep,
    since: Annotated[
        datetime | None,
        Query(
            description="only those created after this time (the last sync's "
            "`server_time`; ISO 8601 with a time zone)",
            examples=["2026-05-01T00:00:00+08:00"],
        ),
    ] = None,
    unread: Annotated[bool, Query(description="only unread ones")] = False,
    limit: Annotated[
        int,
        Query(ge=1, le=1000, description="at most this many (the newest)", examples=[500]),
    ] = 500,
) -> list[dict[str, Any]]:
    """The caller's notifications, oldest first (new ones are derived first)."""
    return notifications.list_notifications(
        ctx.engine, account, since=since, unread_only=unread, limit=limit, settings=ctx.settings
    )


@router.post(
    "/notifications/{notification_id}/read",
    response_model=Notification,
    summary="Mark a notification read",
    responses=error_responses(401, 404),
)
def mark_read(
    notification_id: Annotated[
        int, Path(ge=1, le=2**62, description="notification id", examples=[1])
    ],
    ctx: ContextDep,
    account: AccountDep,
) -> dict[str, Any]:
    """Mark one of the caller's notifications read (404 for another's)."""
    return notifications.mark_read(ctx.engine, account, notification_id)
