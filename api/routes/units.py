"""Units for the map: ``GET /units/search`` (name or code, district to grid) and
``GET /units/labels`` (where the names are written)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import EngineDep
from api.json import GeoJSONResponse
from api.models.common import error_responses
from api.models.units import LabelLayer, UnitMatch
from geogrid.core.hierarchy import Level
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


@router.get(
    "/labels",
    response_model=LabelLayer,
    response_class=GeoJSONResponse,
    summary="Where the map writes the units' names",
    responses=error_responses(400),
)
def labels(
    engine: EngineDep,
    level: Annotated[
        Level,
        Query(description="level: district, street, community or grid", examples=["grid"]),
    ],
    parent: Annotated[
        str | None,
        Query(description="only the children of this unit code", examples=["450902001001"]),
    ] = None,
) -> dict[str, Any]:
    """One point per published unit of ``level`` (the centre of its largest inscribed
    circle) with its code and name: the web map writes each name once, not once per tile."""
    return units.label_points(engine, level, parent)
