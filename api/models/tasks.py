"""The answer of ``GET /tasks`` (the terminal's "my tasks", issue 13)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.models.common import ApiModel

__all__ = ["Task"]


class Task(ApiModel):
    """An open incident the caller answers for."""

    id: int
    category: str
    category_name_zh: str | None = None
    category_name_en: str | None = None
    description: str | None = Field(
        None, description="contact details masked outside the caller's units"
    )
    status: str
    transitions: list[str] = Field(description="statuses it may move to now")
    reported_at: datetime
    updated_at: datetime = Field(
        description="send it back as `expected_updated_at` with a transition or a note"
    )
    due_at: datetime | None = None
    overdue: bool
    assigned_level: str | None = None
    assigned_unit: str | None = None
    assignee_id: int | None = None
    via: str = Field(description="me (assigned to the caller), unit (one of their units) or team")
    grid_code: str | None = None
    community_code: str | None = None
    street_code: str | None = None
    district_code: str | None = None
    lon: float | None = None
    lat: float | None = None
