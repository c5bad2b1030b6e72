"""The bodies and answers of ``/terminals`` (the grid worker's enrolled phones)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.models.common import ApiModel
from geogrid.core.terminals import DEFAULT_TTL_MINUTES, MAX_APP_VERSION, MAX_LABEL, MAX_TTL_MINUTES

__all__ = [
    "EnrolmentIn",
    "TerminalAccount",
    "EnrolmentOut",
    "RedeemIn",
    "TerminalIssued",
    "TerminalOut",
    "RevokeIn",
]

_ID = 2_147_483_647


class EnrolmentIn(ApiModel):
    """An enrolment code to issue for a worker's new device."""

    account_id: int = Field(
        ge=1, le=_ID, description="the worker whose device is enrolled", examples=[12]
    )
    ttl_minutes: int = Field(
        DEFAULT_TTL_MINUTES,
        ge=1,
        le=MAX_TTL_MINUTES,
        description="how long the code is valid (minutes; default a day, at most a week)",
        examples=[1440],
    )


class TerminalAccount(ApiModel):
    """The account a device is (or will be) bound to."""

    id: int = Field(description="account id", examples=[12])
    name: str = Field(description="the account's name", examples=["王小红"])
    role: str | None = Field(None, description="its role", examples=["worker"])
    units: list[str] = Field(
        default_factory=list, description="its unit codes", examples=[["450902001001001"]]
    )


class EnrolmentOut(ApiModel):
    """A one-time enrolment code (shown this once) with its QR code."""

    code: str = Field(
        description="the code, typed on the phone or scanned (10 characters, dash optional)",
        examples=["7KQ2M-X9DPA"],
    )
    expires_at: datetime = Field(description="the code is refused after this time")
    uri: str = Field(
        description="what the QR code holds: the app's enrolment address with the code",
        examples=["https://grid.example.org/m/#enrol=7KQ2M-X9DPA"],
    )
    qr_svg: str = Field(description="the QR code as an SVG document (inline text)")
    enrolment_id: int = Field(description="the enrolment's id", examples=[3])
    account: TerminalAccount


class RedeemIn(ApiModel):
    """A phone redeeming its enrolment code."""

    code: str = Field(
        min_length=1,
        max_length=40,
        description="the enrolment code (case, spaces and dashes do not matter)",
        examples=["7KQ2M-X9DPA"],
    )
    label: str | None = Field(
        None,
        max_length=MAX_LABEL,
        description="a name for the device, shown in the admins' list",
        examples=["王小红的手机"],
    )
    app_version: str | None = Field(
        None, max_length=MAX_APP_VERSION, description="the app's version", examples=["1.0.0"]
    )


class TerminalIssued(ApiModel):
    """A newly enrolled device and its credential (shown this once)."""

    terminal_id: int = Field(description="the device's id", examples=[7])
    token: str = Field(
        description="the device's bearer token (stored only as a hash; send it as "
        "`Authorization: Bearer <token>`)",
        examples=["q3Jx0t8Zr2m0yVn5cS1hU7kWbE4dA9fL6pG2oT8iR0s"],
    )
    expires_at: datetime | None = Field(None, description="the token expires at")
    account: TerminalAccount


class TerminalOut(ApiModel):
    """An enrolled device (never its token)."""

    id: int = Field(description="terminal id", examples=[7])
    account_id: int = Field(description="the worker", examples=[12])
    account_name: str | None = Field(None, description="the worker's name", examples=["王小红"])
    units: list[str] = Field(default_factory=list, description="the worker's units")
    label: str | None = Field(None, description="the device's name", examples=["王小红的手机"])
    app_version: str | None = Field(None, description="the app's version, last seen")
    user_agent: str | None = Field(None, description="the browser's user agent, last seen")
    enrolled_at: datetime = Field(description="when it was enrolled")
    last_seen_at: datetime | None = Field(None, description="its last request (to the minute)")
    revoked_at: datetime | None = Field(None, description="when it was revoked")
    revoked_reason: str | None = Field(None, description="why it was revoked")
    token_revoked_at: datetime | None = Field(None, description="when its token was revoked")
    token_expires_at: datetime | None = Field(None, description="when its token expires")
    state: str = Field(description="active or revoked", examples=["active"])


class RevokeIn(ApiModel):
    """Why a device is revoked."""

    reason: str | None = Field(
        None, max_length=500, description="e.g. lost or stolen", examples=["手机丢失"]
    )
