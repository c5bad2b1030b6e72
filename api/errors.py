"""geogrid errors → HTTP, in one place (titiler's ``DEFAULT_STATUS_CODES`` pattern).

Every error answer of the app has the body :class:`api.models.common.ErrorBody`:

- a :class:`~geogrid.errors.GeogridError` → the status of :data:`STATUS_CODES` (first
  match along the class's MRO; 400 when none matches) and ``exc.to_dict()``;
- an invalid request (a parameter that does not parse, a missing field, malformed JSON)
  → 400 ``InvalidInput`` naming the first offending parameter, all of them in ``errors``;
- an HTTP error of the framework (unknown path, method not allowed) → its status,
  ``HTTPError``;
- the database unreachable, its pool exhausted or a statement over its time budget → 503
  ``DatabaseUnavailable`` with ``Retry-After`` (the connection to the client is kept);
- a value the database refuses as data (an integer beyond its column) → 400 naming it;
- anything else → 500 ``InternalError`` (logged with its traceback, no details leaked).

Routes document the statuses they can answer with ``responses=error_responses(...)`` (see
:mod:`api.models.common`); :func:`document_errors` replaces FastAPI's own 422 schema,
which this app never sends, by the 400 ``ErrorBody`` in the OpenAPI document.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg import errors as pg_errors
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.json import GeogridJSONResponse
from api.models.common import ERROR_DESCRIPTIONS, ErrorBody
from geogrid.errors import (
    Conflict,
    DatabaseUnavailable,
    FileInputError,
    Forbidden,
    GeogridError,
    InvalidInput,
    Locked,
    NotFound,
    TopologyError,
    Unauthorized,
)

__all__ = [
    "STATUS_CODES",
    "status_for",
    "error_response",
    "validation_body",
    "add_exception_handlers",
    "document_errors",
    "database_unavailable",
    "DATABASE_ERRORS",
    "out_of_range",
    "RETRY_AFTER_DB",
    "GENERIC_ERRORS",
    "BODY_ERRORS",
]

log = logging.getLogger("geogrid.api")

#: the HTTP status of each error class (subclasses inherit their parent's)
STATUS_CODES: dict[type[GeogridError], int] = {
    InvalidInput: 400,
    FileInputError: 400,
    TopologyError: 422,
    NotFound: 404,
    Conflict: 409,
    Unauthorized: 401,
    Forbidden: 403,
    Locked: 429,
    DatabaseUnavailable: 503,
}

_SHORT = 200  # characters of a refused value echoed back

#: seconds a client is asked to wait when the database is unavailable
RETRY_AFTER_DB = 5

#: errors every operation can answer with (api/limits.py and the database): documented on all
GENERIC_ERRORS: dict[int, str] = {
    429: "too many requests from this caller (rate limit); see Retry-After",
    503: "the database is unavailable or the service is busy; see Retry-After",
}
#: and on every operation with a request body
BODY_ERRORS: dict[int, str] = {413: "the request body is too large"}


def status_for(exc: GeogridError) -> int:
    """The HTTP status of ``exc``.

    >>> status_for(NotFound("no grid 45090200101"))
    404
    >>> class StaleEdit(Conflict): ...
    >>> status_for(StaleEdit("edited meanwhile"))
    409
    """
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 400


def error_response(
    body: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> GeogridJSONResponse:
    """``body`` checked against :class:`ErrorBody` and sent with ``status``."""
    checked = ErrorBody.model_validate(body)
    return GeogridJSONResponse(
        checked.model_dump(mode="json", exclude_none=True), status_code=status, headers=headers
    )


def validation_body(problems: Sequence[Any]) -> dict[str, Any]:
    """The :class:`ErrorBody` of an invalid request (pydantic's error list).

    >>> body = validation_body([{"loc": ("query", "lon"), "msg": "not a number", "input": "x"}])
    >>> body["message"], body["parameter"], body["errors"][0]["in"]
    ('lon: not a number', 'lon', 'query')
    >>> validation_body([{"type": "json_invalid", "loc": ("body", 1), "msg": "JSON decode error",
    ...                   "input": {}}])["parameter"]
    'body'
    """
    listed = []
    for e in problems:
        loc = [str(p) for p in e.get("loc", ())]
        where = loc[0] if loc else "request"
        name = ".".join(loc[1:]) or where
        if e.get("type") == "json_invalid":  # loc is ("body", <character offset>)
            name = "body"
        listed.append(
            {
                "parameter": name,
                "in": where,
                "message": e.get("msg"),
                "value": _short(e.get("input")),
            }
        )
    first = listed[0] if listed else {"parameter": "request", "message": "invalid request"}
    return {
        "error": "InvalidInput",
        "message": f"{first['parameter']}: {first['message']}",
        "parameter": first["parameter"],
        "errors": listed,
    }


#: errors of a database that cannot answer now (down, no free connection, a statement
#: cancelled by its timeout): 503 with Retry-After (:func:`database_unavailable`)
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    pg_errors.OperationalError,
    pg_errors.InterfaceError,
)


def add_exception_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with an :class:`ErrorBody`."""

    @app.exception_handler(GeogridError)
    async def _geogrid(request: Request, exc: GeogridError) -> GeogridJSONResponse:
        status = status_for(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is None and status == 503:
            retry_after = RETRY_AFTER_DB
        if retry_after is not None:  # e.g. a sign-in locked after repeated failures
            headers = {**(headers or {}), "Retry-After": str(int(retry_after))}
        try:
            return error_response(exc.to_dict(), status, headers)
        except (TypeError, ValueError):  # a detail JSON cannot carry: keep class and message
            log.exception("error details of %s not serialisable", type(exc).__name__)
            body = {"error": type(exc).__name__, "message": str(exc)}
            return error_response(body, status, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> GeogridJSONResponse:
        return error_response(validation_body(exc.errors()), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> GeogridJSONResponse:
        return error_response(
            {"error": "HTTPError", "message": str(exc.detail)},
            exc.status_code,
            getattr(exc, "headers", None),
        )

    async def _database(request: Request, exc: Exception) -> GeogridJSONResponse:
        return database_unavailable(exc)

    for kind in DATABASE_ERRORS:
        app.add_exception_handler(kind, _database)

    @app.exception_handler(sa_exc.DataError)
    @app.exception_handler(pg_errors.DataError)
    async def _data(request: Request, exc: Exception) -> GeogridJSONResponse:
        return out_of_range(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> GeogridJSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response({"error": "InternalError", "message": "internal server error"}, 500)


def database_unavailable(exc: BaseException) -> GeogridJSONResponse:
    """503 with ``Retry-After`` for a database that cannot be reached, a pool with no free
    connection, or a statement cancelled by its timeout (the connection is kept open)."""
    orig = getattr(exc, "orig", exc)
    if isinstance(orig, pg_errors.QueryCanceled):
        message = "the request took longer than its database time budget; retry later"
    else:
        message = "the database is unavailable; retry later"
        log.warning("database unavailable: %s", str(exc).splitlines()[0] if str(exc) else exc)
    return error_response(
        {"error": "DatabaseUnavailable", "message": message},
        503,
        {"Retry-After": str(RETRY_AFTER_DB)},
    )


def out_of_range(request: Request, exc: BaseException) -> GeogridJSONResponse:
    """400 for a value the database refused as data (e.g. an integer beyond its column's
    range), naming the query or path parameter that holds a number out of range."""
    parameter = "request"
    for name, value in [*request.path_params.items(), *request.query_params.items()]:
        text = str(value).strip().lstrip("+-")
        if text.isascii() and text.isdigit() and int(text) >= 2**31:
            parameter = name
            break
    log.info("value refused by the database on %s: %s", request.url.path, type(exc).__name__)
    return error_response(
        {
            "error": "InvalidInput",
            "message": f"{parameter}: a value out of the accepted range",
            "parameter": parameter,
        },
        400,
    )


def document_errors(openapi: dict[str, Any]) -> dict[str, Any]:
    """Make ``openapi`` (an OpenAPI document) say what the app really answers on errors.

    FastAPI documents a 422 ``HTTPValidationError`` for every operation with parameters;
    this app answers invalid requests with 400 and an :class:`ErrorBody` instead. The
    document is changed in place and returned.
    """
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            if not isinstance(responses, dict):
                continue
            if _is_fastapi_422(responses.get("422")):
                del responses["422"]
                responses.setdefault(
                    "400",
                    {
                        "description": ERROR_DESCRIPTIONS[400],
                        "content": {"application/json": {"schema": ref}},
                    },
                )
            generic = {**GENERIC_ERRORS, **(BODY_ERRORS if "requestBody" in operation else {})}
            if operation.get("security"):  # a credential is read: an unknown one is refused
                generic[401] = ERROR_DESCRIPTIONS[401]
            for status, description in generic.items():
                responses.setdefault(
                    str(status),
                    {"description": description, "content": {"application/json": {"schema": ref}}},
                )
    if "ErrorBody" not in schemas:
        schemas["ErrorBody"] = ErrorBody.model_json_schema(
            ref_template="#/components/schemas/{model}", mode="serialization"
        )
    text = repr(openapi.get("paths", {}))
    for unused in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{unused}'" not in text:
            schemas.pop(unused, None)
    return openapi


def _is_fastapi_422(response: Any) -> bool:
    if not isinstance(response, dict):
        return False
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def _short(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, bool)):
        return value
    text = str(value)
    return text if len(text) <= _SHORT else text[:_SHORT] + "…"
