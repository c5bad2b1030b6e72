"""Parsing of shared query parameters (errors name the parameter and what is allowed).

The functions here only turn request text into values; they call no service.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request

from geogrid.errors import InvalidInput

__all__ = ["FORM", "JSON", "form_or_json", "parse_bbox"]

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


async def form_or_json(
    request: Request, *, not_utf8: str = "a form body in UTF-8", also: str = ""
) -> dict[str, Any]:
    """The body's fields, form-encoded (no python-multipart needed) or a JSON object;
    ``not_utf8`` is what a form that is not UTF-8 is told, ``also`` is added to the
    message for another content type."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if ctype == JSON:
        try:
            raw = json.loads(body or b"{}")
        except ValueError:
            raise InvalidInput("body", "…", "a JSON object") from None
        if not isinstance(raw, dict):
            raise InvalidInput("body", type(raw).__name__, "a JSON object")
        return dict(raw)
    if ctype in ("", FORM):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("body", "…", not_utf8) from None
        return dict(parse_qsl(text, keep_blank_values=True))
    raise InvalidInput("content-type", ctype, f"{FORM} or {JSON}{also}")


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
