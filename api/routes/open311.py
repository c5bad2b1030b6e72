"""Open311 GeoReport v2 under ``/open311/v2/`` (JSON only).

* ``GET services.json`` — the incident categories as services.
* ``GET services/{service_code}.json`` — a service definition (no extra attributes).
* ``POST requests.json`` — report (form-encoded or JSON): ``service_code``, ``lat``,
  ``long`` (WGS84; extension: ``crs=gcj02|bd09`` for coordinates from Chinese phone
  maps), ``description``, ``address_string``, ``media_url``. Authentication is optional:
  an ``api_key`` parameter or an ``Authorization: Bearer`` token identifies an account
  (an unknown key is refused with 401, a worker outside their grids with 403); **without
  a key the report is accepted as an anonymous resident report** — residents' requests
  must all be answered (全响应), and routing/scope does not depend on who reports.
  Personal fields (``email``, ``phone``, names, ``device_id``) are not stored.
* ``GET requests.json`` — filters ``service_request_id`` (comma list; overrides the
  others), ``service_code`` (comma list), ``start_date``/``end_date`` (ISO 8601 with a
  time zone; default the last 90 days), ``status`` (``open``/``closed``); newest first, at
  most 1000 requests.
* ``GET requests/{service_request_id}.json`` — a list of one.

``status`` is ``closed`` for resolved, closed, rejected and duplicate incidents, ``open``
otherwise. ``agency_responsible`` is the unit the incident is assigned to (name and code);
``expected_datetime`` is its due time. Errors are the spec's list
``[{"code": 400, "description": "..."}]`` with the same HTTP status. XML is not served:
a ``.xml`` suffix gets 400.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from api.auth import bearer_token
from api.deps import EngineDep
from api.errors import status_for
from geogrid.core import lifecycle
from geogrid.errors import GeogridError, InvalidInput, NotFound
from geogrid.store import workflow
from geogrid.store.accounts import authenticate
from geogrid.store.incidents import check_categories

MAX_REQUESTS = 1000
DEFAULT_DAYS = 90


def _error(code: int, description: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(
        [{"code": code, "description": description}], status_code=code, headers=headers
    )


class Open311Route(APIRoute):
    """Errors in the GeoReport format: a list of ``{code, description}``."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except GeogridError as exc:
                code = status_for(exc)
                headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
                return _error(code, str(exc), headers)
            except RequestValidationError as exc:
                e = (exc.errors() or [{}])[0]
                name = ".".join(str(p) for p in e.get("loc", ())[1:]) or "request"
                return _error(400, f"{name}: {e.get('msg', 'invalid')}")

        return route_handler


router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route)


def _json_only(fmt: str) -> None:
    if fmt != "json":
        raise InvalidInput(
            "format",
            fmt,
            "json (this server does not serve XML)",
            message=f"format {fmt!r} not supported: use .json",
        )


def _iso(v: datetime | None) -> str | None:
    return v.isoformat(timespec="seconds") if v is not None else None


def _service(cat: dict) -> dict:
    return {
        "service_code": cat["code"],
        "service_name": cat["name_zh"],
        "description": f"{cat['name_zh']} ({cat['name_en']}); time limit {cat['limit_hours']:g} h",
        "metadata": False,
        "type": "realtime",
        "keywords": ",".join([cat["name_zh"], cat["name_en"], cat["code"]]),
        "group": lifecycle.service_group(cat["code"], cat["name_en"]),
    }


def _agency(row: dict) -> str | None:
    if not row.get("assigned_unit"):
        return None
    name = row.get("assigned_unit_name")
    return f"{name} ({row['assigned_unit']})" if name else row["assigned_unit"]


def _notice(row: dict) -> str | None:
    if not row.get("grid_code"):
        return "outside every grid: the grid management centre will route it"
    return None


def _request(row: dict) -> dict:
    return {
        "service_request_id": str(row["id"]),
        "status": lifecycle.open311_status(row["status"]),
        "status_notes": row.get("last_note"),
        "service_name": row["category_name_zh"],
        "service_code": row["category"],
        "description": row.get("description"),
        "agency_responsible": _agency(row),
        "service_notice": _notice(row),
        "requested_datetime": _iso(row["reported_at"]),
        "updated_datetime": _iso(row["updated_at"]),
        "expected_datetime": _iso(row.get("due_at")),
        "address": row.get("address"),
        "address_id": None,
        "zipcode": None,
        "lat": row["lat"],
        "long": row["lon"],
        "media_url": row.get("media_url"),
    }


@router.get("/services.{fmt}")
def services(engine: EngineDep, fmt: str) -> list[dict]:
    """The service list: one service per active incident category."""
    _json_only(fmt)
    return [_service(c) for c in workflow.list_categories(engine)]


@router.get("/services/{service_code}.{fmt}")
def service_definition(engine: EngineDep, service_code: str, fmt: str) -> dict:
    """A service definition (no extra attributes are asked for)."""
    _json_only(fmt)
    try:
        cat = workflow.get_category(engine, service_code)
    except InvalidInput:
        raise NotFound(f"service_code {service_code!r} does not exist") from None
    return {"service_code": cat["code"], "attributes": []}


def _parse_dt(name: str, value: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        d = datetime.fromisoformat(value.strip().replace(" ", "+"))
    except ValueError:
        raise InvalidInput(
            name, value, "an ISO 8601 date-time with a time zone, e.g. 2026-05-01T08:00:00+08:00"
        ) from None
    if d.tzinfo is None:
        raise InvalidInput(name, value, "an ISO 8601 date-time with a time zone (Z or +08:00)")
    return d


def _number(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInput(name, value, "a number (WGS84 degrees)") from None


@router.post("/requests.{fmt}", status_code=201)
async def post_request(
    request: Request,
    engine: EngineDep,
    fmt: str,
    token: Annotated[str | None, Depends(bearer_token)],
) -> list[dict]:
    """Create a service request (form-encoded or JSON)."""
    _json_only(fmt)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if ctype == "application/json":
        try:
            raw = json.loads(body or b"{}")
        except ValueError:
            raise InvalidInput("body", "…", "a JSON object") from None
        if not isinstance(raw, dict):
            raise InvalidInput("body", type(raw).__name__, "a JSON object")
        params = dict(raw)
    elif ctype in ("", "application/x-www-form-urlencoded"):
        # parsed here: URL-encoded forms need no extra dependency (python-multipart)
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    else:
        raise InvalidInput(
            "content-type",
            ctype,
            "application/x-www-form-urlencoded or application/json (send media as media_url)",
        )
    for k, v in request.query_params.items():
        params.setdefault(k, v)

    key = params.get("api_key") or token
    account = await run_in_threadpool(authenticate, engine, key) if key else None
    code = params.get("service_code")
    if not code:
        raise InvalidInput("service_code", code, "a service code from services.json")
    if params.get("lat") in (None, "") or params.get("long") in (None, ""):
        raise InvalidInput(
            "lat/long",
            None,
            "lat and long (this server cannot place an address_string or address_id alone)",
        )
    lat = _number("lat", params["lat"])
    lon = _number("long", params["long"])
    await run_in_threadpool(check_categories, engine, [str(code)], "service_code")
    row = await run_in_threadpool(
        lambda: workflow.create_incident(
            engine,
            category=str(code),
            lon=lon,
            lat=lat,
            crs=str(params.get("crs") or "wgs84"),
            description=params.get("description") or None,
            reporter_id=account.id if account else None,
            actor=account,
            data={
                "address_string": params.get("address_string"),
                "media_url": params.get("media_url"),
                "channel": "open311",
            },
        )
    )
    notice = f"受理 accepted; due {_iso(row['due_at'])}"
    if _agency(row):
        notice += f"; assigned to {_agency(row)}"
    if row.get("outside"):
        notice += "; " + _notice(row)
    return [{"service_request_id": str(row["id"]), "service_notice": notice, "account_id": None}]


@router.get("/requests.{fmt}")
def get_requests(
    engine: EngineDep,
    fmt: str,
    service_request_id: Annotated[
        str | None, Query(description="comma-separated ids; overrides the other filters")
    ] = None,
    service_code: Annotated[str | None, Query(description="comma-separated codes")] = None,
    start_date: Annotated[str | None, Query(description="ISO 8601 with time zone")] = None,
    end_date: Annotated[str | None, Query(description="ISO 8601 with time zone")] = None,
    status: Annotated[str | None, Query(description="open or closed")] = None,
) -> list[dict]:
    """Service requests, newest first (default: the last 90 days; at most 1000)."""
    _json_only(fmt)
    if service_request_id:
        ids = []
        for part in service_request_id.split(","):
            part = part.strip()
            if not part.isdigit():
                raise InvalidInput("service_request_id", part, "comma-separated numeric ids")
            ids.append(int(part))
        rows = workflow.list_incidents(engine, ids=ids, limit=MAX_REQUESTS)
    else:
        start, end = lifecycle.open311_window(
            _parse_dt("start_date", start_date),
            _parse_dt("end_date", end_date),
            datetime.now(UTC),
            DEFAULT_DAYS,
        )
        rows = workflow.list_incidents(
            engine,
            categories=[c.strip() for c in service_code.split(",") if c.strip()]
            if service_code
            else None,
            statuses=lifecycle.statuses_for_open311(status) if status else None,
            start=start,
            end=end,
            limit=MAX_REQUESTS,
            category_parameter=None,
        )
    return [_request(r) for r in rows]


@router.get("/requests/{service_request_id}.{fmt}")
def get_request(engine: EngineDep, service_request_id: str, fmt: str) -> list[dict]:
    """One service request, as a list of one."""
    _json_only(fmt)
    if not service_request_id.isdigit():
        raise NotFound(f"service_request_id {service_request_id!r} does not exist")
    rows = workflow.list_incidents(engine, ids=[int(service_request_id)], limit=1)
    if not rows:
        raise NotFound(f"service_request_id {service_request_id} does not exist")
    return [_request(rows[0])]
