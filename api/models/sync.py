"""The answer of ``GET /sync`` (the terminal's offline bundle, issue 13)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from api.models.common import ApiModel, FeatureCollection
from api.models.notifications import Notification
from api.models.tasks import Task

__all__ = ["SyncAccount", "SyncBundle"]


class SyncAccount(ApiModel):
    id: int
    name: str
    role: str
    units: list[str]
    teams: list[dict[str, Any]]


class SyncBundle(ApiModel):
    """Everything the terminal caches for offline work."""

    server_time: datetime = Field(description="send it back as `since` next time")
    since: datetime | None = None
    account: SyncAccount
    grids: FeatureCollection = Field(description="the caller's grids (WGS84)")
    buildings: FeatureCollection = Field(
        description="building points in those grids; `source` is reg_building or building"
    )
    tasks: list[Task]
    tasks_total: int
    notifications: list[Notification]
    categories: list[dict[str, Any]]
    vocabulary: dict[str, Any]
    care: list[dict[str, Any]] = Field(description="people due a visit in the caller's grids")
