"""The answers of ``/notifications`` (issue 13): no personal field."""

from __future__ import annotations

from datetime import datetime

from api.models.common import ApiModel

__all__ = ["NotificationIncident", "Notification"]


class NotificationIncident(ApiModel):
    id: int
    category: str
    category_name_zh: str | None = None
    category_name_en: str | None = None
    status: str
    due_at: datetime | None = None
    updated_at: datetime
    assigned_level: str | None = None
    assigned_unit: str | None = None
    grid_code: str | None = None


class Notification(ApiModel):
    """A new assignment, due soon, overdue or escalated."""

    id: int
    kind: str
    title_zh: str
    title_en: str
    created_at: datetime
    read_at: datetime | None = None
    incident: NotificationIncident
