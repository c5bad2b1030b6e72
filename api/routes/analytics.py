"""Analytics: per-unit load metrics, a unit's trend, and Gi* hot spots.

Times (``from``, ``to``) are ISO 8601 dates or date-times; without a time zone they are
Asia/Shanghai local time. The window is ``[from, to)``, by default the 30 days up to now.
Geometry is WGS84 (EPSG:4326). Definitions of every metric: ``GET /metrics``.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from api.deps import EngineDep
from geogrid.errors import InvalidInput
from geogrid.services import metrics as gm

router = APIRouter(tags=["analytics"])

FromQ = Annotated[
    str | None,
    Query(
        alias="from",
        description="start of the window (inclusive), ISO 8601; default 30 days before `to`",
    ),
]
ToQ = Annotated[
    str | None,
    Query(alias="to", description="end of the window (exclusive), ISO 8601; default now"),
]
CategoryQ = Annotated[
    str | None, Query(description="category codes, comma-separated (default: all)")
]
LevelP = Annotated[str, Path(description="district, street, community or grid")]


def _clean(v: Any) -> Any:
    if v is None:
        return None
    if hasattr(v, "item"):  # numpy scalars
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v


def _records(df: pd.DataFrame) -> list[dict]:
    return [{k: _clean(v) for k, v in r.items()} for r in df.to_dict("records")]


def _when(value: str | None, parameter: str):
    return gm.parse_time(value, parameter)


def _meta(attrs: dict) -> dict:
    keys = (
        "version_id",
        "level",
        "start",
        "end",
        "as_at",
        "previous_start",
        "categories",
        "weights",
        "metric",
    )
    return {k: attrs[k] for k in keys if k in attrs}


@router.get("/metrics")
def metric_catalogue() -> dict:
    """Every metric with its description and unit."""
    return {"metrics": gm.METRICS, "levels": list(gm.LEVELS)}


@router.get("/metrics/{level}")
def unit_metrics(
    engine: EngineDep,
    level: LevelP,
    start: FromQ = None,
    end: ToQ = None,
    category: CategoryQ = None,
    version: Annotated[
        int | None, Query(description="boundary version (default: published)")
    ] = None,
    as_of: Annotated[
        str | None,
        Query(
            description="the boundaries published at this "
            "date-time (RFC 3339), instead of a version"
        ),
    ] = None,
    fmt: Annotated[str, Query(alias="format", description="json or geojson")] = "json",
) -> Response:
    """Load metrics of every unit of a level for a window (JSON rows, or a GeoJSON
    FeatureCollection with the unit polygons)."""
    if fmt not in ("json", "geojson"):
        raise InvalidInput("format", fmt, "json or geojson")
    m = gm.load_metrics(
        engine,
        level,
        start=_when(start, "from"),
        end=_when(end, "to"),
        categories=category,
        version=version,
        as_of=_when(as_of, "as_of"),
    )
    if fmt == "geojson":
        doc = json.loads(m.to_json(na="null", drop_id=True))
        doc["metadata"] = _meta(m.attrs)
        return Response(
            json.dumps(doc, ensure_ascii=False, allow_nan=False), media_type="application/geo+json"
        )
    body = {**_meta(m.attrs), "units": _records(pd.DataFrame(m.drop(columns="geometry")))}
    return Response(
        json.dumps(body, ensure_ascii=False, allow_nan=False), media_type="application/json"
    )


@router.get("/metrics/{level}/{code}/trend")
def unit_trend(
    engine: EngineDep,
    level: LevelP,
    code: Annotated[str, Path(description="unit code")],
    interval: Annotated[str, Query(description="week (Monday) or month")] = "week",
    start: FromQ = None,
    end: ToQ = None,
    category: CategoryQ = None,
) -> dict:
    """Incidents of one unit per week or month (local time), for the side panel; default
    the last 26 weeks or 12 months."""
    df = gm.unit_trend(
        engine,
        level,
        code,
        interval=interval,
        start=_when(start, "from"),
        end=_when(end, "to"),
        categories=category,
    )
    return {"level": level, "code": code, "interval": interval, "periods": _records(df)}


@router.get("/hotspots")
def hotspots(
    engine: EngineDep,
    level: Annotated[str, Query(description="district, street, community or grid")] = "grid",
    start: FromQ = None,
    end: ToQ = None,
    category: CategoryQ = None,
    metric: Annotated[str, Query(description="the metric tested (see GET /metrics)")] = "incidents",
    permutations: Annotated[
        int,
        Query(ge=0, le=9999, description="0: analytical p-values; else conditional permutations"),
    ] = 0,
) -> dict:
    """Getis-Ord Gi* hot and cold spots of a metric per unit (queen contiguity,
    Benjamini–Hochberg FDR): class hot_99 … cold_99 or not_significant."""
    df = gm.unit_hotspots(
        engine,
        level,
        metric=metric,
        start=_when(start, "from"),
        end=_when(end, "to"),
        categories=category,
        permutations=permutations,
    )
    counts = df["class"].value_counts().to_dict()
    return {
        **_meta(df.attrs),
        "classes": {k: int(v) for k, v in counts.items()},
        "units": _records(df),
    }
