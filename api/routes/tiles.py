"""Map tiles: ``/tiles/{layer}/{z}/{x}/{y}.mvt``, ``/tiles/{layer}.json`` (TileJSON 3.0.0),
``/heatmap/{z}/{x}/{y}.png`` and ``/heatmap.json``.

Tiles are XYZ in Web Mercator. ``from``/``to`` (ISO 8601 date-time or date, read as
``/metrics`` reads them: dates and naive times in China Standard Time, ``to`` exclusive) and
``category`` (comma-separated codes)
choose the incidents behind the metrics, points and heat; default: the last 30 days from
00:00 UTC. Responses carry a strong ``ETag`` (hash of the bytes) and
``Cache-Control: public, max-age=5, must-revalidate``; ``If-None-Match`` gives 304.
"""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from geogrid.core.tiles import LAYERS, MAX_ZOOM, get_layer, tilejson
from geogrid.core.timewindow import parse_time
from geogrid.services.tilecache import MapService, Window
from geogrid.settings import get_settings

router = APIRouter(tags=["tiles"])

MVT = "application/vnd.mapbox-vector-tile"
CACHE_CONTROL = "public, max-age=5, must-revalidate"
_lock = threading.Lock()


async def get_service(request: Request) -> MapService:
    """The app's :class:`MapService` (created on first use, on the app's engine)."""
    svc = getattr(request.app.state, "map_service", None)
    if svc is None:
        with _lock:
            svc = getattr(request.app.state, "map_service", None)
            if svc is None:
                svc = MapService(request.app.state.engine)
                request.app.state.map_service = svc
    return svc


ServiceDep = Annotated[MapService, Depends(get_service)]
FromQ = Annotated[
    str | None,
    Query(
        alias="from",
        description=(
            "start of the incident window, ISO 8601 date-time or date (inclusive; dates and naive "
            "times are China Standard Time); default 30 days ago"
        ),
    ),
]
ToQ = Annotated[
    str | None,
    Query(alias="to", description=("end of the window, ISO 8601 date-time or date (exclusive)")),
]
CatQ = Annotated[str | None, Query(description="incident category codes, comma-separated")]


def window_of(svc: MapService, from_: str | None, to: str | None, category: str | None) -> Window:
    """The incident window, read exactly as ``/metrics`` reads it
    (:func:`geogrid.services.metrics.parse_time`: ISO 8601; dates and naive times are China
    Standard Time; ``to`` exclusive), so tiles and the choropleth show the same window."""
    tz = get_settings().city.timezone
    start = parse_time(from_, "from", tz)
    end = parse_time(to, "to", tz)
    cats = [c for c in category.split(",")] if category else None
    return svc.window(start, end, cats)


def _query(from_, to, category) -> str:
    from urllib.parse import urlencode

    q = {k: v for k, v in (("from", from_), ("to", to), ("category", category)) if v}
    return ("?" + urlencode(q)) if q else ""


def tile_response(request: Request, data: bytes, tag: str, media_type: str) -> Response:
    headers = {"ETag": tag, "Cache-Control": CACHE_CONTROL}
    inm = request.headers.get("if-none-match")
    if inm and _matches(inm, tag):
        return Response(status_code=304, headers=headers)
    return Response(content=data, media_type=media_type, headers=headers)


def _matches(header: str, tag: str) -> bool:
    if header.strip() == "*":
        return True
    for t in header.split(","):
        t = t.strip()
        if t.startswith("W/"):
            t = t[2:]
        if t == tag:
            return True
    return False


@router.get("/tiles/{layer}.json", summary="TileJSON 3.0.0 of a vector layer")
def layer_tilejson(
    request: Request,
    svc: ServiceDep,
    layer: str,
    from_: FromQ = None,
    to: ToQ = None,
    category: CatQ = None,
) -> JSONResponse:
    get_layer(layer)
    window_of(svc, from_, to, category)  # validate now rather than on every tile
    base = str(request.base_url).rstrip("/")
    url = f"{base}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt{_query(from_, to, category)}"
    return JSONResponse(
        tilejson(
            layer,
            url,
            bounds=svc.bounds(),
            maxzoom=MAX_ZOOM,
            attribution="geogrid · Yulin demo data",
        )
    )


@router.get(
    "/tiles/{layer}/{z}/{x}/{y}.mvt",
    summary="Mapbox Vector Tile of a layer",
    description=f"Layers: {', '.join(LAYERS)}. Web Mercator XYZ, MVT 2.1.",
    response_class=Response,
    responses={200: {"content": {MVT: {}}}, 304: {"description": "not modified"}},
)
async def vector_tile(
    request: Request,
    svc: ServiceDep,
    layer: str,
    z: int,
    x: int,
    y: int,
    from_: FromQ = None,
    to: ToQ = None,
    category: CatQ = None,
) -> Response:
    # cache hits are answered on the event loop; renders (and change polls) in the pool
    win = (
        await run_in_threadpool(window_of, svc, from_, to, category)
        if category
        else window_of(svc, from_, to, category)
    )
    hit = svc.cached(layer, z, x, y, win) if layer in LAYERS else None
    if hit is None:
        hit = await run_in_threadpool(svc.vector_tile, layer, z, x, y, win)
    return tile_response(request, *hit, MVT)


@router.get("/heatmap.json", summary="TileJSON 3.0.0 of the heat-map raster tiles")
def heat_tilejson(
    request: Request, svc: ServiceDep, from_: FromQ = None, to: ToQ = None, category: CatQ = None
) -> JSONResponse:
    window_of(svc, from_, to, category)
    base = str(request.base_url).rstrip("/")
    b = svc.bounds() or (-180.0, -85.0511, 180.0, 85.0511)
    return JSONResponse(
        {
            "tilejson": "3.0.0",
            "name": "geogrid incident heat map",
            "scheme": "xyz",
            "tiles": [f"{base}/heatmap/{{z}}/{{x}}/{{y}}.png{_query(from_, to, category)}"],
            "minzoom": 0,
            "maxzoom": 18,
            "bounds": [round(v, 6) for v in b],
            "center": [round((b[0] + b[2]) / 2, 6), round((b[1] + b[3]) / 2, 6), 10],
            "description": "Gaussian kernel density of incidents (bandwidth 6 px of the zoom, "
            "40 m–8 km); one colour scale per zoom",
        }
    )


@router.get(
    "/heatmap/{z}/{x}/{y}.png",
    summary="Heat-map PNG tile (256 px, RGBA)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 304: {"description": "not modified"}},
)
async def heat_tile(
    request: Request,
    svc: ServiceDep,
    z: int,
    x: int,
    y: int,
    from_: FromQ = None,
    to: ToQ = None,
    category: CatQ = None,
) -> Response:
    win = (
        await run_in_threadpool(window_of, svc, from_, to, category)
        if category
        else window_of(svc, from_, to, category)
    )
    hit = svc.cached("heatmap", z, x, y, win)
    if hit is None:
        hit = await run_in_threadpool(svc.heat_tile, z, x, y, win)
    return tile_response(request, *hit, "image/png")
