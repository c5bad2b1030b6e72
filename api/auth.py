"""Who is calling: ``Authorization: Bearer <token>`` (machines, devices) or the
``geogrid_session`` cookie of a signed-in person (the web page) → :class:`Account`.

- A bearer token wins when both are sent; it needs no CSRF header (a browser never
  attaches it on its own).
- A cookie session on an unsafe method (POST, PUT, PATCH, DELETE) must carry the header
  ``X-CSRF-Token`` with the session's CSRF token (from ``POST /session`` or
  ``GET /session``); without it: 403 naming the header. The cookie is ``SameSite=Strict``
  and ``HttpOnly`` too, so this is a second fence.
- Missing, unknown, expired or revoked credentials raise
  :class:`~geogrid.errors.Unauthorized` (401 with ``WWW-Authenticate: Bearer``, mapped in
  ``api/errors.py``); a role that is not allowed raises :class:`~geogrid.errors.Forbidden`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api.deps import context_of
from geogrid.core.accounts import ROLES, Account
from geogrid.core.credentials import CSRF_HEADER, SESSION_COOKIE, csrf_matches
from geogrid.core.terminals import APP_VERSION_HEADER
from geogrid.errors import Forbidden, Unauthorized
from geogrid.services.accounts import authenticate, cached_account, session_account

__all__ = [
    "SAFE_METHODS",
    "current_account",
    "optional_account",
    "require_role",
    "AccountDep",
    "OptionalAccountDep",
    "bearer_token",
    "session_cookie",
    "csrf_header",
]

#: methods that change nothing: no CSRF header needed with a cookie session
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(
    auto_error=False, description="a token from `geogrid users add` or `POST /tokens`"
)
_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="the session cookie set by `POST /session` (writes also need the "
    f"`{CSRF_HEADER}` header)",
)


async def bearer_token(
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    """The bearer token of the request, or None."""
    if creds is None or creds.scheme.lower() != "bearer":
        return None
    return creds.credentials


async def session_cookie(value: Annotated[str | None, Depends(_cookie)]) -> str | None:
    """The session id of the request's cookie, or None."""
    return value or None


async def csrf_header(
    value: Annotated[
        str | None,
        Header(
            alias=CSRF_HEADER,
            description="the session's CSRF token (from `POST /session` or `GET /session`); "
            "required on POST, PUT, PATCH and DELETE when signed in with the cookie",
            examples=["5nC0mRj0m3v1t0gA2kWqZt8yH3bJ6sLd9fPq1xV4uE0"],
        ),
    ] = None,
) -> str | None:
    """The ``X-CSRF-Token`` header, or None."""
    return value


def _from_session(engine: Engine, request: Request, session_id: str, csrf: str | None) -> Account:
    account = session_account(engine, session_id)
    if request.method.upper() not in SAFE_METHODS and not csrf_matches(session_id, csrf):
        raise Forbidden(
            f"a {request.method.upper()} signed in with the session cookie needs the header "
            f"{CSRF_HEADER} with the session's CSRF token (from POST /session or GET /session)"
        )
    return account


def _from_token(engine: Engine, request: Request, token: str) -> Account:
    # a terminal's token also records the device's app version (issue 13); issue 10: a
    # token seen in the last seconds is answered from the service's cache
    return authenticate(
        engine,
        token,
        app_version=request.headers.get(APP_VERSION_HEADER),
        user_agent=request.headers.get("user-agent"),
        cache=context_of(request).tokens,
    )


async def _account_of(
    request: Request, token: str | None, session_id: str | None, csrf: str | None
) -> Account | None:
    """The caller's account (None without credentials): a token seen in the last seconds
    from the cache on the event loop, the database in the thread pool (issue 10: no
    thread hop for the common case)."""
    ctx = context_of(request)
    if token is not None:
        known = cached_account(token, ctx.tokens)
        if known is not None:
            return known
        return await run_in_threadpool(_from_token, ctx.engine, request, token)
    if session_id is not None:
        return await run_in_threadpool(_from_session, ctx.engine, request, session_id, csrf)
    return None


async def current_account(
    request: Request,
    token: Annotated[str | None, Depends(bearer_token)],
    session_id: Annotated[str | None, Depends(session_cookie)],
    csrf: Annotated[str | None, Depends(csrf_header)],
) -> Account:
    """The authenticated account (401 without a valid token or session)."""
    account = await _account_of(request, token, session_id, csrf)
    if account is None:
        raise Unauthorized("sign in (POST /session) or send 'Authorization: Bearer <token>'")
    return account


async def optional_account(
    request: Request,
    token: Annotated[str | None, Depends(bearer_token)],
    session_id: Annotated[str | None, Depends(session_cookie)],
    csrf: Annotated[str | None, Depends(csrf_header)],
) -> Account | None:
    """The account when a token or a session cookie is sent (401 for an unknown token, a
    stale cookie is ignored), None when neither is."""
    if token is None and session_id is not None:
        try:
            return await _account_of(request, None, session_id, csrf)
        except Unauthorized:
            return None
    return await _account_of(request, token, session_id, csrf)


AccountDep = Annotated[Account, Depends(current_account)]
OptionalAccountDep = Annotated[Account | None, Depends(optional_account)]


def require_role(*roles: str) -> Callable[[Account], Account]:
    """A dependency allowing only ``roles`` (403 otherwise); returns the account.

    >>> dep = require_role("admin", "leader")
    """
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown roles {unknown}: expected some of {ROLES}")

    def _check(account: AccountDep) -> Account:
        if account.role not in roles:
            raise Forbidden(
                f"role {account.role!r} may not do this: allowed roles are {', '.join(roles)}"
            )
        return account

    return _check
