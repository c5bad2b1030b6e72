"""Boundary layers as GeoJSON: ``GET /boundaries/{level}`` and ``/boundaries/versions``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import EngineDep
from api.params import parse_bbox
from geogrid.store.units import list_versions, load_units

router = APIRouter(prefix="/boundaries", tags=["boundaries"])


@router.get("/versions")
def versions(engine: EngineDep) -> list[dict]:
    df = list_versions(engine)
    df["based_on"] = df["based_on"].astype("Int64")
    return [
        {k: (None if v is pd.NA or v != v else v) for k, v in r.items()}
        for r in df.astype(object).where(df.notna(), None).to_dict("records")
    ]


@router.get("/{level}")
def boundary_layer(
    engine: EngineDep,
    level: str,
    bbox: Annotated[str | None, Query(description="minLon,minLat,maxLon,maxLat (WGS84)")] = None,
    parent: Annotated[str | None, Query(description="only children of this unit code")] = None,
    version: Annotated[int | None, Query()] = None,
    as_of: Annotated[datetime | None, Query()] = None,
) -> Response:
    """A level (district, street, community, grid) as a GeoJSON FeatureCollection (EPSG:4326)."""
    units = load_units(
        engine,
        level,
        version=version,
        as_of=as_of,
        bbox=parse_bbox(bbox),
        parent_codes=[parent] if parent else None,
    )
    return Response(
        units.to_json(drop_id=True, ensure_ascii=False), media_type="application/geo+json"
    )
