"""The answer of ``GET /health``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.models.common import ApiModel

__all__ = ["PublishedVersion", "HealthReport"]


class PublishedVersion(ApiModel):
    """The boundary version readers see."""

    id: int = Field(description="boundary version id", examples=[3])
    label: str = Field(description="label of the version", examples=["2026 Q1 grids"])
    published_at: datetime | None = Field(
        None, description="when it was published (UTC)", examples=["2026-03-01T08:00:00+00:00"]
    )
    grids: int = Field(description="number of grids in it", examples=[8798])


class HealthReport(ApiModel):
    """Health of the service (HTTP 200 when healthy, 503 when not)."""

    status: Literal["healthy", "unhealthy"] = Field(
        description="healthy when the database answers", examples=["healthy"]
    )
    database: Literal["reachable", "unreachable"] = Field(
        description="whether the database answered", examples=["reachable"]
    )
    postgresql: str | None = Field(None, description="PostgreSQL server version", examples=["16.4"])
    postgis: str | None = Field(None, description="PostGIS library version", examples=["3.4.2"])
    published_version: PublishedVersion | None = Field(
        None, description="the published boundary version; null before the first publication"
    )
    error: str | None = Field(
        None, description="the driver's message when unhealthy (at most 300 characters)"
    )
