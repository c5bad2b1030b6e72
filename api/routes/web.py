"""The leaders' web map: ``GET /`` (the page), ``GET /static/{path}`` (its files) and
``GET /web/config.json`` (client settings).

The page (``api/static/index.html`` + ES modules in ``js/``) is a MapLibre GL JS map over our
layers only (``/tiles``, ``/heatmap``, ``/boundaries``, ``/metrics``, ``/plans``); it works
offline. A raster basemap is optional and off by default: set ``GEOGRID_BASEMAP_URL`` to an
XYZ template (``https://…/{z}/{x}/{y}.png``) and ``GEOGRID_BASEMAP_ATTRIBUTION`` to its
credit line.

Caching: the vendored libraries under ``/static/vendor/`` are versioned by folder and cached
for a day (``immutable`` is not claimed, a refresh replaces them in place); the page and our
own scripts are revalidated on every load (``no-cache``). Every file carries an ``ETag``
(its modification time and size) and ``Last-Modified``; ``If-None-Match`` gives 304
(:func:`api.caching.etag_response`, the one implementation the tiles use too).

A path that leaves ``api/static``, does not name a file, is too long for the file system
or holds a NUL byte is a 404, never a 500.
"""

from __future__ import annotations

import mimetypes
import os
from email.utils import formatdate
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.caching import etag_response
from geogrid.errors import NotFound

__all__ = ["router", "STATIC"]

router = APIRouter(tags=["web"], include_in_schema=False)

STATIC = (Path(__file__).resolve().parent.parent / "static").resolve()
VENDOR_CACHE = "public, max-age=86400"
APP_CACHE = "no-cache"
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


def _file(path: Path, cache: str, request: Request) -> Response:
    """``path`` with its validators (``ETag`` from the file's mtime and size,
    ``Last-Modified``), or 304 when the client's copy is current."""
    st = path.stat()
    tag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
    modified = {"Last-Modified": formatdate(st.st_mtime, usegmt=True)}
    media_type = (
        _TYPES.get(path.suffix.lower())
        or mimetypes.guess_type(path.name)[0]
        or "application/octet-stream"
    )
    return etag_response(request, path.read_bytes(), tag, media_type, cache, modified)


def _static_path(path: str) -> Path:
    """The file ``path`` names under :data:`STATIC`, or :class:`NotFound`."""
    try:
        target = (STATIC / path).resolve()
        if target.is_relative_to(STATIC) and target.is_file():
            return target
    except (OSError, ValueError):  # name too long, NUL byte, …
        pass
    raise NotFound(f"no static file {path[:200]!r}")


@router.api_route("/", methods=["GET", "HEAD"], summary="The leaders' map (HTML page)")
def index(request: Request) -> Response:
    return _file(STATIC / "index.html", APP_CACHE, request)


@router.api_route("/static/{path:path}", methods=["GET", "HEAD"], summary="Files of the web page")
def static_file(path: str, request: Request) -> Response:
    target = _static_path(path)
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
