"""The answer of ``GET /units/search``: units found by name or code."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.models.common import ApiModel, Feature, FeatureCollection

__all__ = ["UnitMatch", "LabelProperties", "LabelFeature", "LabelLayer"]


class UnitMatch(ApiModel):
    """A unit found by a search, with where it lies (its ancestors) and its extent."""

    code: str = Field(description="unit code (6, 9, 12 or 15 digits)", examples=["450902001001"])
    name: str = Field(description="unit name", examples=["东门社区"])
    level: Literal["district", "street", "community", "grid"] = Field(
        description="level of the unit", examples=["community"]
    )
    parent_names: list[str] = Field(
        description="names of the unit's ancestors, top down (district first)",
        examples=[["玉州区", "名山街道"]],
    )
    parent_codes: list[str] = Field(
        description="codes of the unit's ancestors, top down", examples=[["450902", "450902001"]]
    )
    bbox: tuple[float, float, float, float] = Field(
        description="extent: min lon, min lat, max lon, max lat (WGS84 degrees)",
        examples=[[110.15, 22.62, 110.16, 22.63]],
    )


class LabelProperties(ApiModel):
    """What a label says: the unit's name (and its code, to match the unit's tiles)."""

    code: str = Field(description="unit code", examples=["450902001001001"])
    name: str = Field(description="unit name", examples=["江滨社区第1网格"])


class LabelFeature(Feature):
    """Where a unit's name is written: a point (the centre of the unit's largest inscribed
    circle, WGS84)."""

    properties: LabelProperties | None = Field(None, description="the unit's code and name")  # type: ignore[assignment]  # a narrower model of the same dict


class LabelLayer(FeatureCollection):
    """The label points of a level's units (GeoJSON, WGS84), ordered by code."""

    features: list[LabelFeature] = Field(description="one point per unit")  # type: ignore[assignment]  # narrower feature model
