"""Bearer-token authentication: ``Authorization: Bearer <token>`` → :class:`Account`.

Missing or unknown tokens raise :class:`~geogrid.errors.Unauthorized` (401 JSON with a
``WWW-Authenticate: Bearer`` header, mapped in ``api/errors.py``); a role that is not
allowed raises :class:`~geogrid.errors.Forbidden` (403).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import EngineDep
from geogrid.core.accounts import ROLES, Account
from geogrid.errors import Forbidden
from geogrid.services.accounts import authenticate

__all__ = [
    "current_account",
    "optional_account",
    "require_role",
    "AccountDep",
    "OptionalAccountDep",
    "bearer_token",
]

_bearer = HTTPBearer(auto_error=False, description="a token from `geogrid users add`")


def bearer_token(
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    """The bearer token of the request, or None."""
    if creds is None or creds.scheme.lower() != "bearer":
        return None
    return creds.credentials


def current_account(
    engine: EngineDep,
    token: Annotated[str | None, Depends(bearer_token)],
) -> Account:
    """The authenticated account (401 without a valid bearer token)."""
    return authenticate(engine, token)


def optional_account(
    engine: EngineDep,
    token: Annotated[str | None, Depends(bearer_token)],
) -> Account | None:
    """The account when a token is sent (401 for an unknown one), None when none is."""
    if token is None:
        return None
    return authenticate(engine, token)


AccountDep = Annotated[Account, Depends(current_account)]
OptionalAccountDep = Annotated[Account | None, Depends(optional_account)]


def require_role(*roles: str):
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
