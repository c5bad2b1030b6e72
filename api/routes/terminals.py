"""The grid worker's terminals: enrol a phone with a one-time code, list, revoke.

- ``POST /terminals/enrolments`` (an admin, or an admin of the worker's units) → a one-time
  code (``XXXXX-XXXXX``, valid a day by default) with its QR code (SVG).
- ``POST /terminals`` (anonymous: the code is the credential) → the device's own bearer
  token, bound to the worker.
- ``GET /terminals``, ``POST /terminals/{id}/revoke``: a revoked device's next request is
  refused with 401 and ``"code": "terminal_revoked"``; the worker's other devices keep
  working. Every request made with a device's token records its last-seen time and app
  version (header ``X-App-Version``), at most once a minute.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status

from api.auth import AccountDep
from api.deps import EngineDep
from api.models.common import error_responses
from api.models.idempotency import IdempotencyKeyHeader
from api.models.terminals import (
    EnrolmentIn,
    EnrolmentOut,
    RedeemIn,
    RevokeIn,
    TerminalIssued,
    TerminalOut,
)
from geogrid.services import terminals

__all__ = ["router"]

router = APIRouter(tags=["terminals"])

_ID = 2_147_483_647
TerminalId = Annotated[
    int, Path(ge=1, le=_ID, description="the terminal's id (`GET /terminals`)", examples=[7])
]


@router.post(
    "/terminals/enrolments",
    status_code=status.HTTP_201_CREATED,
    response_model=EnrolmentOut,
    summary="Issue a one-time enrolment code for a worker's device",
    responses=error_responses(400, 401, 403, 404, 409),
)
def issue_enrolment(
    engine: EngineDep,
    account: AccountDep,
    request: Request,
    body: EnrolmentIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """A one-time code (shown this once) and its QR code, for the worker to enrol a phone.
    Admins issue codes for anyone; community/street/district admins for the workers of
    their units (404 for a worker outside them). The ``Idempotency-Key`` header is
    accepted but a code is never replayed: a retry issues a new code."""
    del idempotency_key  # a code is a secret shown once: never stored for a replay
    return terminals.enrol(
        engine,
        body.account_id,
        ttl_minutes=body.ttl_minutes,
        actor=account,
        base_url=str(request.base_url),
    )


@router.post(
    "/terminals",
    status_code=status.HTTP_201_CREATED,
    response_model=TerminalIssued,
    summary="Enrol this device with a code (anonymous)",
    responses=error_responses(400, 403, 409),
)
def enrol_device(
    request: Request,
    engine: EngineDep,
    body: RedeemIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """Redeem an enrolment code: the device receives its own bearer token (shown this
    once), bound to the worker. A code works once and until it expires (400 naming
    ``code`` otherwise). A retry with the same code and ``Idempotency-Key`` (the answer
    was lost) gets the same terminal with a fresh token; the first token is revoked."""
    return terminals.redeem(
        engine,
        body.code,
        label=body.label,
        app_version=body.app_version or request.headers.get("x-app-version"),
        user_agent=request.headers.get("user-agent"),
        idempotency_key=idempotency_key,
    )


@router.get(
    "/terminals",
    response_model=list[TerminalOut],
    summary="Enrolled devices",
    responses=error_responses(400, 401, 403),
)
def list_terminals(
    engine: EngineDep,
    account: AccountDep,
    account_id: Annotated[
        int | None, Query(ge=1, le=_ID, description="one worker's devices", examples=[12])
    ] = None,
    unit: Annotated[
        str | None,
        Query(
            description="devices of the workers bound to this unit or a unit inside it",
            examples=["450902001001"],
            max_length=15,
        ),
    ] = None,
) -> list[dict[str, Any]]:
    """Devices the caller manages, newest first: an admin all, a community/street/district
    admin those of the workers in their units, a worker their own."""
    return terminals.list_terminals(engine, actor=account, account_id=account_id, unit=unit)


@router.post(
    "/terminals/{terminal_id}/revoke",
    response_model=TerminalOut,
    summary="Revoke a device",
    responses=error_responses(400, 401, 403, 404),
)
def revoke_terminal(
    engine: EngineDep,
    account: AccountDep,
    terminal_id: TerminalId,
    body: RevokeIn | None = None,
) -> dict[str, Any]:
    """Revoke a device at once (its token with it); its next request is refused with 401
    ``terminal_revoked``. The worker's other devices keep working."""
    return terminals.revoke(
        engine, terminal_id, reason=body.reason if body else None, actor=account
    )
