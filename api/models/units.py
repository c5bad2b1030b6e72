"""The answer of ``GET /units/search``: units found by name or code."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.models.common import ApiModel

__all__ = ["UnitMatch"]


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
