"""The answer of ``GET /locate``: the unit at every level containing a point."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.models.common import ApiModel

__all__ = ["LocatedPoint", "LocatedUnit", "Location", "QueryPoint"]


class QueryPoint(ApiModel):
    """The point as asked."""

    lon: float = Field(description="longitude (or easting) in ``crs``", examples=[110.18])
    lat: float = Field(description="latitude (or northing) in ``crs``", examples=[22.65])
    crs: str = Field(description="the CRS the point was given in", examples=["gcj02"])


class LocatedPoint(ApiModel):
    """The point in WGS84 (EPSG:4326)."""

    lon: float = Field(description="longitude, degrees", examples=[110.1752])
    lat: float = Field(description="latitude, degrees", examples=[22.6528])


class LocatedUnit(ApiModel):
    """A unit containing the point."""

    code: str = Field(description="unit code", examples=["450902001001001"])
    name: str = Field(description="unit name", examples=["江滨社区第1网格"])
    level: Literal["district", "street", "community", "grid"] = Field(
        description="level of the unit", examples=["grid"]
    )
    parent_code: str | None = Field(None, description="code of the unit above")
    population: int | None = Field(None, description="residents", examples=[1830])
    households: int | None = Field(None, description="households", examples=[640])
    area_m2: float | None = Field(
        None, description="area in m² (metric CRS of the city)", examples=[152000.0]
    )


class Location(ApiModel):
    """The units containing a point, at every level (empty outside every district)."""

    query: QueryPoint = Field(description="the point as asked")
    wgs84: LocatedPoint = Field(description="the point in WGS84")
    version_id: int = Field(description="boundary version looked in", examples=[3])
    inside: bool = Field(description="whether the point is inside a district")
    units: dict[str, LocatedUnit] = Field(
        description="level → the unit of that level containing the point"
    )
    message: str | None = Field(None, description="why no unit was found")
