"""``GET /locate``: the unit at every level containing a point."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import ReadEngineDep
from api.models.common import error_responses
from api.models.locate import Location
from geogrid.services.lookup import locate as locate_point

router = APIRouter(tags=["boundaries"])


@router.get("/locate", response_model=Location, responses=error_responses(400, 404))
def locate(
    engine: ReadEngineDep,
    lon: Annotated[float, Query(description="longitude (or easting) in `crs`", examples=[110.18])],
    lat: Annotated[float, Query(description="latitude (or northing) in `crs`", examples=[22.65])],
    crs: Annotated[
        str,
        Query(
            description="coordinate system of lon/lat: wgs84 (default), gcj02 (AMap/Tencent), "
            "bd09 (Baidu) or an EPSG code (e.g. EPSG:4546)",
            examples=["wgs84"],
        ),
    ] = "wgs84",
    version: Annotated[
        int | None,
        Query(description="boundary version id (default: the published one)", examples=[3]),
    ] = None,
    as_of: Annotated[
        datetime | None,
        Query(
            description="the boundaries published at this date-time (RFC 3339)",
            examples=["2026-01-01T00:00:00+08:00"],
        ),
    ] = None,
) -> dict[str, Any]:
    """The units containing a point at every level (district, street, community, grid)."""
    return locate_point(lon, lat, crs=crs, version=version, as_of=as_of, engine=engine)
