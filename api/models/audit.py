"""The answer of ``GET /audit``: rows of the append-only audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from api.models.common import ApiModel

__all__ = ["AuditEntry"]


class AuditEntry(ApiModel):
    """One recorded action: a write, or a read of personal fields in clear."""

    id: int = Field(description="row id (increasing)", examples=[1])
    at: datetime = Field(description="when it was recorded (UTC)")
    actor_id: int | None = Field(None, description="the acting account (null: anonymous/CLI)")
    actor_role: str | None = Field(
        None, description="the actor's role (system: the CLI)", examples=["worker"]
    )
    action: str = Field(description="what was done", examples=["incident.read"])
    resource: str = Field(description="the kind of record", examples=["incident"])
    resource_ids: list[str] | None = Field(
        None, description="ids of the records (one row per request)", examples=[["1024"]]
    )
    fields: list[str] | None = Field(
        None,
        description="personal fields read in clear (names only, never values)",
        examples=[["description", "last_note"]],
    )
    ip: str | None = Field(None, description="the client's IP address", examples=["10.0.0.7"])
    user_agent: str | None = Field(None, description="the client's user agent")
    detail: dict[str, Any] | None = Field(None, description="extra facts (filters, statuses)")
