"""Point lookup: the unit at every level that contains a point (like MapIt's point query)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine

from geogrid.core import crs as gcrs
from geogrid.errors import InvalidInput
from geogrid.store import get_engine
from geogrid.store.units import lookup_point

__all__ = ["locate"]


def locate(
    lon: float,
    lat: float,
    *,
    crs: str = "wgs84",
    version: int | None = None,
    as_of: datetime | None = None,
    engine: Engine | None = None,
) -> dict[str, Any]:
    """Units containing a point, at every level.

    Parameters
    ----------
    lon, lat : coordinates in degrees, in ``crs`` (``wgs84``, ``gcj02``, ``bd09`` or EPSG)
    version, as_of : boundary version id, or the version published at a date (default: the
        published version)
    engine : the database (default: the configured one, :func:`geogrid.store.get_engine`)

    Returns
    -------
    dict with ``query`` (the point as given and in WGS84), ``version_id``, ``units`` (a
    dict level → {code, name, parent_code, population, households, area_m2}) and
    ``inside`` (False with a message when the point is outside every district).
    """
    for name, v, lo, hi in (("lon", lon, -180, 180), ("lat", lat, -90, 90)):
        if v is None or not np.isfinite(v) or not lo <= v <= hi:
            raise InvalidInput(name, v, f"a number between {lo} and {hi}")
    crs_name = gcrs.normalize_crs(crs)
    wlon, wlat = gcrs.to_wgs84(np.array([lon], float), np.array([lat], float), crs_name)
    wlon, wlat = float(wlon[0]), float(wlat[0])
    vid, units = lookup_point(engine or get_engine(), wlon, wlat, version=version, as_of=as_of)
    out = {
        "query": {"lon": lon, "lat": lat, "crs": crs_name},
        "wgs84": {"lon": wlon, "lat": wlat},
        "version_id": vid,
        "inside": bool(units),
        "units": {u["level"]: u for u in units},
    }
    if not units:
        out["message"] = "the point is outside every district of the published boundaries"
    return out
