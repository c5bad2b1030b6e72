"""Analytics: per-unit load metrics, a unit's trend, and Gi* hot spots.

Times (``from``, ``to``, ``as_of``) are ISO 8601 dates or date-times; without a time zone
they are local time of the city (``settings.city.timezone``). The window is
``[from, to)``, by default the 30 days up to now. Geometry is WGS84 (EPSG:4326).
Definitions of every metric: ``GET /metrics``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import TypeAdapter
from sqlalchemy import Engine

from api.deps import ContextDep, ReadEngineDep
from api.json import GeogridJSONResponse, GeoJSONResponse
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
from geogrid.services import offload
from geogrid.services.context import AppContext
from geogrid.services.limits import current_statement_timeout, statement_timeout
from geogrid.services.unitcache import UnitCache

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
async def unit_metrics(
    request: Request,
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
) -> Response:
    """Load metrics of every unit of a level for a window (JSON rows, or a GeoJSON
    FeatureCollection with the unit polygons)."""
    if fmt not in ("json", "geojson"):
        raise InvalidInput("format", fmt, "json or geojson")
    params = {
        "start": start,
        "end": end,
        "categories": category,
        "version": version,
        "as_of": as_of,
        "tz": ctx.settings.city.timezone,
    }
    return await _offloaded(request, ctx, read, _metrics_job, level, fmt, params)


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
async def hotspots(
    request: Request,
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
) -> Response:
    """Getis-Ord Gi* hot and cold spots of a metric per unit (queen contiguity,
    Benjamini–Hochberg FDR): class hot_99 … cold_99 or not_significant."""
    params = {
        "metric": metric,
        "start": start,
        "end": end,
        "categories": category,
        "permutations": permutations,
        "tz": ctx.settings.city.timezone,
    }
    return await _offloaded(request, ctx, read, _hotspots_job, level, params)


# issue 10 (ABUSE): the work of /metrics/{level} and /hotspots — the service, the model's
# validation and the JSON — runs out of the serving process (geogrid.services.offload,
# ``expensive_processes``, niced), which keeps its GIL for /locate and the others. The jobs
# are module-level functions (a worker imports them by name) returning the answer's bytes.

_JSON = "application/json"
_METRICS_ANSWER: TypeAdapter[Any] = TypeAdapter(UnitMetricsPage | MetricsFeatureCollection)
_HOTSPOTS_ANSWER: TypeAdapter[Any] = TypeAdapter(Hotspots)


def _answer(adapter: TypeAdapter[Any], doc: dict[str, Any]) -> bytes:
    """``doc`` checked and serialised as FastAPI does with a route's response model."""
    content = adapter.dump_python(adapter.validate_python(doc), mode="json", by_alias=True)
    return bytes(GeogridJSONResponse(content).body)


def _metrics_job(
    url: str,
    timeout_ms: int | None,
    level: str,
    fmt: str,
    params: dict[str, Any],
    cache: UnitCache | None = None,
) -> tuple[bytes, str]:
    with statement_timeout(timeout_ms):
        m = gm.load_metrics(
            offload.engine(url), level, cache=cache or offload.unit_cache(), **params
        )
    if fmt == "geojson":
        doc = m.to_geo_dict(na="null", drop_id=True)
        answer = GeoJSONResponse({**doc, "metadata": _meta(m.attrs)})
        return bytes(answer.body), answer.media_type or _JSON
    rows = {**_meta(m.attrs), "units": _rows(pd.DataFrame(m.drop(columns="geometry")))}
    return _answer(_METRICS_ANSWER, rows), _JSON


def _hotspots_job(
    url: str,
    timeout_ms: int | None,
    level: str,
    params: dict[str, Any],
    cache: UnitCache | None = None,
) -> tuple[bytes, str]:
    with statement_timeout(timeout_ms):
        df = gm.unit_hotspots(
            offload.engine(url), level, cache=cache or offload.unit_cache(), **params
        )
    counts = df["class"].value_counts()
    doc = {
        **_meta(df.attrs),
        "metric": df.attrs["metric"],
        "classes": {str(k): int(v) for k, v in counts.items()},
        "units": _rows(df),
    }
    return _answer(_HOTSPOTS_ANSWER, doc), _JSON


async def _offloaded(
    request: Request, ctx: AppContext, read: Engine, job: Callable[..., Any], *args: Any
) -> Response:
    """The answer of ``job(url, statement timeout, *args)`` run by the app's offload pool
    (in this process's thread pool when it has no workers: then with its unit cache)."""
    pool: offload.Offload = request.app.state.offload
    url = read.url.render_as_string(hide_password=False)
    timeout = current_statement_timeout()
    if pool.processes:
        body, media = await pool.run(job, url, timeout, *args)
    else:
        body, media = await pool.run(job, url, timeout, *args, cache=ctx.unit_cache)
    return Response(body, media_type=media)
