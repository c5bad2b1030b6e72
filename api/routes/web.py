"""The leaders' web map: ``GET /`` (the page), ``GET /static/{path}`` (its files) and
``GET /web/config.json`` (client settings).

The page (``api/static/index.html`` + ``app.js``) is a MapLibre GL JS map over our own
layers only (``/tiles``, ``/heatmap``, ``/boundaries``, ``/metrics``, ``/plans``); it works
offline. A raster basemap is optional and off by default: set ``GEOGRID_BASEMAP_URL`` to an
XYZ template (``https://…/{z}/{x}/{y}.png``) and ``GEOGRID_BASEMAP_ATTRIBUTION`` to its
credit line.

Caching: the vendored libraries under ``/static/vendor/`` are versioned by folder and cached
for a day (``immutable`` is not claimed, a refresh replaces them in place); the page and our
own scripts are revalidated on every load (``no-cache`` with ``ETag``/``Last-Modified``
from Starlette's ``FileResponse``).
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from geogrid.errors import NotFound

router = APIRouter(tags=["web"], include_in_schema=False)

STATIC = (Path(__file__).resolve().parent.parent / "static").resolve()
VENDOR_CACHE = "public, max-age=86400"
APP_CACHE = "no-cache"
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


def _file(path: Path, cache: str, request: Request) -> Response:
    resp = FileResponse(
        path,
        media_type=_TYPES.get(path.suffix.lower()),
        headers={"Cache-Control": cache},
        stat_result=path.stat(),
    )
    inm = request.headers.get("if-none-match")
    etag = resp.headers.get("etag")
    if inm and etag and etag in [t.strip() for t in inm.split(",")]:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache})
    return resp


@router.api_route("/", methods=["GET", "HEAD"], summary="The leaders' map (HTML page)")
def index(request: Request) -> Response:
    return _file(STATIC / "index.html", APP_CACHE, request)


@router.api_route("/static/{path:path}", methods=["GET", "HEAD"], summary="Files of the web page")
def static_file(path: str, request: Request) -> Response:
    target = (STATIC / path).resolve()
    if not target.is_relative_to(STATIC) or not target.is_file():
        raise NotFound(f"no static file {path!r}")
    cache = VENDOR_CACHE if target.is_relative_to(STATIC / "vendor") else APP_CACHE
    return _file(target, cache, request)


@router.get("/web/config.json", summary="Settings of the web page")
def web_config() -> JSONResponse:
    """``basemap``: an XYZ raster template or null (``GEOGRID_BASEMAP_URL``), with its
    ``basemap_attribution`` (``GEOGRID_BASEMAP_ATTRIBUTION``)."""
    return JSONResponse(
        {
            "basemap": os.environ.get("GEOGRID_BASEMAP_URL") or None,
            "basemap_attribution": os.environ.get("GEOGRID_BASEMAP_ATTRIBUTION") or "",
        },
        headers={"Cache-Control": "no-cache"},
    )
