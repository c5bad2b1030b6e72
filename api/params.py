"""Parsing of shared query parameters (errors name the parameter and what is allowed).

The functions here only turn request text into values; they call no service.
"""

from __future__ import annotations

import math

from geogrid.errors import InvalidInput

__all__ = ["parse_bbox"]


def parse_bbox(value: str | None, name: str = "bbox") -> tuple[float, float, float, float] | None:
    """A bounding box ``minLon,minLat,maxLon,maxLat`` in WGS84 degrees.

    Parameters
    ----------
    value : str or None
        The query parameter's text; None or empty means no box.
    name : str
        The parameter's name, for the error message.

    Returns
    -------
    tuple of float or None
        (min lon, min lat, max lon, max lat), EPSG:4326 degrees.

    Raises
    ------
    InvalidInput
        Not four finite numbers, out of range, or ``minLat > maxLat``.

    Examples
    --------
    >>> parse_bbox("110.15,22.62,110.16,22.63")
    (110.15, 22.62, 110.16, 22.63)
    >>> parse_bbox("") is None
    True
    >>> parse_bbox("110.15,22.62,110.16")
    Traceback (most recent call last):
    ...
    geogrid.errors.InvalidInput: bbox='110.15,22.62,110.16' is not valid: expected four comma-separated numbers minLon,minLat,maxLon,maxLat (WGS84 degrees)
    """  # noqa: E501
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
