"""``geogrid locate``: the units containing a point."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from geogrid.cli._common import (
    console,
    current_engine,
    fail,
)
from geogrid.errors import GeogridError
from geogrid.services.lookup import locate


def locate_cmd(
    lon: float,
    lat: float,
    crs: Annotated[str, typer.Option(help="wgs84, gcj02 or bd09")] = "wgs84",
) -> None:
    """Units at every level that contain a point."""
    try:
        res = locate(lon, lat, crs=crs, engine=current_engine())
    except GeogridError as exc:
        fail(exc)
    console.print_json(json.dumps(res, ensure_ascii=False, default=str))
