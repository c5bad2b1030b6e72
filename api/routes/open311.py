"""Open311 GeoReport v2 under ``/open311/v2/`` (JSON only).

* ``GET services.json`` — the incident categories as services.
* ``GET services/{service_code}.json`` — a service definition (no extra attributes).
* ``POST requests.json`` — report (``application/x-www-form-urlencoded`` as the spec says,
  or a JSON object): ``service_code``, ``lat``, ``long`` (WGS84; extension:
  ``crs=gcj02|bd09`` for coordinates from Chinese phone maps), ``description``,
  ``address_string``, ``media_url``. Authentication is optional: an ``api_key`` parameter
  or an ``Authorization: Bearer`` token identifies an account (an unknown key is refused
  with 401, a worker outside their grids with 403); **without a key the report is
  accepted as an anonymous resident report** — residents' requests must all be answered
  (全响应), and routing/scope does not depend on who reports. Personal fields (``email``,
  ``phone``, names, ``device_id``) are not stored.
* ``GET requests.json`` — filters ``service_request_id`` (comma list; overrides the
  others), ``service_code`` (comma list), ``start_date``/``end_date`` (ISO 8601 with a
  time zone; default the last 90 days), ``status`` (``open``/``closed``); newest first, at
  most 1000 requests.
* ``GET requests/{service_request_id}.json`` — a list of one.

Reads are public (no token needed, none used): they serve public fields only —
``status_notes`` is the public text of the status (never a staff note or a name) and
``description``/``address`` have contact details (phones, ID numbers, e-mails) masked.

``status`` is ``closed`` for resolved, closed, rejected and duplicate incidents, ``open``
otherwise. ``agency_responsible`` is the unit the incident is assigned to (name and code);
``expected_datetime`` is its due time. Errors are the spec's list
``[{"code": 400, "description": "..."}]`` with the same HTTP status. XML is not served:
a ``.xml`` suffix gets 400.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from api.auth import bearer_token
from api.deps import EngineDep
from api.errors import status_for
from api.models.idempotency import IdempotencyKeyHeader
from api.models.open311 import (
    Open311Created,
    Open311Error,
    Open311Request,
    Open311RequestIn,
    Open311Service,
    Open311ServiceDefinition,
)
from api.params import FORM, JSON, form_or_json
from geogrid.core import lifecycle
from geogrid.core.scope import Scope
from geogrid.errors import GeogridError, InvalidInput, NotFound
from geogrid.services import incidents, satisfaction
from geogrid.services.accounts import authenticate

__all__ = ["router", "MAX_REQUESTS", "DEFAULT_DAYS"]

#: most requests one ``GET requests`` answers
MAX_REQUESTS = 1000
#: days of the default ``GET requests`` window
DEFAULT_DAYS = 90


def _error(code: int, description: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        [{"code": code, "description": description}], status_code=code, headers=headers
    )


class Open311Route(APIRoute):
    """Errors in the GeoReport format: a list of ``{code, description}``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
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


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    what = {
        400: "invalid input (the parameter is named)",
        401: "an unknown api_key or bearer token",
        403: "the account may not report there",
        409: "the Idempotency-Key was used for a different request",
        404: "not found",
    }
    return {c: {"model": list[Open311Error], "description": what[c]} for c in codes}


router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route)

Format = Annotated[
    str,
    Path(
        description="the answer's format: json (this server does not serve xml)", examples=["json"]
    ),
]


def _json_only(fmt: str) -> None:
    if fmt != "json":
        raise InvalidInput(
            "format",
            fmt,
            "json (this server does not serve XML)",
            message=f"format {fmt!r} not supported: use .json",
        )


# --------------------------------------------------------------------------- serialising
def _seconds(value: datetime | None) -> datetime | None:
    """The spec's times are to the second."""
    return value.replace(microsecond=0) if value is not None else None


def _service(cat: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "service_code": cat["code"],
        "service_name": cat["name_zh"],
        "description": f"{cat['name_zh']} ({cat['name_en']}); time limit {cat['limit_hours']:g} h",
        "metadata": False,
        "type": "realtime",
        "keywords": ",".join([cat["name_zh"], cat["name_en"], cat["code"]]),
        "group": lifecycle.service_group(cat["code"], cat["name_en"]),
    }


def _agency(row: Mapping[str, Any]) -> str | None:
    if not row.get("assigned_unit"):
        return None
    name = row.get("assigned_unit_name")
    return f"{name} ({row['assigned_unit']})" if name else str(row["assigned_unit"])


def _notice(row: Mapping[str, Any]) -> str | None:
    if not row.get("grid_code"):
        return "outside every grid: the grid management centre will route it"
    return None


#: Open311 reads are public: public fields only (no staff notes, names or account ids)
_PUBLIC = Scope.public()
#: the public status text of each status (``status_notes``: never a staff note)
_PUBLIC_NOTES: dict[str, str] = {
    "reported": "已收到 received",
    "accepted": "已受理 accepted",
    "dispatched": "已派遣 dispatched",
    "in_progress": "处理中 in progress",
    "resolved": "已处理 resolved",
    "closed": "已办结 closed",
    "rejected": "不予受理 not accepted",
    "duplicate": "重复报告 duplicate of another request",
}


def _request(row: Mapping[str, Any], notes: Mapping[int, str] | None = None) -> dict[str, Any]:
    """A service request's public fields: the public status text (and the latest public
    status note, issue 14), the moderated description (contact details masked by the
    service), never internal notes or names."""
    status_text, note = _PUBLIC_NOTES.get(row["status"]), (notes or {}).get(int(row["id"]))
    return {
        "service_request_id": str(row["id"]),
        "status": lifecycle.open311_status(row["status"]),
        "status_notes": f"{status_text} — {note}" if note else status_text,
        "service_name": row["category_name_zh"],
        "service_code": row["category"],
        "description": row.get("description"),
        "agency_responsible": _agency(row),
        "service_notice": _notice(row),
        "requested_datetime": _seconds(row["reported_at"]),
        "updated_datetime": _seconds(row["updated_at"]),
        "expected_datetime": _seconds(row.get("due_at")),
        "address": row.get("address"),
        "address_id": None,
        "zipcode": None,
        "lat": row["lat"],
        "long": row["lon"],
        "media_url": row.get("media_url"),
    }


# --------------------------------------------------------------------------- parsing
async def _request_body(request: Request) -> Open311RequestIn:
    """The POST body, form-encoded (the spec) or JSON; query parameters fill gaps."""
    params = await form_or_json(request, also=" (send media as media_url)")
    for k, v in request.query_params.items():
        params.setdefault(k, v)
    # an empty form field is an absent one
    params = {k: v for k, v in params.items() if v not in ("", None)}
    try:
        form = Open311RequestIn.model_validate(params)
    except ValidationError as exc:
        e = exc.errors()[0]
        name = ".".join(str(p) for p in e.get("loc", ())) or "body"
        if e.get("type") == "missing":
            raise InvalidInput(name, None, "a value (the parameter is required)") from None
        raise InvalidInput(name, e.get("input"), f"a valid value ({e.get('msg')})") from None
    return form


_POST_BODY = {
    "required": True,
    "content": {
        FORM: {"schema": Open311RequestIn.model_json_schema()},
        JSON: {"schema": Open311RequestIn.model_json_schema()},
    },
}


# --------------------------------------------------------------------------- routes
@router.get(
    "/services.{fmt}",
    response_model=list[Open311Service],
    summary="Open311 service list",
    responses=_errors(400),
)
def services(engine: EngineDep, fmt: Format) -> list[dict[str, Any]]:
    """The service list: one service per active incident category."""
    _json_only(fmt)
    return [_service(c) for c in incidents.list_categories(engine)]


@router.get(
    "/services/{service_code}.{fmt}",
    response_model=Open311ServiceDefinition,
    summary="Open311 service definition",
    responses=_errors(400, 404),
)
def service_definition(
    engine: EngineDep,
    service_code: Annotated[
        str, Path(description="a service code from services.json", examples=["dispute"])
    ],
    fmt: Format,
) -> dict[str, Any]:
    """A service definition (no extra attributes are asked for)."""
    _json_only(fmt)
    try:
        cat = incidents.get_category(engine, service_code, "service_code")
    except InvalidInput:
        raise NotFound(f"service_code {service_code!r} does not exist") from None
    return {"service_code": cat["code"], "attributes": []}


@router.post(
    "/requests.{fmt}",
    status_code=201,
    response_model=list[Open311Created],
    summary="Open311: create a service request",
    responses=_errors(400, 401, 403, 409),
    openapi_extra={"requestBody": _POST_BODY},
)
def post_request(
    engine: EngineDep,
    fmt: Format,
    body: Annotated[Open311RequestIn, Depends(_request_body)],
    token: Annotated[str | None, Depends(bearer_token)],
    idempotency_key: IdempotencyKeyHeader = None,
) -> list[dict[str, Any]]:
    """Create a service request (form-encoded as the spec says, or a JSON object). Without
    an ``api_key`` or bearer token it is an anonymous resident report. A retry with the
    same ``Idempotency-Key`` and body returns the first answer instead of a second
    request (anonymous keys are matched by the key and the request together)."""
    _json_only(fmt)
    if body.lat is None or body.long is None:
        raise InvalidInput(
            "lat/long",
            None,
            "lat and long (this server cannot place an address_string or address_id alone)",
        )
    key = body.api_key or token
    account = authenticate(engine, key) if key else None
    row = incidents.create_incident(
        engine,
        category=body.service_code,
        lon=body.long,
        lat=body.lat,
        crs=body.crs,
        description=body.description,
        reporter_id=account.id if account else None,
        actor=account,
        data={
            "address_string": body.address_string,
            "media_url": body.media_url,
            "channel": "open311",
        },
        category_parameter="service_code",
        idempotency_key=idempotency_key,
    )
    due = _seconds(row["due_at"])
    notice = f"受理 accepted; due {due.isoformat() if due else '-'}"
    agency = _agency(row)
    if agency:
        notice += f"; assigned to {agency}"
    outside = _notice(row)
    if row.get("outside") and outside:
        notice += "; " + outside
    return [{"service_request_id": str(row["id"]), "service_notice": notice, "account_id": None}]


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


def _ids(value: str) -> list[int]:
    out = []
    for part in value.split(","):
        part = part.strip()
        if not (part.isascii() and part.isdigit()):
            raise InvalidInput("service_request_id", part, "comma-separated numeric ids")
        out.append(int(part))
    return out


@router.get(
    "/requests.{fmt}",
    response_model=list[Open311Request],
    summary="Open311: service requests",
    responses=_errors(400),
)
def get_requests(
    engine: EngineDep,
    fmt: Format,
    service_request_id: Annotated[
        str | None,
        Query(
            description="comma-separated ids; overrides the other filters",
            examples=["1024,1025"],
        ),
    ] = None,
    service_code: Annotated[
        str | None,
        Query(description="comma-separated service codes", examples=["garbage,dispute"]),
    ] = None,
    start_date: Annotated[
        str | None,
        Query(
            description="earliest report, ISO 8601 with a time zone (default: 90 days "
            "before end_date or now)",
            examples=["2026-05-01T00:00:00+08:00"],
        ),
    ] = None,
    end_date: Annotated[
        str | None,
        Query(
            description="latest report, ISO 8601 with a time zone (default: now)",
            examples=["2026-05-31T23:59:59+08:00"],
        ),
    ] = None,
    status: Annotated[
        str | None,
        Query(description="open, closed or open,closed", examples=["open"]),
    ] = None,
    page: Annotated[
        int,
        Query(ge=1, le=100_000, description="extension: the page (1-based)", examples=[1]),
    ] = 1,
    page_size: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_REQUESTS,
            description=f"extension: requests per page (at most {MAX_REQUESTS})",
            examples=[100],
        ),
    ] = MAX_REQUESTS,
) -> list[dict[str, Any]]:
    """Service requests, newest first (default: the last 90 days; pages of at most 1000:
    ask for the next `page` while a page is full)."""
    _json_only(fmt)
    if service_request_id:
        rows = incidents.list_incidents(
            engine, ids=_ids(service_request_id), limit=MAX_REQUESTS, scope=_PUBLIC
        )
    else:
        start, end = lifecycle.open311_window(
            _parse_dt("start_date", start_date),
            _parse_dt("end_date", end_date),
            datetime.now(UTC),
            DEFAULT_DAYS,
        )
        rows = incidents.list_incidents(
            engine,
            scope=_PUBLIC,
            categories=[c.strip() for c in service_code.split(",") if c.strip()]
            if service_code
            else None,
            statuses=lifecycle.statuses_for_open311(status) if status else None,
            start=start,
            end=end,
            limit=page_size,
            offset=(page - 1) * page_size,
            category_parameter=None,
        )
    notes = satisfaction.status_notes(engine, [int(r["id"]) for r in rows])
    return [_request(r, notes) for r in rows]


@router.get(
    "/requests/{service_request_id}.{fmt}",
    response_model=list[Open311Request],
    summary="Open311: one service request",
    responses=_errors(400, 404),
)
def get_request(
    engine: EngineDep,
    service_request_id: Annotated[str, Path(description="the request's id", examples=["1024"])],
    fmt: Format,
) -> list[dict[str, Any]]:
    """One service request, as a list of one."""
    _json_only(fmt)
    if not (service_request_id.isascii() and service_request_id.isdigit()):
        raise NotFound(f"service_request_id {service_request_id!r} does not exist")
    rows = incidents.list_incidents(engine, ids=[int(service_request_id)], limit=1, scope=_PUBLIC)
    if not rows:
        raise NotFound(f"service_request_id {service_request_id} does not exist")
    return [_request(rows[0], satisfaction.status_notes(engine, [int(rows[0]["id"])]))]
