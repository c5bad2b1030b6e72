"""Parsing of shared query parameters (errors name the parameter and what is allowed)."""

from __future__ import annotations

import math

from geogrid.errors import InvalidInput


def parse_bbox(value: str | None, name: str = "bbox") -> tuple[float, float, float, float] | None:
    """``minLon,minLat,maxLon,maxLat`` in WGS84 degrees."""
    if value is None or value == "":
        return None
    allowed = "four comma-separated numbers minLon,minLat,maxLon,maxLat (WGS84 degrees)"
    parts = value.split(",")
    if len(parts) != 4:
        raise InvalidInput(name, value, allowed)
    try:
        x0, y0, x1, y1 = (float(p) for p in parts)
    except ValueError:
        raise InvalidInput(name, value, allowed) from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise InvalidInput(name, value, allowed)
    if not (-180 <= x0 <= 180 and -180 <= x1 <= 180 and -90 <= y0 <= 90 and -90 <= y1 <= 90):
        raise InvalidInput(name, value, "longitudes in [-180, 180] and latitudes in [-90, 90]")
    if y0 > y1:
        raise InvalidInput(name, value, "minLat <= maxLat")
    return (x0, y0, x1, y1)
