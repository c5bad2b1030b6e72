"""Unit search: ``GET /units/search`` (name or code, district to grid)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import EngineDep
from api.models.common import error_responses
from api.models.units import UnitMatch
from geogrid.services import units

__all__ = ["router"]

router = APIRouter(prefix="/units", tags=["boundaries"])


@router.get(
    "/search",
    response_model=list[UnitMatch],
    summary="Find units by name or code",
    responses=error_responses(400),
)
def search(
    engine: EngineDep,
    q: Annotated[
        str,
        Query(
            description="part of a unit's name (case-insensitive) or the head of its code",
            examples=["东门"],
            max_length=100,
        ),
    ],
    limit: Annotated[
        int,
        Query(
            description=f"at most this many units (1 to {units.SEARCH_LIMIT})",
            examples=[10],
        ),
    ] = 10,
) -> list[dict[str, Any]]:
    """Units of the published boundaries whose name contains ``q`` or whose code starts
    with it: an exact match first, then the upper levels, then by code; each with its
    ancestors' names and its extent (to fly the map there)."""
    return units.search_units(engine, q, limit)
