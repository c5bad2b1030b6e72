"""Reading the boundary units: the stored versions, and one level as GeoJSON.

All geometry is WGS84 (EPSG:4326, lon/lat degrees); areas are square metres.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from geogrid.core.hierarchy import check_level
from geogrid.errors import InvalidInput
from geogrid.store import units as store_units

__all__ = ["list_versions", "boundary_layer", "search_units", "label_points", "SEARCH_LIMIT"]

#: the most units one search returns
SEARCH_LIMIT = 50


def list_versions(engine: Engine) -> list[dict[str, Any]]:
    """Every boundary version, oldest first.

    Returns
    -------
    list of dict
        ``id``, ``label``, ``status`` (draft, published, retired), ``based_on`` (the id of
        the version it was copied from, or None), ``source``, ``author``, ``created_at``,
        ``published_at``, ``retired_at`` (aware datetimes or None) and ``units`` (count).
    """
    frame = store_units.list_versions(engine)
    if frame.empty:
        return []
    frame = frame.astype(object).where(frame.notna(), None)
    records = [{str(k): v for k, v in rec.items()} for rec in frame.to_dict("records")]
    for rec in records:
        for key in ("created_at", "published_at", "retired_at"):
            if isinstance(rec.get(key), pd.Timestamp):
                rec[key] = rec[key].to_pydatetime()
        if rec.get("based_on") is not None:
            rec["based_on"] = int(rec["based_on"])
    return records


def boundary_layer(
    engine: Engine,
    level: str,
    *,
    version: int | None = None,
    as_of: datetime | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    parent: str | None = None,
) -> dict[str, Any]:
    """The units of one level as a GeoJSON FeatureCollection (EPSG:4326), ordered by code.

    Parameters
    ----------
    engine : Engine
        The database.
    level : str
        district, street, community or grid.
    version, as_of : optional
        Which boundary version (default: the published one; ``as_of``: the one published
        at that time).
    bbox : tuple of float, optional
        (min lon, min lat, max lon, max lat) in WGS84 degrees: only units whose extent
        meets it.
    parent : str, optional
        Only the children of this unit code.

    Returns
    -------
    dict
        A FeatureCollection; each feature's properties are ``code``, ``name``, ``level``,
        ``parent_code``, ``population``, ``households`` and ``area_m2`` (m²). The foreign
        member ``version_id`` names the boundary version read.

    Raises
    ------
    InvalidInput
        For an unknown level.
    NotFound
        When no version matches ``version``/``as_of``.
    """
    units = store_units.load_units(
        engine,
        check_level(level),
        version=version,
        as_of=as_of,
        bbox=bbox,
        parent_codes=[parent] if parent else None,
    )
    collection: dict[str, Any] = units.to_geo_dict(na="null", drop_id=True)
    collection["version_id"] = int(units.attrs["version_id"])
    return collection


def search_units(engine: Engine, q: str, limit: int = 10) -> list[dict[str, Any]]:
    """Units of the published version (any level, district to grid) found by name or code.

    Parameters
    ----------
    engine : Engine
        The database.
    q : str
        Part of a unit's name (case-insensitive), or the head of its code.
    limit : int
        At most this many units (1 to :data:`SEARCH_LIMIT`).

    Returns
    -------
    list of dict
        ``code``, ``name``, ``level``, ``parent_names`` and ``parent_codes`` (its ancestors,
        top down) and
        ``bbox`` (min lon, min lat, max lon, max lat; WGS84 degrees); an exact name or code
        first, then the upper levels, then by code.

    Raises
    ------
    InvalidInput
        For an empty query or a limit outside 1 to :data:`SEARCH_LIMIT`.
    """
    text = q.strip()
    if not text or len(text) > 100:
        raise InvalidInput("q", q, "1 to 100 characters of a unit name or code")
    if not 1 <= limit <= SEARCH_LIMIT:
        raise InvalidInput("limit", limit, f"1 to {SEARCH_LIMIT}")
    return store_units.search_units(engine, text, limit)


def label_points(engine: Engine, level: str, parent: str | None = None) -> dict[str, Any]:
    """Where the map writes the names of a level's units: one point per unit.

    Parameters
    ----------
    engine : Engine
        The database.
    level : str
        district, street, community or grid.
    parent : str, optional
        Only the children of this unit code.

    Returns
    -------
    dict
        A GeoJSON FeatureCollection (EPSG:4326) of points (the centre of each unit's
        largest inscribed circle) with the properties ``code`` and ``name``, by code.

    Raises
    ------
    InvalidInput
        For an unknown level.
    """
    rows = store_units.label_points(engine, check_level(level), parent or None)
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
                "properties": {"code": code, "name": name},
            }
            for code, name, lon, lat in rows
        ],
    }
