"""Models of sign-in, sessions, passwords and tokens (``api/routes/session.py``).

No answer ever carries a password, a hash or a session id; a token appears once, in the
answer that created it (``TokenIssued``).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.models.common import ApiModel

__all__ = [
    "LoginIn",
    "PasswordChangeIn",
    "PasswordSetIn",
    "TokenIn",
    "TokenRotateIn",
    "AccountOut",
    "SessionOut",
    "TokenOut",
    "TokenIssued",
    "Done",
]

_PASSWORD_RULE = "10 to 256 characters, no control characters, not the username"


class LoginIn(ApiModel):
    """A username and password (form-encoded or JSON)."""

    username: str = Field(
        min_length=1,
        max_length=256,
        description="the login name an admin gave (`geogrid users add … --username`)",
        examples=["limei"],
    )
    password: str = Field(
        min_length=1,
        max_length=1024,
        description="the password (never logged or echoed)",
        examples=["correct horse battery staple"],
    )


class PasswordChangeIn(ApiModel):
    """A person changes their own password."""

    old_password: str = Field(
        min_length=1,
        max_length=1024,
        description="the current password",
        examples=["correct horse battery staple"],
    )
    new_password: str = Field(
        min_length=1,
        max_length=1024,
        description=f"the new password: {_PASSWORD_RULE}",
        examples=["a longer passphrase of mine"],
    )


class PasswordSetIn(ApiModel):
    """An admin sets (resets) an account's password."""

    password: str = Field(
        min_length=1,
        max_length=1024,
        description=f"the new password: {_PASSWORD_RULE}",
        examples=["a longer passphrase of mine"],
    )
    username: str | None = Field(
        default=None,
        max_length=256,
        description="a new username (required when the account has none yet); 3 to 64 of "
        "a-z 0-9 . _ - @",
        examples=["limei"],
    )


class TokenIn(ApiModel):
    """A new token for a machine or a device."""

    days: float = Field(
        default=90,
        ge=0,
        le=3650,
        description="lifetime in days (0: expires at once)",
        examples=[90],
    )
    label: str | None = Field(
        default=None,
        max_length=200,
        description="what the token is for (shown in listings)",
        examples=["worker phone 3"],
    )
    account_id: int | None = Field(
        default=None,
        ge=1,
        le=2_147_483_647,
        description="the account to issue it for (admins only; default: the caller)",
        examples=[12],
    )


class TokenRotateIn(ApiModel):
    """Lifetime of the token that replaces a rotated one."""

    days: float = Field(
        default=90, ge=0, le=3650, description="lifetime in days of the new token", examples=[90]
    )


class AccountOut(ApiModel):
    """An account as the API shows it."""

    id: int = Field(description="account id", examples=[12])
    name: str = Field(description="display name", examples=["李梅"])
    username: str | None = Field(description="login name (None: no login)", examples=["limei"])
    role: str = Field(description="role", examples=["leader"])
    units: list[str] = Field(description="unit codes the account is bound to", examples=[[]])
    ref: str | None = Field(description="external reference", examples=["W-0012"])


class SessionOut(ApiModel):
    """Who is signed in, and the CSRF token to send as ``X-CSRF-Token`` on writes."""

    account: AccountOut = Field(description="the signed-in account")
    csrf_token: str | None = Field(
        description="the session's CSRF token (None when authenticated by a bearer token)",
        examples=["5nC0mRj0m3v1t0gA2kWqZt8yH3bJ6sLd9fPq1xV4uE0"],
    )
    expires_at: datetime | None = Field(
        description="when the session ends (None for a bearer token)",
        examples=["2026-03-01T20:00:00+00:00"],
    )


class TokenOut(ApiModel):
    """A token's record (never the token)."""

    id: int = Field(description="token id", examples=[31])
    account_id: int = Field(description="the account holding it", examples=[12])
    label: str | None = Field(description="what it is for", examples=["worker phone 3"])
    created_at: datetime = Field(description="issued at", examples=["2026-03-01T08:00:00+00:00"])
    expires_at: datetime | None = Field(
        description="expires at", examples=["2026-05-30T08:00:00+00:00"]
    )
    revoked_at: datetime | None = Field(description="revoked at", examples=[None])
    last_used_at: datetime | None = Field(
        description="last use (to the minute)", examples=["2026-03-02T01:15:00+00:00"]
    )
    state: str = Field(description="active, expired or revoked", examples=["active"])


class TokenIssued(TokenOut):
    """A new token: its record and the token itself (shown this once only)."""

    token: str = Field(
        description="the bearer token; stored only as a hash, copy it now",
        examples=["q3Jx0t8Zr2m0yVn5cS1hU7kWbE4dA9fL6pG2oT8iR0s"],
    )


class Done(ApiModel):
    """A plain acknowledgement."""

    ok: bool = Field(description="always true", examples=[True])
    message: str = Field(description="what was done", examples=["signed out"])
