"""The bodies and answers of ``/disputes`` (矛盾纠纷, issue 13)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from api.models.common import ApiModel
from api.models.incidents import CRS_DESCRIPTION
from geogrid.core.disputes import DISPUTE_CATEGORIES, OUTCOMES, PARTY_ROLES

__all__ = ["PartyIn", "DisputeIn", "SessionIn", "OutcomeIn", "Party", "DisputeSession", "Dispute"]

_CATS = ", ".join(f"{k} ({zh})" for k, (zh, _) in DISPUTE_CATEGORIES.items())
_OUTCOMES = ", ".join(f"{k} ({zh})" for k, (zh, _) in OUTCOMES.items())


class PartyIn(ApiModel):
    name: str = Field(description="the party's name", examples=["王某某"], max_length=50)
    phone: str | None = Field(
        None, description="a phone number", examples=["13800001111"], max_length=20
    )
    role: str = Field("other", description=", ".join(PARTY_ROLES), examples=["applicant"])
    note: str | None = Field(
        None, description="about this party", examples=["楼上住户"], max_length=500
    )


class DisputeIn(ApiModel):
    """A new dispute, placed by an incident, a point or a grid."""

    cause: str = Field(
        description="what it is about", examples=["楼上漏水引发邻里矛盾"], max_length=4000
    )
    category: str = Field(description=_CATS, examples=["neighbour"])
    parties: list[PartyIn] = Field(
        description="the people in the dispute (1 to 20)", min_length=1, max_length=20
    )
    incident_id: int | None = Field(
        None, ge=1, le=2**62, description="the incident it came from", examples=[1024]
    )
    lon: float | None = Field(
        None, description="longitude in `crs` (the place)", allow_inf_nan=False, examples=[110.1476]
    )
    lat: float | None = Field(
        None, description="latitude in `crs` (the place)", allow_inf_nan=False, examples=[22.6277]
    )
    crs: str = Field("wgs84", description=CRS_DESCRIPTION, examples=["wgs84"], max_length=64)
    grid_code: str | None = Field(
        None,
        description="the grid, when no point is given",
        examples=["450902001001001"],
        max_length=15,
    )
    at: datetime | None = Field(
        None,
        description="when it was recorded (default now)",
        examples=["2026-05-04T09:00:00+08:00"],
    )
    media: list[str] | None = Field(
        None,
        description="sha256s of photos uploaded with PUT /media/{sha256}",
        examples=[["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]],
        max_length=20,
    )


class SessionIn(ApiModel):
    """A mediation session."""

    note: str = Field(
        description="what was discussed and agreed", examples=["双方当面沟通"], max_length=4000
    )
    at: datetime | None = Field(
        None, description="when it was held (default now)", examples=["2026-05-04T10:00:00+08:00"]
    )
    outcome: str | None = Field(
        None, description=f"closes the dispute: {_OUTCOMES}", examples=["agreement"]
    )
    outcome_note: str | None = Field(
        None,
        description="about the outcome (with `outcome`)",
        examples=["签订人民调解协议书"],
        max_length=4000,
    )
    media: list[str] | None = Field(
        None,
        description="sha256s of photos (e.g. the signed agreement) uploaded with PUT /media",
        examples=[["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]],
        max_length=20,
    )


class OutcomeIn(ApiModel):
    """The outcome that closes a dispute."""

    outcome: str = Field(description=_OUTCOMES, examples=["agreement"])
    note: str | None = Field(
        None, description="about the outcome", max_length=4000, examples=["签订人民调解协议书"]
    )
    at: datetime | None = Field(
        None, description="when (default now)", examples=["2026-05-04T11:00:00+08:00"]
    )


class Party(ApiModel):
    name: str | None = Field(description="masked outside the caller's units")
    phone: str | None = Field(None, description="masked outside the caller's units")
    role: str
    note: str | None = None


class DisputeSession(ApiModel):
    id: int
    at: datetime
    mediator_id: int | None = None
    note: str | None = None
    outcome: str | None = None
    created_at: datetime


class Dispute(ApiModel):
    """A dispute, personal fields as the caller may see them."""

    id: int
    incident_id: int | None = None
    cause: str | None = None
    category: str
    category_name_zh: str | None = None
    category_name_en: str | None = None
    status: str
    parties: list[Party]
    grid_code: str | None = None
    community_code: str | None = None
    street_code: str | None = None
    district_code: str | None = None
    lon: float | None = None
    lat: float | None = None
    created_by: int | None = None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    outcome: str | None = None
    outcome_name_zh: str | None = None
    outcome_name_en: str | None = None
    outcome_note: str | None = None
    session_count: int = 0
    sessions: list[DisputeSession] | None = None
    media: list[dict[str, Any]] | None = Field(
        None, description="attached photos: sha256, role, mime, url, thumb_url"
    )
