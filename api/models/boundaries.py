"""The answers of ``/boundaries``: boundary versions and a level as GeoJSON."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.models.common import ApiModel, Feature, FeatureCollection

__all__ = ["BoundaryVersion", "UnitProperties", "UnitFeature", "BoundaryLayer"]


class BoundaryVersion(ApiModel):
    """One generation of the boundaries (MapIt-style): draft, published (one) or retired."""

    id: int = Field(description="version id", examples=[3])
    label: str = Field(description="label of the version", examples=["2026 Q1 grids"])
    status: Literal["draft", "published", "retired"] = Field(
        description="lifecycle of the version", examples=["published"]
    )
    based_on: int | None = Field(
        None, description="id of the version it was copied from", examples=[2]
    )
    source: str | None = Field(None, description="where the boundaries came from")
    author: str | None = Field(None, description="who made the version")
    created_at: datetime | None = Field(None, description="when it was created (UTC)")
    published_at: datetime | None = Field(None, description="when it was published (UTC)")
    retired_at: datetime | None = Field(None, description="when a later version replaced it")
    units: int = Field(description="number of units (all levels)", examples=[9345])


class UnitProperties(ApiModel):
    """The attributes of one unit."""

    code: str = Field(description="unit code (6, 9, 12 or 15 digits)", examples=["450902001"])
    name: str = Field(description="unit name", examples=["名山街道"])
    level: Literal["district", "street", "community", "grid"] = Field(
        description="level of the unit", examples=["street"]
    )
    parent_code: str | None = Field(
        None, description="code of the unit above (null for a district)", examples=["450902"]
    )
    population: int | None = Field(None, description="residents", examples=[48210])
    households: int | None = Field(None, description="households", examples=[16105])
    area_m2: float | None = Field(
        None, description="area in square metres (metric CRS of the city)", examples=[5.2e6]
    )


class UnitFeature(Feature):
    """One unit as a GeoJSON Feature (WGS84 MultiPolygon)."""

    properties: UnitProperties = Field(description="attributes of the unit")  # type: ignore[assignment]  # narrows Feature.properties


class BoundaryLayer(FeatureCollection):
    """The units of one level as a GeoJSON FeatureCollection (EPSG:4326), ordered by code."""

    features: list[UnitFeature] = Field(description="the units")  # type: ignore[assignment]  # narrows FeatureCollection.features
    version_id: int = Field(description="the boundary version read", examples=[3])
