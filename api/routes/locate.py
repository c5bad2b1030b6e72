"""``GET /locate``: the unit at every level containing a point."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import EngineDep
from geogrid.services.lookup import locate as locate_point

router = APIRouter(tags=["boundaries"])


@router.get("/locate")
def locate(
    engine: EngineDep,
    lon: Annotated[float, Query(description="longitude in degrees, in `crs`")],
    lat: Annotated[float, Query(description="latitude in degrees, in `crs`")],
    crs: Annotated[
        str,
        Query(
            description="coordinate system of lon/lat: wgs84 (default), "
            "gcj02 (AMap/Tencent) or bd09 (Baidu)"
        ),
    ] = "wgs84",
    version: Annotated[int | None, Query(description="boundary version id")] = None,
    as_of: Annotated[
        datetime | None, Query(description="boundaries published at this date-time (RFC 3339)")
    ] = None,
) -> dict:
    return locate_point(lon, lat, crs=crs, version=version, as_of=as_of, engine=engine)
