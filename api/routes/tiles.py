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

Tiles before routing (issue 12). :class:`CachedTiles`, an ASGI middleware installed
inside the request limits (``api/main.py``), answers a plain ``GET``/``HEAD`` of a tile
(no ``category``, no other parameter, a valid tile and window) before routing: one held in
the map service's memory cache on the event loop, any other drawn (or read from Redis) in
the thread pool through the same :func:`_shared` renders as the routes below — the same
bytes and headers (``ETag``, ``Cache-Control``, 304 on ``If-None-Match``), without
FastAPI's route matching, parameter validation and dependency solving, which cost several
times a cached lookup and a third of a cold grid tile's own time at z14 (bench.tiles). Any
other request — a ``category`` filter (checked against the catalogue), a bad parameter, a
draw that failed (the route answers its error or 503), every tile while a replica serves
reads (:class:`api.replica.ReplicaMiddleware` answers a failed replica read again on the
primary) — goes on to the routes unchanged.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.caching import etag_matches, etag_response
from api.deps import ContextDep
from api.errors import DATABASE_ERRORS, database_unavailable
from api.models.common import error_responses
from api.models.tiles import MVT, MVT_RESPONSES, PNG, PNG_RESPONSES, TileJSON
from api.replica import replica_reads as _replica_reads
from geogrid.core.tiles import LAYERS, check_tile
from geogrid.errors import GeogridError
from geogrid.services.mapservice import MapService, Window

__all__ = ["router", "CACHE_CONTROL", "CachedTiles"]

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


async def _map_service(request: Request) -> MapService:
    """The app's map service. An ``async`` dependency: FastAPI runs a plain ``def``
    dependency (like :data:`api.deps.ContextDep`'s) in the threadpool, a thread hop that
    cost more than serving a cached tile (bench.tiles, issue 12)."""
    maps: MapService = request.app.state.ctx.maps
    return maps


MapsDep = Annotated[MapService, Depends(_map_service)]


def _query(from_: str | None, to: str | None, category: str | None) -> str:
    q = {k: v for k, v in (("from", from_), ("to", to), ("category", category)) if v}
    return ("?" + urlencode(q)) if q else ""


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


#: renders in progress: (map service, tile key) → the task drawing it (one per tile)
_RENDERS: dict[tuple[MapService, tuple[Any, ...]], asyncio.Task[tuple[bytes, str]]] = {}


async def _shared(
    maps: MapService, key: tuple[Any, ...], render: Callable[..., tuple[bytes, str]], *args: Any
) -> tuple[bytes, str]:
    """``render(*args)`` in the thread pool, shared by the requests of the same tile that
    arrive while it runs (issue 12: under writes, a dropped tile asked for by several
    clients at once was drawn once per request). The render is a task of its own: a
    client that goes away does not cancel it for the others."""
    k = (maps, key)
    task = _RENDERS.get(k)
    if task is None or task.get_loop() is not asyncio.get_running_loop():
        task = asyncio.ensure_future(run_in_threadpool(render, *args))
        _RENDERS[k] = task

        def done(t: asyncio.Task[tuple[bytes, str]]) -> None:
            if _RENDERS.get(k) is t:
                del _RENDERS[k]
            if not t.cancelled():
                t.exception()  # retrieved: no "never retrieved" warning when all left

        task.add_done_callback(done)
    return await asyncio.shield(task)


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
    maps: MapsDep,
    layer: LayerP,
    z: ZP,
    x: XP,
    y: YP,
    from_: FromQ = None,
    to: ToQ = None,
    category: CatQ = None,
) -> Response:
    win = await _window(maps, from_, to, category)
    # cache hits (memory level) are answered on the event loop; renders, change polls and
    # Redis reads in the pool, one per tile at a time
    hit = maps.cached(layer, z, x, y, win) if layer in LAYERS else None
    if hit is None:
        hit = await _shared(maps, (layer, z, x, y, win.key), maps.vector_tile, layer, z, x, y, win)
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
    maps: MapsDep,
    z: ZP,
    x: XP,
    y: YP,
    from_: FromQ = None,
    to: ToQ = None,
    category: CatQ = None,
) -> Response:
    win = await _window(maps, from_, to, category)
    hit = maps.cached("heatmap", z, x, y, win)
    if hit is None:
        hit = await _shared(maps, ("heatmap", z, x, y, win.key), maps.heat_tile, z, x, y, win)
    data, tag = hit
    return etag_response(request, data, tag, PNG, CACHE_CONTROL)


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_VECTOR = re.compile(r"/tiles/([a-z]{1,32})/(\d{1,2})/(\d{1,9})/(\d{1,9})\.mvt")
_HEAT = re.compile(r"/heatmap/(\d{1,2})/(\d{1,9})/(\d{1,9})\.png")
_WINDOW_PARAMS = frozenset({"from", "to"})
_CACHE_CONTROL = CACHE_CONTROL.encode()


class CachedTiles:
    """ASGI middleware: tiles answered before routing (see the module's notes) — cached ones
    from memory on the event loop, cold ones drawn in the thread pool (:func:`_shared`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            tile = self._tile(scope)
            if tile is not None:
                maps, layer, z, x, y, win, media = tile
                hit = maps.cached(layer, z, x, y, win)
                if hit is None and not _replica_reads(scope):
                    try:
                        hit = await self._draw(maps, layer, z, x, y, win)
                    except DATABASE_ERRORS as exc:  # answered as the route would, once
                        await database_unavailable(exc)(scope, receive, send)
                        return
                    except Exception:  # noqa: BLE001 — the route answers it (its error)
                        hit = None
                if hit is not None:
                    await self._send(scope, send, hit[0], hit[1], media)
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _draw(
        maps: MapService, layer: str, z: int, x: int, y: int, win: Window
    ) -> tuple[bytes, str]:
        """A tile not in memory, drawn (or read from Redis) in the thread pool as the route
        would. A database that cannot answer (down, or the statement over its budget) is
        the caller's 503 at once, not a second try by the route; any other failure goes to
        the route, which answers it as it answers its own."""
        if layer == "heatmap":
            return await _shared(maps, (layer, z, x, y, win.key), maps.heat_tile, z, x, y, win)
        return await _shared(maps, (layer, z, x, y, win.key), maps.vector_tile, layer, z, x, y, win)

    @staticmethod
    def _tile(
        scope: Scope,
    ) -> tuple[MapService, str, int, int, int, Window, bytes] | None:
        """``(map service, layer, z, x, y, window, media type)`` of a plain tile request
        (no ``category``: it is checked against the catalogue, a database read; no other
        parameter), or None: the routes answer it (and every bad parameter)."""
        path: str = scope["path"]
        if path.startswith("/tiles/"):
            m = _VECTOR.fullmatch(path)
            if m is None or m.group(1) not in LAYERS:
                return None
            layer, media = m.group(1), MVT
            z, x, y = int(m.group(2)), int(m.group(3)), int(m.group(4))
        elif path.startswith("/heatmap/"):
            m = _HEAT.fullmatch(path)
            if m is None:
                return None
            layer, media = "heatmap", PNG
            z, x, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
        else:
            return None
        app = scope.get("app")
        ctx = getattr(getattr(app, "state", None), "ctx", None)
        if ctx is None:
            return None
        try:
            q = dict(parse_qsl(scope.get("query_string", b"").decode(), strict_parsing=False))
        except UnicodeDecodeError:
            return None
        if not q.keys() <= _WINDOW_PARAMS:  # category (catalogue check) or others: route
            return None
        maps: MapService = ctx.maps
        try:
            check_tile(z, x, y)
            win = maps.window(q.get("from"), q.get("to"))
        except GeogridError:  # the route answers the error
            return None
        return maps, layer, z, x, y, win, media.encode()

    @staticmethod
    async def _send(scope: Scope, send: Send, data: bytes, tag: str, media: bytes) -> None:
        inm = None
        for k, v in scope.get("headers", ()):
            if k == b"if-none-match":
                inm = v.decode("latin-1")
                break
        headers = [(b"etag", tag.encode()), (b"cache-control", _CACHE_CONTROL)]
        if etag_matches(inm, tag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [(b"content-length", str(len(data)).encode()), (b"content-type", media)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else data
        await send({"type": "http.response.body", "body": body})
