"""Sign-in for people (a session cookie for the web page) and tokens for machines.

- ``POST /session`` (form-encoded or JSON ``username``/``password``) sets the cookie
  ``geogrid_session`` (``HttpOnly; SameSite=Strict; Path=/``, ``Secure`` over https) and
  answers the account with the CSRF token the page sends as ``X-CSRF-Token`` on writes.
  Wrong credentials: 401. After 5 failures in a row sign-in is locked for 15 minutes:
  **429** with ``Retry-After`` (seconds) and ``retry_after`` in the body; an admin can
  unlock at once (``geogrid users unlock``).
- ``GET /session`` who am I; ``DELETE /session`` signs out; ``POST /session/password``
  changes one's own password; ``POST /users/{id}/password`` (admins) resets another's.
- ``POST /tokens``, ``GET /tokens``, ``DELETE /tokens/{id}``,
  ``POST /tokens/{id}/rotate``: bearer tokens with an expiry, revocation and rotation.
  Everyone manages their own tokens; admins manage everybody's.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import ValidationError

from api.auth import AccountDep, bearer_token, csrf_header, require_role, session_cookie
from api.deps import EngineDep
from api.models.common import ErrorBody, error_responses
from api.models.session import (
    AccountOut,
    Done,
    LoginIn,
    PasswordChangeIn,
    PasswordSetIn,
    SessionOut,
    TokenIn,
    TokenIssued,
    TokenOut,
    TokenRotateIn,
)
from api.params import FORM, JSON, form_or_json
from geogrid.core.accounts import Account
from geogrid.core.credentials import CSRF_HEADER, SESSION_COOKIE, SESSION_LIFETIME, csrf_matches
from geogrid.errors import Forbidden, InvalidInput
from geogrid.services import accounts

__all__ = ["router"]

router = APIRouter(tags=["sign-in and tokens"])

_LOCKED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorBody,
        "description": "sign-in locked after repeated failures; `Retry-After` says how many "
        "seconds to wait",
    }
}
_LOGIN_BODY = {
    "required": True,
    "content": {
        FORM: {"schema": LoginIn.model_json_schema()},
        JSON: {"schema": LoginIn.model_json_schema()},
    },
}
_ID = 2_147_483_647

AdminDep = Annotated[Account, Depends(require_role("admin"))]
TokenIdPath = Annotated[
    int, Path(ge=1, le=_ID, description="the token's id (`GET /tokens`)", examples=[31])
]


def _account_out(account: Account, username: str | None) -> AccountOut:
    return AccountOut(
        id=account.id,
        name=account.name,
        username=username,
        role=account.role,
        units=list(account.units),
        ref=account.ref,
    )


def _same_origin(request: Request) -> None:
    """Refuse a cross-site sign-in form (login CSRF): an ``Origin`` must be this host."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise Forbidden(f"sign-in from another site ({origin}) is refused")


async def _login_body(request: Request) -> LoginIn:
    """The sign-in body, form-encoded (the page's form) or JSON."""
    params = await form_or_json(request, not_utf8="a UTF-8 form")
    try:
        return LoginIn.model_validate(params)
    except ValidationError as exc:
        e = exc.errors()[0]
        name = ".".join(str(p) for p in e.get("loc", ())) or "body"
        # never echo the value: it may be a password
        raise InvalidInput(name, "(hidden)", e.get("msg", "a valid value")) from None


@router.post(
    "/session",
    response_model=SessionOut,
    summary="Sign in (sets the session cookie)",
    responses={**error_responses(400, 401, 403), **_LOCKED},
    openapi_extra={"requestBody": _LOGIN_BODY},
)
def sign_in(
    engine: EngineDep,
    request: Request,
    response: Response,
    body: Annotated[LoginIn, Depends(_login_body)],
) -> SessionOut:
    """Check a username and password; set the HttpOnly session cookie and answer the
    account and the CSRF token (send it as ``X-CSRF-Token`` on POST/PUT/PATCH/DELETE)."""
    _same_origin(request)
    ip = request.client.host if request.client else None
    signed = accounts.login(engine, body.username, body.password, ip)
    response.set_cookie(
        SESSION_COOKIE,
        signed.session_id,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    response.headers["Cache-Control"] = "no-store"
    return SessionOut(
        account=_account_out(signed.account, signed.username),
        csrf_token=signed.csrf_token,
        expires_at=signed.expires_at,
    )


@router.get(
    "/session",
    response_model=SessionOut,
    summary="Who am I",
    responses=error_responses(401),
)
def who_am_i(
    engine: EngineDep,
    response: Response,
    token: Annotated[str | None, Depends(bearer_token)],
    session_id: Annotated[str | None, Depends(session_cookie)],
) -> SessionOut:
    """The account of the session cookie (with its CSRF token) or of the bearer token."""
    info = accounts.whoami(engine, token=token, session_id=session_id)
    response.headers["Cache-Control"] = "no-store"
    return SessionOut(
        account=_account_out(info.account, info.username),
        csrf_token=info.csrf_token,
        expires_at=info.expires_at,
    )


@router.delete(
    "/session",
    response_model=Done,
    summary="Sign out",
    responses=error_responses(403),
)
def sign_out(
    engine: EngineDep,
    response: Response,
    session_id: Annotated[str | None, Depends(session_cookie)],
    csrf: Annotated[str | None, Depends(csrf_header)],
) -> Done:
    """End the session of the cookie (with its ``X-CSRF-Token``) and clear the cookie.
    Without a session this is a no-op."""
    if session_id and not csrf_matches(session_id, csrf):
        raise Forbidden(f"signing out needs the header {CSRF_HEADER} of the session")
    ended = accounts.logout(engine, session_id)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return Done(ok=True, message="signed out" if ended else "no session")


@router.post(
    "/session/password",
    response_model=Done,
    summary="Change my password",
    responses=error_responses(400, 401, 403),
)
def change_my_password(
    engine: EngineDep,
    account: AccountDep,
    body: PasswordChangeIn,
    session_id: Annotated[str | None, Depends(session_cookie)],
) -> Done:
    """Change the caller's password (the current one is required); other sessions end."""
    accounts.change_password(
        engine, account.id, body.old_password, body.new_password, keep_session=session_id
    )
    return Done(ok=True, message="password changed; other sessions were ended")


@router.post(
    "/users/{account_id}/password",
    response_model=AccountOut,
    summary="Reset an account's password (admins)",
    responses=error_responses(400, 401, 403, 404, 409),
)
def reset_password(
    engine: EngineDep,
    admin: AdminDep,
    account_id: Annotated[int, Path(ge=1, le=_ID, description="the account's id", examples=[12])],
    body: PasswordSetIn,
) -> AccountOut:
    """Set an account's password (and username); clears its lock, ends its sessions."""
    acc, username = accounts.set_password(
        engine, account_id, body.password, username=body.username, actor=admin
    )
    return _account_out(acc, username)


@router.post(
    "/tokens",
    response_model=TokenIssued,
    status_code=201,
    summary="Issue a bearer token",
    responses=error_responses(400, 401, 403, 404),
)
def issue_token(engine: EngineDep, account: AccountDep, body: TokenIn) -> TokenIssued:
    """A new token for the caller (or, for admins, ``account_id``); shown this once."""
    info, token = accounts.issue_token(
        engine,
        body.account_id or account.id,
        days=body.days,
        label=body.label,
        actor=account,
    )
    return TokenIssued(**info.to_dict(), token=token)


@router.get(
    "/tokens",
    response_model=list[TokenOut],
    summary="List bearer tokens",
    responses=error_responses(400, 401, 403),
)
def list_tokens(
    engine: EngineDep,
    account: AccountDep,
    account_id: Annotated[
        int | None,
        Query(
            ge=1,
            le=_ID,
            description="whose tokens (default: the caller's; admins: everybody's)",
            examples=[12],
        ),
    ] = None,
) -> list[TokenOut]:
    """Token records (never the tokens): state, expiry, last use."""
    rows = accounts.list_tokens(engine, account_id, actor=account)
    return [TokenOut(**t.to_dict()) for t in rows]


@router.delete(
    "/tokens/{token_id}",
    response_model=TokenOut,
    summary="Revoke a bearer token",
    responses=error_responses(401, 403, 404),
)
def revoke_token(engine: EngineDep, account: AccountDep, token_id: TokenIdPath) -> TokenOut:
    """Revoke a token at once (one's own; admins: any)."""
    return TokenOut(**accounts.revoke_token(engine, token_id, actor=account).to_dict())


@router.post(
    "/tokens/{token_id}/rotate",
    response_model=TokenIssued,
    status_code=201,
    summary="Rotate a bearer token",
    responses=error_responses(400, 401, 403, 404, 409),
)
def rotate_token(
    engine: EngineDep,
    account: AccountDep,
    token_id: TokenIdPath,
    body: TokenRotateIn | None = None,
) -> TokenIssued:
    """Issue a replacement (shown this once) and revoke the old token, in one step."""
    days = body.days if body is not None else 90
    info, token = accounts.rotate_token(engine, token_id, days=days, actor=account)
    return TokenIssued(**info.to_dict(), token=token)
