"""Map tiles: ``/tiles/{layer}/{z}/{x}/{y}.mvt``, ``/tiles/{layer}.json`` (TileJSON 3.0.0),
``/heatmap/{z}/{x}/{y}.png`` and ``/heatmap.json``.

Tiles are XYZ in Web Mercator. ``from``/``to`` (ISO 8601 date-time or date, read as
``/metrics`` reads them: dates and naive times in the city's time zone, ``to`` exclusive) and
``category`` (comma-separated codes) choose the incidents behind the metrics, points and
heat; default: the last 30 days from 00:00 UTC. Responses carry a strong ``ETag`` (hash of
the bytes) and ``Cache-Control: public, max-age=5, must-revalidate``; ``If-None-Match``
gives 304 (:mod:`api.caching`).

Everything is served by the app's :class:`~geogrid.services.mapservice.MapService`
(``ctx.maps``, created with the app's context in its lifespan).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.caching import etag_response
from api.deps import ContextDep
from api.models.common import error_responses
from api.models.tiles import MVT, MVT_RESPONSES, PNG, PNG_RESPONSES, TileJSON
from geogrid.core.tiles import LAYERS
from geogrid.services.mapservice import MapService, Window

__all__ = ["router", "CACHE_CONTROL"]

router = APIRouter(tags=["tiles"])

CACHE_CONTROL = "public, max-age=5, must-revalidate"

FromQ = Annotated[
    str | None,
    Query(
        alias="from",
        description="start of the incident window, ISO 8601 date-time or date (inclusive; "
        "dates and naive times are the city's local time); default 30 days ago",
        examples=["2026-03-01"],
    ),
]
ToQ = Annotated[
    str | None,
    Query(
        alias="to",
        description="end of the window, ISO 8601 date-time or date (exclusive)",
        examples=["2026-04-01"],
    ),
]
CatQ = Annotated[
    str | None,
    Query(description="incident category codes, comma-separated", examples=["sanitation,vendor"]),
]
LayerP = Annotated[str, Path(description=f"vector layer: {', '.join(LAYERS)}", examples=["grids"])]
ZP = Annotated[int, Path(description="zoom level (0..22)", examples=[12])]
XP = Annotated[int, Path(description="tile column, 0 at 180° W", examples=[3299])]
YP = Annotated[int, Path(description="tile row, 0 at the north edge", examples=[1786])]


def _query(from_: str | None, to: str | None, category: str | None) -> str:
    q = {k: v for k, v in (("from", from_), ("to", to), ("category", category)) if v}
    return ("?" + urlencode(q)) if q else ""


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _window(
    maps: MapService, from_: str | None, to: str | None, category: str | None
) -> Window:
    # categories are checked against the catalogue (a database read, memoised): in the pool
    if category:
        return await run_in_threadpool(maps.window, from_, to, category)
    return maps.window(from_, to)


@router.get(
    "/tiles/{layer}.json",
    summary="TileJSON 3.0.0 of a vector layer",
    response_model=TileJSON,
    response_model_exclude_none=True,
    responses=error_responses(400),
)
def layer_tilejson(
    request: Request,
    ctx: ContextDep,
    layer: LayerP,
    from_: FromQ = None,
    to: ToQ = None,
    category: CatQ = None,
) -> TileJSON:
    url = f"{_base(request)}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt{_query(from_, to, category)}"
    return TileJSON.model_validate(ctx.maps.layer_tilejson(layer, url, from_, to, category))


@router.get(
    "/tiles/{layer}/{z}/{x}/{y}.mvt",
    summary="Mapbox Vector Tile of a layer",
    description=f"Layers: {', '.join(LAYERS)}. Web Mercator XYZ, MVT 2.1.",
    response_class=Response,
    responses=MVT_RESPONSES,
)
async def vector_tile(
    request: Request,
    ctx: ContextDep,
    layer: LayerP,
    z: ZP,
    x: XP,
    y: YP,
    from_: FromQ = None,
    to: ToQ = None,
    category: CatQ = None,
) -> Response:
    maps = ctx.maps
    win = await _window(maps, from_, to, category)
    # cache hits are answered on the event loop; renders (and change polls) in the pool
    hit = maps.cached(layer, z, x, y, win) if layer in LAYERS else None
    if hit is None:
        hit = await run_in_threadpool(maps.vector_tile, layer, z, x, y, win)
    data, tag = hit
    return etag_response(request, data, tag, MVT, CACHE_CONTROL)


@router.get(
    "/heatmap.json",
    summary="TileJSON 3.0.0 of the heat-map raster tiles",
    response_model=TileJSON,
    response_model_exclude_none=True,
    responses=error_responses(400),
)
def heat_tilejson(
    request: Request,
    ctx: ContextDep,
    from_: FromQ = None,
    to: ToQ = None,
    category: CatQ = None,
) -> TileJSON:
    url = f"{_base(request)}/heatmap/{{z}}/{{x}}/{{y}}.png{_query(from_, to, category)}"
    return TileJSON.model_validate(ctx.maps.heat_tilejson(url, from_, to, category))


@router.get(
    "/heatmap/{z}/{x}/{y}.png",
    summary="Heat-map PNG tile (256 px, RGBA)",
    response_class=Response,
    responses=PNG_RESPONSES,
)
async def heat_tile(
    request: Request,
    ctx: ContextDep,
    z: ZP,
    x: XP,
    y: YP,
    from_: FromQ = None,
    to: ToQ = None,
    category: CatQ = None,
) -> Response:
    maps = ctx.maps
    win = await _window(maps, from_, to, category)
    hit = maps.cached("heatmap", z, x, y, win)
    if hit is None:
        hit = await run_in_threadpool(maps.heat_tile, z, x, y, win)
    data, tag = hit
    return etag_response(request, data, tag, PNG, CACHE_CONTROL)
