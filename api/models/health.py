"""The answer of ``GET /health``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.models.common import ApiModel

__all__ = ["PublishedVersion", "HealthReport", "ReplicaHealth"]


class PublishedVersion(ApiModel):
    """The boundary version readers see."""

    id: int = Field(description="boundary version id", examples=[3])
    label: str = Field(description="label of the version", examples=["2026 Q1 grids"])
    published_at: datetime | None = Field(
        None, description="when it was published (UTC)", examples=["2026-03-01T08:00:00+00:00"]
    )
    grids: int = Field(description="number of grids in it", examples=[8798])


class ReplicaHealth(ApiModel):
    """The read replica (issue 12; ``GEOGRID_DATABASE_REPLICA_URL``). Reads use it only when
    ``state`` is up; otherwise the primary answers them (the service stays healthy)."""

    state: Literal["up", "lagging", "down", "not_standby"] = Field(
        description="up (reads go there), lagging (more than max_lag_s behind), down "
        "(unreachable or failing) or not_standby (not in recovery)",
        examples=["up"],
    )
    lag_s: float | None = Field(
        None, description="seconds behind the primary (0 when caught up)", examples=[0.0]
    )
    lag_bytes: int | None = Field(
        None, description="bytes of the primary's WAL not replayed yet", examples=[0]
    )
    paused: bool = Field(False, description="replay paused on the replica", examples=[False])
    max_lag_s: float = Field(description="the lag bound (replica_max_lag_s)", examples=[5.0])
    error: str | None = Field(None, description="why it is down", examples=[None])
    reads: dict[str, int] = Field(
        description="reads routed to the replica and to the primary since the start",
        examples=[{"replica": 120, "primary": 3}],
    )


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
    replica: ReplicaHealth | None = Field(
        None, description="the read replica; null when none is configured (issue 12)"
    )
