"""geogrid errors → HTTP, in one place (titiler's DEFAULT_STATUS_CODES pattern)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from geogrid.errors import (
    Conflict,
    DatabaseUnavailable,
    FileInputError,
    Forbidden,
    GeogridError,
    InvalidInput,
    NotFound,
    TopologyError,
    Unauthorized,
)

log = logging.getLogger("geogrid.api")

STATUS_CODES: dict[type[GeogridError], int] = {
    InvalidInput: 400,
    FileInputError: 400,
    TopologyError: 422,
    NotFound: 404,
    Conflict: 409,
    Unauthorized: 401,
    Forbidden: 403,
    DatabaseUnavailable: 503,
}


def status_for(exc: GeogridError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 400


def add_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(GeogridError)
    async def _geogrid(request: Request, exc: GeogridError) -> JSONResponse:
        status = status_for(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(exc.to_dict(), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ())]
            where = loc[0] if loc else "request"
            name = ".".join(loc[1:]) or where
            if e.get("type") == "json_invalid":  # loc is ("body", <character offset>)
                name = "body"
            problems.append(
                {
                    "parameter": name,
                    "in": where,
                    "message": e.get("msg"),
                    "value": _short(e.get("input")),
                }
            )
        first = problems[0] if problems else {"parameter": "request", "message": "invalid"}
        return JSONResponse(
            {
                "error": "InvalidInput",
                "message": f"{first['parameter']}: {first['message']}",
                "parameter": first["parameter"],
                "errors": problems,
            },
            status_code=400,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": "HTTPError", "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"error": "InternalError", "message": "internal server error"}, status_code=500
        )


def _short(v):
    if v is None or isinstance(v, (int, float, bool)):
        return v
    s = str(v)
    return s if len(s) <= 200 else s[:200] + "…"
