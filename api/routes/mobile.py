"""The grid worker's phone app (issue 13): ``GET /m/`` (the page), ``GET /m/{path}`` (its
files under ``api/static/m``) and the old addresses ``/m``, ``/report`` and ``/worker``,
which redirect to ``/m/``.

The app is a PWA: ``/m/manifest.webmanifest`` and a service worker ``/m/sw.js`` whose
scope is ``/m/`` (sent with ``Service-Worker-Allowed: /m/``). Every file of the app is
revalidated on each load (``no-cache``, with ``ETag``); the worker's script also carries
``Cache-Control: no-cache`` so a new version is picked up at the next visit. The vendored
libraries the app uses (MapLibre) are the web page's, under ``/static/vendor/``.

Like ``/static``, a path that leaves ``api/static/m`` or names no file is a 404.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from api.routes.web import APP_CACHE, STATIC, _file
from geogrid.errors import NotFound

__all__ = ["router", "MOBILE"]

router = APIRouter(tags=["mobile"], include_in_schema=False)

MOBILE = (STATIC / "m").resolve()
_TYPES = {".webmanifest": "application/manifest+json"}


def _mobile_path(path: str) -> Path:
    """The file ``path`` names under :data:`MOBILE`, or :class:`NotFound`."""
    try:
        target = (MOBILE / path).resolve()
        if target.is_relative_to(MOBILE) and target.is_file():
            return target
    except (OSError, ValueError):  # name too long, NUL byte, …
        pass
    raise NotFound(f"no file {path[:200]!r} in the phone app")


@router.api_route("/m/", methods=["GET", "HEAD"], summary="The worker's phone app (HTML page)")
def mobile_index(request: Request) -> Response:
    return _file(MOBILE / "index.html", APP_CACHE, request)


@router.api_route("/m/{path:path}", methods=["GET", "HEAD"], summary="Files of the phone app")
def mobile_file(path: str, request: Request) -> Response:
    target = _mobile_path(path)
    response = _file(target, APP_CACHE, request)
    media_type = _TYPES.get(target.suffix.lower())
    if media_type:
        response.headers["Content-Type"] = media_type
    if target == MOBILE / "sw.js":
        response.headers["Service-Worker-Allowed"] = "/m/"
    return response


@router.api_route("/m", methods=["GET", "HEAD"], summary="→ /m/")
@router.api_route("/report", methods=["GET", "HEAD"], summary="→ /m/")
@router.api_route("/worker", methods=["GET", "HEAD"], summary="→ /m/")
def to_mobile() -> RedirectResponse:
    return RedirectResponse("/m/", status_code=308)
