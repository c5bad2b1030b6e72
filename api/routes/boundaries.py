"""Boundary layers: ``GET /boundaries/versions`` and ``GET /boundaries/{level}`` (GeoJSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.deps import EngineDep
from api.json import GeoJSONResponse
from api.models.boundaries import BoundaryLayer, BoundaryVersion
from api.models.common import error_responses
from api.params import parse_bbox
from geogrid.core.hierarchy import Level
from geogrid.services import units

__all__ = ["router"]

router = APIRouter(prefix="/boundaries", tags=["boundaries"])


@router.get("/versions", response_model=list[BoundaryVersion], summary="Every boundary version")
def versions(engine: EngineDep) -> list[dict[str, Any]]:
    """Every boundary version, oldest first (drafts, the published one, retired ones)."""
    return units.list_versions(engine)


@router.get(
    "/{level}",
    response_model=BoundaryLayer,
    response_class=GeoJSONResponse,
    summary="A level's units as GeoJSON",
    responses=error_responses(400, 404),
)
def boundary_layer(
    engine: EngineDep,
    level: Annotated[
        Level,
        Path(description="level: district, street, community or grid", examples=["street"]),
    ],
    bbox: Annotated[
        str | None,
        Query(
            description="only units meeting this box: minLon,minLat,maxLon,maxLat (WGS84 degrees)",
            examples=["110.15,22.62,110.16,22.63"],
        ),
    ] = None,
    parent: Annotated[
        str | None,
        Query(description="only the children of this unit code", examples=["450902001"]),
    ] = None,
    version: Annotated[
        int | None,
        Query(description="boundary version id (default: the published one)", examples=[3]),
    ] = None,
    as_of: Annotated[
        datetime | None,
        Query(
            description="the version published at this time (ISO 8601 with an offset)",
            examples=["2026-03-01T00:00:00Z"],
        ),
    ] = None,
) -> GeoJSONResponse:
    """The units of a level (district, street, community, grid) as a GeoJSON
    FeatureCollection in WGS84 (EPSG:4326), ordered by code."""
    layer = units.boundary_layer(
        engine, level, version=version, as_of=as_of, bbox=parse_bbox(bbox), parent=parent
    )
    # Sent as it is: the grid layer is ~16 MB, and checking it against ``BoundaryLayer``
    # on every request would triple its time (tests/test_service.py checks the shape).
    return GeoJSONResponse(layer)
