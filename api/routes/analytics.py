"""Analytics: per-unit load metrics, a unit's trend, and Gi* hot spots.

Times (``from``, ``to``, ``as_of``) are ISO 8601 dates or date-times; without a time zone
they are local time of the city (``settings.city.timezone``). The window is
``[from, to)``, by default the 30 days up to now. Geometry is WGS84 (EPSG:4326).
Definitions of every metric: ``GET /metrics``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Path, Query

from api.deps import ContextDep, ReadEngineDep
from api.json import GeoJSONResponse
from api.models.analytics import (
    Hotspots,
    MetricCatalogue,
    MetricsFeatureCollection,
    UnitMetricsPage,
    UnitTrend,
)
from api.models.common import error_responses
from geogrid.core.hierarchy import LEVELS_UP
from geogrid.core.metric_catalogue import METRICS
from geogrid.errors import InvalidInput
from geogrid.services import metrics as gm

router = APIRouter(tags=["analytics"])

FromQ = Annotated[
    str | None,
    Query(
        alias="from",
        description="start of the window (inclusive), ISO 8601 date or date-time; dates and "
        "naive times are the city's local time; default 30 days before `to`",
        examples=["2026-05-01"],
    ),
]
ToQ = Annotated[
    str | None,
    Query(
        alias="to",
        description="end of the window (exclusive), ISO 8601 date or date-time; default now",
        examples=["2026-06-01"],
    ),
]
CategoryQ = Annotated[
    str | None,
    Query(
        description="category codes, comma-separated (default: all)",
        examples=["sanitation,road"],
    ),
]
LevelP = Annotated[
    str,
    Path(description="district, street, community or grid", examples=["community"]),
]
VersionQ = Annotated[
    int | None,
    Query(
        ge=1,
        le=2**31 - 1,
        description="boundary version id (default: the published one)",
        examples=[3],
    ),
]
AsOfQ = Annotated[
    str | None,
    Query(
        description="the boundaries published at this date-time (RFC 3339), instead of a "
        "version; incidents are re-attributed to them in memory",
        examples=["2026-01-01T00:00:00+08:00"],
    ),
]

_META = ("version_id", "level", "start", "end", "as_at", "previous_start", "categories", "weights")
_ERRORS = error_responses(400, 404)


def _meta(attrs: Mapping[Any, Any]) -> dict[str, Any]:
    return {k: attrs[k] for k in _META if k in attrs}


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    return df.to_dict("records")  # type: ignore[return-value]  # str keys: frame columns


@router.get("/metrics", response_model=MetricCatalogue)
def metric_catalogue() -> MetricCatalogue:
    """Every metric with its description and unit."""
    return MetricCatalogue(metrics=METRICS, levels=list(LEVELS_UP))


@router.get(
    "/metrics/{level}",
    response_model=UnitMetricsPage | MetricsFeatureCollection,
    responses={
        200: {
            "description": "JSON rows (format=json) or a GeoJSON FeatureCollection "
            "(format=geojson, application/geo+json)",
            "content": {
                "application/geo+json": {
                    "schema": {"$ref": "#/components/schemas/MetricsFeatureCollection"}
                }
            },
        },
        **_ERRORS,
    },
)
def unit_metrics(
    ctx: ContextDep,
    read: ReadEngineDep,
    level: LevelP,
    start: FromQ = None,
    end: ToQ = None,
    category: CategoryQ = None,
    version: VersionQ = None,
    as_of: AsOfQ = None,
    fmt: Annotated[
        str,
        Query(
            alias="format", description="json (rows) or geojson (with polygons)", examples=["json"]
        ),
    ] = "json",
) -> Any:
    """Load metrics of every unit of a level for a window (JSON rows, or a GeoJSON
    FeatureCollection with the unit polygons)."""
    if fmt not in ("json", "geojson"):
        raise InvalidInput("format", fmt, "json or geojson")
    m = gm.load_metrics(
        read,
        level,
        start=start,
        end=end,
        categories=category,
        version=version,
        as_of=as_of,
        tz=ctx.settings.city.timezone,
        cache=ctx.unit_cache,
    )
    if fmt == "geojson":
        doc = m.to_geo_dict(na="null", drop_id=True)
        return GeoJSONResponse({**doc, "metadata": _meta(m.attrs)})
    return {**_meta(m.attrs), "units": _rows(pd.DataFrame(m.drop(columns="geometry")))}


@router.get("/metrics/{level}/{code}/trend", response_model=UnitTrend, responses=_ERRORS)
def unit_trend(
    ctx: ContextDep,
    read: ReadEngineDep,
    level: LevelP,
    code: Annotated[str, Path(description="unit code", examples=["450902001001"])],
    interval: Annotated[
        str,
        Query(description="week (from Monday) or month", examples=["week"]),
    ] = "week",
    start: FromQ = None,
    end: ToQ = None,
    category: CategoryQ = None,
) -> dict[str, Any]:
    """Incidents of one unit per week or month (the city's local time), for the side panel;
    default the last 26 weeks or 12 months."""
    df = gm.unit_trend(
        read,
        level,
        code,
        interval=interval,
        start=start,
        end=end,
        categories=category,
        tz=ctx.settings.city.timezone,
    )
    periods = [
        {
            "period": p.date(),
            "period_start": p.to_pydatetime(),
            "incidents": int(n),
            "resolved": int(r),
        }
        for p, n, r in zip(df["period"], df["incidents"], df["resolved"], strict=True)
    ]
    return {"level": level, "code": code, "interval": interval, "periods": periods}


@router.get("/hotspots", response_model=Hotspots, responses=_ERRORS)
def hotspots(
    ctx: ContextDep,
    read: ReadEngineDep,
    level: Annotated[
        str, Query(description="district, street, community or grid", examples=["grid"])
    ] = "grid",
    start: FromQ = None,
    end: ToQ = None,
    category: CategoryQ = None,
    metric: Annotated[
        str,
        Query(description="the metric tested (a name from GET /metrics)", examples=["incidents"]),
    ] = "incidents",
    permutations: Annotated[
        int,
        Query(
            ge=0,
            le=999,
            description="0: analytical p-values; else conditional permutations (at most 999)",
            examples=[0],
        ),
    ] = 0,
) -> dict[str, Any]:
    """Getis-Ord Gi* hot and cold spots of a metric per unit (queen contiguity,
    Benjamini–Hochberg FDR): class hot_99 … cold_99 or not_significant."""
    df = gm.unit_hotspots(
        read,
        level,
        metric=metric,
        start=start,
        end=end,
        categories=category,
        permutations=permutations,
        tz=ctx.settings.city.timezone,
        cache=ctx.unit_cache,
    )
    counts = df["class"].value_counts()
    return {
        **_meta(df.attrs),
        "metric": df.attrs["metric"],
        "classes": {str(k): int(v) for k, v in counts.items()},
        "units": _rows(df),
    }
