"""The interactive API documentation, offline: ``GET /docs`` (Swagger UI) and
``GET /redoc`` (ReDoc), both on the vendored copies under ``api/static/vendor/`` (see the
README files there), so the pages work without internet access.

The pages are not part of the OpenAPI document they display.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

__all__ = ["router", "SWAGGER_UI", "REDOC"]

router = APIRouter(tags=["docs"], include_in_schema=False)

#: URL folder of the vendored Swagger UI (served by ``api/routes/web.py``)
SWAGGER_UI = "/static/vendor/swagger-ui"
#: URL folder of the vendored ReDoc
REDOC = "/static/vendor/redoc"
_OAUTH2_REDIRECT = "/docs/oauth2-redirect"


def _openapi_url(request: Request) -> str:
    root = request.scope.get("root_path", "").rstrip("/")
    return f"{root}{request.app.openapi_url}"


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI on the app's ``/openapi.json``."""
    return get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} — API",
        swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
        swagger_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png",
        oauth2_redirect_url=_OAUTH2_REDIRECT,
    )


@router.get(_OAUTH2_REDIRECT)
def swagger_ui_redirect() -> HTMLResponse:
    """The OAuth2 redirect page of Swagger UI."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    """ReDoc on the app's ``/openapi.json`` (no web fonts)."""
    return get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} — API reference",
        redoc_js_url=f"{REDOC}/redoc.standalone.js",
        redoc_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png",
        with_google_fonts=False,
    )
