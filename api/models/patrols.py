"""The bodies and answers of ``/patrols`` (issue 13: the grid worker's patrols)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.models.common import ApiModel, Feature
from api.models.incidents import CRS_DESCRIPTION
from geogrid.core.patrol import MAX_POINTS
from geogrid.services.patrols import MAX_CHECKINS

__all__ = ["CheckinIn", "PatrolIn", "PatrolGrid", "PatrolOut", "PatrolCollection", "PatrolMetric"]


class CheckinIn(ApiModel):
    """A check-in at a place: a building (``building_id``) or a named place."""

    lon: float = Field(
        description="longitude in the patrol's `crs`", examples=[110.1481], allow_inf_nan=False
    )
    lat: float = Field(
        description="latitude in the patrol's `crs`", examples=[22.6277], allow_inf_nan=False
    )
    at: datetime = Field(
        description="when (ISO 8601 with a time zone)", examples=["2026-05-04T09:20:00+08:00"]
    )
    building_id: int | None = Field(
        None,
        ge=1,
        le=2**63 - 1,
        description="a building of reg_building (when loaded) or building",
        examples=[1],
    )
    place: str | None = Field(
        None, max_length=200, description="a place's name (a shop…)", examples=["小区东门"]
    )
    accuracy_m: float | None = Field(
        None,
        ge=0,
        description="horizontal accuracy of the position, metres",
        examples=[8.0],
        allow_inf_nan=False,
    )


class PatrolIn(ApiModel):
    """An uploaded patrol: its GPS points and check-ins."""

    started_at: datetime = Field(
        description="start (ISO 8601 with a time zone)", examples=["2026-05-04T09:00:00+08:00"]
    )
    ended_at: datetime = Field(
        description="end (ISO 8601 with a time zone)", examples=["2026-05-04T10:00:00+08:00"]
    )
    crs: str = Field("wgs84", description=CRS_DESCRIPTION, examples=["wgs84"], max_length=64)
    points: list[list[float | None]] = Field(
        description="[lon, lat, epoch_ms] or [lon, lat, epoch_ms, accuracy_m] per GPS fix",
        max_length=MAX_POINTS,
        examples=[[[110.1481, 22.6277, 1777856400000, 8.0]]],
    )
    checkins: list[CheckinIn] = Field(
        default_factory=list,
        max_length=MAX_CHECKINS,
        description="check-ins at buildings or places along the way",
    )
    media: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="sha256 of photos taken on the patrol (uploaded first with PUT /media)",
        examples=[["3f0a1c5b9d2e4f6a8b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a"]],
    )


class PatrolGrid(ApiModel):
    """A patrol's (or a day's) measures in one grid."""

    grid_code: str
    seconds_in_grid: float = Field(description="seconds in the grid (time interpolated)")
    length_m: float = Field(description="metres walked in the grid (metric CRS)")
    coverage: float = Field(description="share of the grid's area within 50 m of the track")
    buildings_visited: int = Field(0, description="buildings of the grid visited")


class PatrolOut(ApiModel):
    """A stored patrol with its measures."""

    id: int
    account_id: int
    started_at: datetime
    ended_at: datetime
    distance_m: float = Field(description="length of the cleaned track, metres")
    duration_s: float = Field(description="ended_at - started_at, seconds")
    points_received: int
    points_kept: int = Field(description="points left after cleaning")
    metric_crs: str = Field(description="the CRS lengths and areas were measured in")
    grids: list[PatrolGrid]
    buildings_visited: int
    checkins: list[int] = Field(description="ids of the stored check-ins")
    grid_code: str | None = Field(None, description="the grid the patrol spent most time in")
    community_code: str | None = None
    street_code: str | None = None
    district_code: str | None = None


class PatrolCollection(ApiModel):
    """A day's patrols: one Feature per patrol (its track as a MultiLineString)."""

    type: str = "FeatureCollection"
    day: str
    features: list[Feature]


class PatrolMetric(ApiModel):
    """A worker's day in one grid."""

    day: str
    account_id: int
    account_name: str | None = Field(None, description="masked outside the caller's units")
    grid_code: str
    patrols: int
    seconds_in_grid: float
    length_m: float
    buildings_visited: int
    coverage: float = Field(description="of the union of the day's tracks")
