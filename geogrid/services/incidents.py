"""Incidents in their workflow: report (validate, convert, attribute, authorise, route,
store), move through statuses, escalate, overdue lists, reads and the category catalogue.

Every change is one transaction that updates the ``incident`` row, appends to
``incident_event`` and records the map change; events are never updated or deleted, so the
history of an incident is its events in order. All geometry is EPSG:4326; the coordinate
as received is kept in ``src_crs``/``src_lon``/``src_lat``.

The rules come from the core (:mod:`geogrid.core.lifecycle` for statuses, routing and
escalation; :mod:`geogrid.core.accounts` for scope; :mod:`geogrid.core.crs` for
coordinates); the SQL from :mod:`geogrid.store.workflow` and
:mod:`geogrid.store.incidents`. Every function takes an Engine (it opens its own
transaction) or a Connection (it runs in the caller's transaction).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine

from geogrid.core import crs as gcrs
from geogrid.core import lifecycle
from geogrid.core.accounts import RESIDENT, Account, require_can_act, require_can_report
from geogrid.core.hierarchy import (
    ATTRIBUTION_COLUMNS,
    LEVEL_COLUMN,
    LEVELS,
    LEVELS_UP,
    level_of_code,
)
from geogrid.core.live import CHANNEL as LIVE_CHANNEL
from geogrid.core.live import new_incident_payload
from geogrid.core.masking import EVENT_PERSONAL, INCIDENT_PERSONAL, redact_event, redact_incident
from geogrid.core.media import INCIDENT_ROLES
from geogrid.core.scope import Scope
from geogrid.core.timewindow import TIME_RANGE
from geogrid.core.verification import (
    SEND_BACK,
    check_close,
    check_send_back,
    check_unchanged,
    check_verify_mode,
)
from geogrid.errors import Conflict, Forbidden, InvalidInput, NotFound
from geogrid.services import audit, idempotency, partitions, survey_links
from geogrid.services import media as media_service
from geogrid.settings import get_settings
from geogrid.store import audit as store_audit
from geogrid.store import incidents as store_incidents
from geogrid.store import workflow as store
from geogrid.store.changes import record_incident_change
from geogrid.store.engine import connection, transaction
from geogrid.store.notify import notifier

__all__ = [
    "NEAR_CITY_M",
    "create_incident",
    "transition",
    "add_note",
    "set_category_verify",
    "escalate",
    "escalate_overdue",
    "overdue",
    "history",
    "get_incident",
    "list_incidents",
    "list_categories",
    "get_category",
    "check_categories",
    "save_categories",
]

Bind = Engine | Connection

#: A report outside every grid is kept and flagged when it is within this distance (m) of
#: a district (GPS error, a river bank, a new estate); farther away it is refused as bad
#: input (a swapped lon/lat, a wrong CRS, 0/0).
NEAR_CITY_M = 20_000.0

# kinds of events in an incident's history
_STATUS_EVENT = "status"
_FLAG_EVENT = "flag"
_ESCALATE_EVENT = "escalate"
_NOTE_EVENT = "note"
#: most files attached in one request
MAX_MEDIA = 20


def _now() -> datetime:
    return datetime.now(UTC)


def _actor_id(actor: Account | int | None) -> int | None:
    if actor is None:
        return None
    if isinstance(actor, Account):
        return actor.id
    return int(actor)


def _aware(value: Any, parameter: str) -> datetime | None:
    """``value`` when it is a timezone-aware datetime within :data:`TIME_RANGE`."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInput(parameter, value, "a datetime")
    if value.tzinfo is None:
        raise InvalidInput(
            parameter,
            value.isoformat(),
            "a date-time with a time zone (e.g. 2026-05-01T08:00:00+08:00)",
        )
    if not TIME_RANGE[0] <= value < TIME_RANGE[1]:
        raise InvalidInput(
            parameter,
            value.isoformat(),
            f"a date-time from {TIME_RANGE[0].date()} to before {TIME_RANGE[1].date()}",
        )
    return value


def _finite(name: str, value: Any) -> float:
    try:
        ok = not isinstance(value, bool) and math.isfinite(float(value))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InvalidInput(name, value, "a finite number")
    return float(value)


# --------------------------------------------------------------------------- categories
def list_categories(bind: Bind, *, active_only: bool = True) -> list[dict[str, Any]]:
    """The incident catalogue, ordered by code (code, name_zh, name_en, limit_hours,
    effort, escalate_level, share, active)."""
    return store_incidents.category_rows(bind, active_only=active_only)


def get_category(bind: Bind, code: str, parameter: str = "category") -> dict[str, Any]:
    """One active category; InvalidInput naming ``parameter`` and the known codes when
    there is none with this code."""
    with connection(bind) as c:
        row = store_incidents.category_row(c, code)
        if row is None or not row["active"]:
            known = [r["code"] for r in store_incidents.category_rows(c)]
            allowed = ", ".join(known) or "(no categories are defined)"
            raise InvalidInput(parameter, code, "one of " + allowed)
    return row


def check_categories(bind: Bind, values: Iterable[Any], parameter: str = "category") -> list[str]:
    """The category codes given, or InvalidInput naming ``parameter`` and the known codes."""
    codes = [str(v) for v in values]
    with connection(bind) as c:
        known = set(store_incidents.category_table(c).index)
    bad = [v for v in codes if v not in known]
    if bad:
        allowed = ", ".join(sorted(known)) or "(no categories are defined)"
        raise InvalidInput(parameter, ",".join(bad), "one of " + allowed)
    return codes


def set_category_verify(bind: Bind, code: str, verify: str) -> None:
    """How a category's resolutions are closed (issue 13): ``other`` (by someone other
    than the resolver; the default) or ``none`` (the resolver may close)."""
    mode = check_verify_mode(verify)
    with transaction(bind) as c:
        if not store_incidents.set_category_verify(c, code, mode):
            get_category(c, code)  # the error, naming the codes
        audit.record(
            c,
            actor=None,
            action="category.verify",
            resource="category",
            ids=[code],
            detail={"verify": mode},
        )


def _media_list(value: Iterable[str] | None) -> list[str]:
    shas = list(value or [])
    if len(shas) > MAX_MEDIA:
        raise InvalidInput("media", len(shas), f"at most {MAX_MEDIA} files")
    return shas


def save_categories(bind: Bind, cats: pd.DataFrame) -> None:
    """Insert or update a category catalogue (a frame indexed by code, as
    :func:`geogrid.core.catalogue.load_categories` returns), in one transaction."""
    with transaction(bind) as c:
        store_incidents.upsert_categories(c, cats)


# --------------------------------------------------------------------------- create
def create_incident(
    bind: Bind,
    *,
    category: str,
    lon: float,
    lat: float,
    crs: str = "wgs84",
    description: str | None = None,
    reported_at: datetime | None = None,
    reporter_id: int | None = None,
    source_id: str | None = None,
    actor: Account | int | None = None,
    reporter_kind: str | None = None,
    data: Mapping[str, Any] | None = None,
    category_parameter: str = "category",
    idempotency_key: str | None = None,
    media: Iterable[str] | None = None,
    accuracy_m: float | None = None,
) -> dict[str, Any]:
    """Store a new incident, attributed and routed, with its first event.

    Parameters
    ----------
    category : a category code (``category`` table)
    lon, lat : the coordinate in ``crs`` (degrees for ``wgs84``/``gcj02``/``bd09``,
        easting/northing for a projected EPSG CRS); converted to WGS84 (EPSG:4326) with
        :func:`geogrid.core.crs.to_wgs84`, the original kept in ``src_*``.
    crs : ``wgs84``, ``gcj02``, ``bd09`` or an EPSG code
    description : what was found
    reported_at : timezone-aware; default now
    reporter_id : the reporting account (None: an anonymous resident)
    source_id : an external id (unique)
    actor : the account doing it. When an :class:`~geogrid.core.accounts.Account`, its scope is
        checked (a worker reports only inside their own grids: Forbidden otherwise).
    reporter_kind : default ``resident`` when anonymous, else the reporter's role
    data : extra facts kept in the ``reported`` event (``address_string``, ``media_url``)
    category_parameter : the name of the category in errors (``service_code`` for Open311)
    idempotency_key : a client's key for safe retries (:mod:`geogrid.services.idempotency`):
        a second call with the same key and request returns the first answer, stored
        with the incident in its transaction, instead of a second incident.
    media : sha256s of files uploaded with ``PUT /media/{sha256}``, attached with the role
        ``report`` (issue 13)
    accuracy_m : the position's accuracy in metres (the phone's GPS), kept with the report

    The published version is held shared while the incident is attributed
    (:func:`geogrid.store.workflow.share_published_version`), so a report made during a
    publish lands in the new version's grid: before the publish re-attributes, or after.

    Returns
    -------
    The incident as :func:`get_incident` returns it, plus ``outside`` (True when the point
    is outside every grid of the published version: it is stored anyway with null codes
    at the missing levels, and a ``flag`` event says so).

    Raises
    ------
    InvalidInput : bad coordinates, CRS, time or category; a point far from the city.
    Forbidden : ``actor`` may not report there.
    Conflict : ``idempotency_key`` was used for a different request.
    """
    x, y = _finite("lon", lon), _finite("lat", lat)
    shas = _media_list(media)
    accuracy = None if accuracy_m is None else _finite("accuracy_m", accuracy_m)
    if accuracy is not None and not 0 <= accuracy <= 100_000:
        raise InvalidInput("accuracy_m", accuracy_m, "metres, 0 to 100000")
    if accuracy is not None:
        data = {**dict(data or {}), "accuracy_m": accuracy}
    crs_name = gcrs.normalize_crs(crs)
    at = _aware(reported_at, "reported_at") or _now()
    wx, wy = gcrs.to_wgs84(np.array([x]), np.array([y]), crs_name)
    wlon, wlat = float(wx[0]), float(wy[0])
    if not (math.isfinite(wlon) and math.isfinite(wlat)) or not (
        -180 <= wlon <= 180 and -90 <= wlat <= 90
    ):
        raise InvalidInput("lon/lat", (lon, lat), f"a coordinate on the earth in {crs_name}")

    principal = idempotency.principal_of(_actor_id(actor) if actor is not None else reporter_id)
    partitions.ensure(bind, at)  # issue 12: the month's partition before the insert (cached)
    claim = idempotency.claim_of(
        idempotency_key,
        principal=principal,
        operation="create_incident",
        request={
            "category": category,
            "lon": x,
            "lat": y,
            "crs": crs_name,
            "description": description,
            "reported_at": reported_at,
            "reporter_id": reporter_id,
            "source_id": source_id,
            "reporter_kind": reporter_kind,
            "data": dict(data or {}),
            **({"media": shas} if shas else {}),
        },
    )
    # issue 10: the report's transaction is four round trips — open (publish lock, key,
    # id), context, one statement writing every row (incident, event, map change, audit,
    # the key's answer), commit — and the live notification follows the commit when this
    # call owns the transaction (inside a caller's transaction the trigger sends it)
    notify_after = isinstance(bind, Engine)
    with transaction(bind) as c:
        claimed, iid = store.open_report(c, claim=claim, notify_after=notify_after)
        if not claimed:
            assert claim is not None
            return idempotency.stored(c, claim)
        # one query for the category, the published version, the units and the reporter
        context = store.report_context(
            c,
            category,
            wlon,
            wlat,
            reporter_id,
            LEVELS,
            [lifecycle.admin_role_for(lv) for lv in LEVELS],
        )
        cat = context["category"]
        if cat is None or not cat["active"]:
            cat = get_category(c, category, category_parameter)  # the error, naming the codes
        version_id: int | None = context["version_id"]
        units = context["units"]  # none when nothing is published: kept unattributed
        if not units and version_id is not None:
            if not store.near_level(c, version_id, LEVELS[0], wlon, wlat, NEAR_CITY_M):
                raise InvalidInput(
                    "lon/lat",
                    (lon, lat),
                    f"a point in or near the city ({crs_name}"
                    f"; WGS84 {wlon:.6f}, {wlat:.6f} is more than "
                    f"{NEAR_CITY_M / 1000:g} km from every {LEVELS[0]})",
                )
        codes: dict[str, str | None] = {lv: None for lv in LEVELS_UP}
        codes.update({u["level"]: u["code"] for u in units})
        attribution = {LEVEL_COLUMN[lv]: codes[lv] for lv in LEVELS_UP}
        if isinstance(actor, Account):
            require_can_report(actor, attribution)
        level, unit_code = lifecycle.route(cat["escalate_level"], codes)
        assignee = None
        ups = [(lifecycle.admin_role_for(lv), codes[lv], lv) for lv in LEVELS_UP[1:]]
        # the accounts of the units covering the point (read with the context)
        found = {
            (lifecycle.admin_role_for(u["level"]), u["code"]): int(u["account"])
            for u in units
            if u["account"] is not None
        }
        if level is not None and unit_code is not None:
            assignee = found.get((lifecycle.admin_role_for(level), unit_code))
        if assignee is None and level == LEVELS_UP[0]:  # a vacant grid: the admins above
            for r, u, lv in ups:
                if u and (r, u) in found:
                    level, unit_code, assignee = lv, u, found[(r, u)]
                    break
        kind = reporter_kind
        if kind is None:
            kind = RESIDENT
            if reporter_id is not None:
                kind = context["reporter_role"]
                if kind is None:
                    raise InvalidInput("reporter_id", reporter_id, "an existing account id")
        actor_id = _actor_id(actor) if actor is not None else reporter_id
        event_data = {k: v for k, v in dict(data or {}).items() if v not in (None, "")}
        event_data.update(assigned_level=level, assigned_unit=unit_code, assignee_id=assignee)
        values = {
            "source_id": source_id,
            "category": cat["code"],
            "description": description,
            "src_crs": crs_name,
            "src_lon": x,
            "src_lat": y,
            "reported_at": at,
            "reporter_kind": kind,
            "reporter_id": reporter_id,
            "status": lifecycle.INITIAL_STATUS,
            "updated_at": at,
            "due_at": lifecycle.due_at(at, cat["limit_hours"]),
            "assigned_level": level,
            "assigned_unit": unit_code,
            "assignee_id": assignee,
            "version_id": version_id,
            **attribution,
        }
        names = {u["code"]: u["name"] for u in units}
        outside = codes[LEVELS_UP[0]] is None
        # the common report (inside a grid, no photos): its answer is known before the
        # insert, so the key's answer is written by the same statement
        out: dict[str, Any] | None = None
        if not outside and not shas:
            out = _new_report(iid, values, wlon, wlat, cat, names, event_data)
        event = {
            "at": at,
            "actor_id": actor_id,
            "kind": _STATUS_EVENT,
            "to_status": lifecycle.INITIAL_STATUS,
            "data": event_data,
        }
        store.insert_report(
            c,
            values,
            wlon,
            wlat,
            event=event,
            incident_id=iid,
            audit=store_audit.audit_params(
                **audit.entry(
                    actor=actor if actor is not None else reporter_id,
                    action="incident.create",
                    resource="incident",
                    ids=[iid],
                )
            ),
            answer=None
            if claim is None or out is None
            else (claim[0], claim[1], idempotency.answer_json(out)),
        )
        if out is None:
            if outside:
                where = f" (version {version_id})" if version_id else " (none published)"
                store.insert_event(
                    c,
                    iid,
                    at=at,
                    actor_id=actor_id,
                    kind=_FLAG_EVENT,
                    note=f"outside every {LEVELS_UP[0]} of the published boundaries{where}",
                    data={"flag": "outside_grid", "version_id": version_id},
                )
            if shas:
                media_service.attach(c, shas, "incident", iid, actor, role="report")
            out = _get(c, iid, with_history=False, names=names, with_media=bool(shas))
            out["outside"] = outside
            idempotency.remember(
                c, idempotency_key, principal=principal, answer=out, resource_id=iid
            )
    if isinstance(bind, Engine):  # notify_after: this call owned the transaction
        _notify_new(bind, out)
    return out


def _notify_new(engine: Engine, incident: Mapping[str, Any]) -> None:
    """Tell the live maps of a committed report (what the 0014 trigger would have sent),
    queued to the process's notifier (:class:`geogrid.store.notify.Notifier`)."""
    notifier(engine).send(LIVE_CHANNEL, new_incident_payload(incident))


def _new_report(
    iid: int,
    values: Mapping[str, Any],
    lon: float,
    lat: float,
    cat: Mapping[str, Any],
    names: Mapping[str, str],
    event_data: Mapping[str, Any],
) -> dict[str, Any]:
    """A new report as :func:`_get` reads it back (plus ``outside``: False), made from what
    the insert writes — one query less per report (issue 10). The stored values come back
    the same: the point's doubles, the times in UTC, the event's data through JSON
    (``tests/test_incidents.py`` compares it with a read)."""
    data = json.loads(json.dumps(dict(event_data), ensure_ascii=False, default=str))
    utc = {k: values[k].astimezone(UTC) for k in ("reported_at", "updated_at", "due_at")}
    row: dict[str, Any] = {
        "id": iid,
        "source_id": values["source_id"],
        "category": values["category"],
        "category_name_zh": cat["name_zh"],
        "category_name_en": cat["name_en"],
        "description": values["description"],
        "status": values["status"],
        "src_crs": values["src_crs"],
        "src_lon": values["src_lon"],
        "src_lat": values["src_lat"],
        "lon": lon,
        "lat": lat,
        "reported_at": utc["reported_at"],
        "reporter_kind": values["reporter_kind"],
        "reporter_id": values["reporter_id"],
        "updated_at": utc["updated_at"],
        **{c: None for c in lifecycle.TIMESTAMP_COLUMN.values()},
        "due_at": utc["due_at"],
        "assigned_level": values["assigned_level"],
        "assigned_unit": values["assigned_unit"],
        "resolved_by": None,
        "assigned_unit_name": names.get(values["assigned_unit"] or ""),
        "assignee_id": values["assignee_id"],
        "version_id": values["version_id"],
        **{c: values[c] for c in ATTRIBUTION_COLUMNS},
        "report_data": data,
        "last_note": None,
    }
    d = _row(row, _now())
    d["units"] = {
        lv: {"code": values[LEVEL_COLUMN[lv]], "name": names.get(values[LEVEL_COLUMN[lv]])}
        for lv in LEVELS
        if values[LEVEL_COLUMN[lv]]
    }
    d["media"] = []
    d["outside"] = False
    return d


# --------------------------------------------------------------------------- transitions
def _lock(conn: Connection, incident_id: int) -> dict[str, Any]:
    row = store.lock_incident(conn, incident_id)
    if row is None:
        raise NotFound(f"incident {incident_id} does not exist")
    return row


def _current(conn: Connection, incident_id: int, actor: Account | int | None) -> dict[str, Any]:
    """The incident as ``actor`` may see it (the ``current`` of a conflict)."""
    scope = Scope.of(actor) if isinstance(actor, Account) else _WRITER
    d = _get(conn, incident_id, with_history=False, scope=scope)
    return _disclose(conn, scope, [d], action="conflict")[0]


def _media_role(to_status: str) -> str:
    """The role of files sent with a move: the 'after' photo on resolve, 'before' when the
    work starts, else a note's."""
    if to_status == "resolved":
        return "after"
    if to_status in ("accepted", "dispatched", "in_progress"):
        return "before"
    return INCIDENT_ROLES[-1]


def transition(
    bind: Bind,
    incident_id: int,
    to_status: str,
    actor: Account | int | None = None,
    note: str | None = None,
    *,
    at: datetime | None = None,
    idempotency_key: str | None = None,
    expected_updated_at: datetime | None = None,
    media: Iterable[str] | None = None,
    as_reporter: bool = False,
) -> dict[str, Any]:
    """Move an incident to ``to_status`` (see :data:`geogrid.core.lifecycle.TRANSITIONS`).

    Sets ``status``, ``updated_at`` and the status's timestamp column
    (:func:`geogrid.core.lifecycle.transition_columns`) and appends a ``status`` event.
    ``at`` (timezone-aware, default now) is the time of the change, for back-filled
    records. With ``idempotency_key``, a retry of the same move returns the first answer
    (not a 409 for a move already made).

    Issue 13:

    - ``expected_updated_at``: the ``updated_at`` the caller saw; when the incident changed
      since, :class:`~geogrid.core.verification.StaleIncident` (409 with the current
      incident) and nothing is changed.
    - ``media``: sha256s of uploaded files, attached with the role ``after`` on resolve
      (``before`` when accepting/starting, else ``note``).
    - Verified resolution (:mod:`geogrid.core.verification`): a resolve records
      ``resolved_by``; closing a resolution of a category with ``verify = 'other'`` is for
      the reporter of a resident's report (``as_reporter=True``, ``actor`` None: the
      resident's link) or a community admin or above over its units — the resolver is
      refused (Forbidden naming the rule). Sending it back (resolved → in_progress) needs
      a reason (``note``) and clears ``resolved_by``. ``as_reporter`` allows only these
      two moves.

    Raises NotFound, Forbidden (``actor`` is an Account out of scope, or the verification
    rule), Conflict (the move is not allowed, with the reason; the key was used for a
    different request; the incident changed since ``expected_updated_at``),
    InvalidInput (not a status; a send-back without a reason; unknown media).
    """
    when = _aware(at, "at") or _now()
    expected = _aware(expected_updated_at, "expected_updated_at")
    shas = _media_list(media)
    principal = idempotency.principal_of(_actor_id(actor))
    request: dict[str, Any] = {
        "incident_id": int(incident_id),
        "to_status": to_status,
        "note": note,
        "at": at,
    }
    extra = {"expected_updated_at": expected, "media": shas, "as_reporter": as_reporter}
    request.update({k: v for k, v in extra.items() if v})  # older keys hash as before
    with transaction(bind) as c:
        first = idempotency.replay_or_claim(
            c,
            idempotency_key,
            principal=principal,
            operation="transition",
            request=request,
        )
        if first is not None:
            return first
        row = _lock(c, incident_id)
        if isinstance(actor, Account):
            require_can_act(actor, row, f"incident {incident_id}")
        check_unchanged(
            int(incident_id), expected, row["updated_at"], lambda: _current(c, incident_id, actor)
        )
        move = (row["status"], to_status)
        sets = lifecycle.transition_columns(row["status"], to_status, when)
        if as_reporter and move not in (("resolved", "closed"), SEND_BACK):
            raise Forbidden(
                f"a reporter may only close or send back a resolved incident (incident "
                f"{incident_id} is {row['status']})"
            )
        if move == ("resolved", "closed"):
            check_close(row, actor, as_reporter=as_reporter)
        if move == SEND_BACK:
            note = check_send_back(note)
            sets["resolved_by"] = None
        if to_status == "resolved":
            sets["resolved_by"] = _actor_id(actor)
        store.update_incident(c, incident_id, sets)
        store.insert_event(
            c,
            incident_id,
            at=when,
            actor_id=_actor_id(actor),
            kind=_STATUS_EVENT,
            from_status=row["status"],
            to_status=to_status,
            note=note,
            data={
                k: v
                for k, v in {"media": shas, "by": "reporter" if as_reporter else None}.items()
                if v
            },
        )
        if shas:
            role = _media_role(to_status)
            media_service.attach(c, shas, "incident", int(incident_id), actor, role=role)
        out = _get(c, incident_id, with_history=False)
        if out.get("lon") is not None:  # status colours and backlog metrics change
            record_incident_change(c, [out["lon"]], [out["lat"]], kind="status")
        if to_status == "resolved":  # issue 14: the resident's satisfaction link
            survey_links.on_resolved(c, incident_id, when)
        audit.record(
            c,
            actor=actor,
            action="incident.transition",
            resource="incident",
            ids=[incident_id],
            detail={"from_status": row["status"], "to_status": to_status},
        )
        idempotency.remember(
            c,
            idempotency_key,
            principal=principal,
            answer=out,
            status_code=200,
            resource_id=int(incident_id),
        )
    return out


def add_note(
    bind: Bind,
    incident_id: int,
    note: str,
    actor: Account | int | None = None,
    *,
    media: Iterable[str] | None = None,
    public: bool = False,
    expected_updated_at: datetime | None = None,
    at: datetime | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Add a note (and photos, role ``note``) to an incident's history (issue 13).

    The incident's ``updated_at`` moves (others' stale changes are then refused);
    ``public`` marks a public status note (shown to residents, column of revision 0013).
    ``expected_updated_at`` as in :func:`transition`. Returns the incident with its
    history.

    Raises NotFound, Forbidden (out of the actor's units), Conflict (changed meanwhile;
    key reused), InvalidInput (an empty or over-long note, unknown media).
    """
    text_ = (note or "").strip()
    if not text_ or len(text_) > 2000:
        raise InvalidInput("note", note, "a note of 1 to 2,000 characters")
    when = _aware(at, "at") or _now()
    expected = _aware(expected_updated_at, "expected_updated_at")
    shas = _media_list(media)
    principal = idempotency.principal_of(_actor_id(actor))
    with transaction(bind) as c:
        first = idempotency.replay_or_claim(
            c,
            idempotency_key,
            principal=principal,
            operation="note",
            request={
                "incident_id": int(incident_id),
                "note": text_,
                "media": shas,
                "public": public,
                "expected_updated_at": expected,
                "at": at,
            },
        )
        if first is not None:
            return first
        row = _lock(c, incident_id)
        if isinstance(actor, Account):
            require_can_act(actor, row, f"incident {incident_id}")
        check_unchanged(
            int(incident_id), expected, row["updated_at"], lambda: _current(c, incident_id, actor)
        )
        store.update_incident(c, incident_id, {"updated_at": max(when, row["updated_at"])})
        store.insert_event(
            c,
            incident_id,
            at=when,
            actor_id=_actor_id(actor),
            kind=_NOTE_EVENT,
            note=text_,
            data={"media": shas} if shas else None,
            public=bool(public),
        )
        if shas:
            media_service.attach(c, shas, "incident", int(incident_id), actor, role="note")
        audit.record(
            c,
            actor=actor,
            action="incident.note",
            resource="incident",
            ids=[incident_id],
            detail={"media": len(shas), "public": bool(public)},
        )
        out = _get(c, incident_id, with_history=True)
        idempotency.remember(
            c, idempotency_key, principal=principal, answer=out, resource_id=int(incident_id)
        )
    return out


# --------------------------------------------------------------------------- escalation
def _with_assignees(conn: Connection, moves: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set ``assignee_id`` of each move: the account responsible at its level and unit."""
    pairs = [(lifecycle.admin_role_for(m["to_level"]), m["unit"]) for m in moves]
    who = store.first_accounts(conn, pairs)
    for m, pair in zip(moves, pairs, strict=True):
        m["assignee_id"] = who.get(pair)
    return moves


def escalate(
    bind: Bind,
    incident_id: int,
    actor: Account | int | None = None,
    to_level: str | None = None,
    note: str | None = None,
    *,
    at: datetime | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Hand an incident up to a higher level (default: the next level up).

    It is assigned to the incident's unit at that level (or the first level above that it
    has) and to the account responsible there; an ``escalate`` event records from/to.
    Conflict when it is resolved/closed/rejected/duplicate, not assigned, already at or
    above ``to_level``, or at the district. With ``idempotency_key``, a retry returns the
    first answer.
    """
    when = _aware(at, "at") or _now()
    if to_level is not None:
        lifecycle.level_rank(to_level, "to_level")
    principal = idempotency.principal_of(_actor_id(actor))
    with transaction(bind) as c:
        first = idempotency.replay_or_claim(
            c,
            idempotency_key,
            principal=principal,
            operation="escalate",
            request={"incident_id": int(incident_id), "to_level": to_level, "note": note, "at": at},
        )
        if first is not None:
            return first
        row = _lock(c, incident_id)
        if isinstance(actor, Account):
            require_can_act(actor, row, f"incident {incident_id}")
        if row["status"] in lifecycle.DONE:
            raise Conflict(f"cannot escalate incident {incident_id}: it is {row['status']}")
        current = row["assigned_level"]
        if current is None:
            raise Conflict(
                f"cannot escalate incident {incident_id}: it is outside every unit and not assigned"
            )
        target = to_level or lifecycle.next_level(current)
        if target is None:
            raise Conflict(
                f"cannot escalate incident {incident_id}: it is already at the {current}"
            )
        if lifecycle.level_rank(target) <= lifecycle.level_rank(current):
            raise Conflict(
                f"cannot escalate incident {incident_id} to {target!r}: it is "
                f"already at {current!r} (escalation goes up: {', '.join(LEVELS_UP)})"
            )
        level, unit = lifecycle.unit_at_or_above(row, target)
        if level is None:
            raise Conflict(
                f"cannot escalate incident {incident_id}: it has no unit at {target!r} or above"
            )
        moves = _with_assignees(
            c,
            [
                {
                    "id": int(incident_id),
                    "from_level": current,
                    "to_level": level,
                    "unit": unit,
                    "reason": "manual",
                }
            ],
        )
        store.apply_escalations(
            c, moves, at=when, actor_id=_actor_id(actor), note=note, kind=_ESCALATE_EVENT
        )
        audit.record(
            c,
            actor=actor,
            action="incident.escalate",
            resource="incident",
            ids=[incident_id],
            detail={"from_level": current, "to_level": level},
        )
        out = _get(c, incident_id, with_history=False)
        idempotency.remember(
            c,
            idempotency_key,
            principal=principal,
            answer=out,
            status_code=200,
            resource_id=int(incident_id),
        )
        return out


def escalate_overdue(
    bind: Bind,
    now: datetime | None = None,
    actor: Account | int | None = None,
) -> pd.DataFrame:
    """Escalate every overdue incident whose time limits call for a higher level, by one
    level (see :func:`geogrid.core.lifecycle.escalation_level`), in one batch.

    Running it again at the same ``now`` changes nothing; run it periodically (a cron job)
    and an incident left alone climbs one level per time limit passed.

    Returns
    -------
    DataFrame: id, from_level, to_level, unit, assignee_id, reason ('overdue').
    """
    when = _aware(now, "now") or _now()
    with transaction(bind) as c:
        rows = store.escalation_candidates(
            c, done=lifecycle.DONE_STATUSES, now=when, top_level=lifecycle.TOP_LEVEL
        )
        planned: list[dict[str, Any]] = []
        for r in rows:
            current = r["assigned_level"]
            required = lifecycle.escalation_level(r, r["reported_at"], when, current)
            above = lifecycle.next_level(current)
            if above is None or lifecycle.level_rank(required) <= lifecycle.level_rank(current):
                continue
            level, unit = lifecycle.unit_at_or_above(r, above)
            if level is None:
                continue
            planned.append(
                {
                    "id": int(r["id"]),
                    "from_level": current,
                    "to_level": level,
                    "unit": unit,
                    "reason": "overdue",
                }
            )
        _with_assignees(c, planned)
        store.apply_escalations(
            c,
            planned,
            at=when,
            actor_id=_actor_id(actor),
            note="time limit passed: escalated automatically",
            kind=_ESCALATE_EVENT,
        )
        if planned:
            audit.record(
                c,
                actor=actor,
                action="incident.escalate_overdue",
                resource="incident",
                ids=[m["id"] for m in planned],
            )
    return pd.DataFrame(planned, columns=list(store.ESCALATION_COLUMNS))


# --------------------------------------------------------------------------- reads
def _row(r: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    d = dict(r)
    data = d.pop("report_data") or {}
    d["address"] = data.get("address_string")
    d["media_url"] = data.get("media_url")
    d["accuracy_m"] = data.get("accuracy_m")
    d["overdue"] = lifecycle.is_overdue(d["status"], d["due_at"], now)
    return d


#: the scope of a write's answer (the actor was authorised for the write itself)
_WRITER = Scope.system()


def _get(
    conn: Connection,
    incident_id: int,
    *,
    with_history: bool,
    scope: Scope = _WRITER,
    names: Mapping[str, str] | None = None,
    with_media: bool = True,
) -> dict[str, Any]:
    """One incident as :func:`get_incident` returns it (``names``: unit code → name, when
    the caller knows them already; ``with_media`` False: none is attached yet)."""
    r = store.incident_row(conn, incident_id, scope=scope)
    if r is None:
        raise NotFound(f"incident {incident_id} does not exist (or is outside your units)")
    d = _row(r, _now())
    codes = {lv: d[LEVEL_COLUMN[lv]] for lv in LEVELS if d[LEVEL_COLUMN[lv]]}
    names = dict(names or {})
    if d["version_id"] is not None and codes and not set(codes.values()) <= set(names):
        names = store.unit_names(conn, d["version_id"], list(codes.values()))
    d["units"] = {lv: {"code": code, "name": names.get(code)} for lv, code in codes.items()}
    d["media"] = (
        media_service.media_of(conn, "incident", [int(incident_id)]).get(int(incident_id), [])
        if with_media
        else []
    )
    if with_history:
        d["history"] = store.event_rows(conn, incident_id, scope=scope)
    return d


def _disclose(
    conn: Bind,
    scope: Scope,
    rows: list[dict[str, Any]],
    *,
    action: str,
    audit_bind: Bind | None = None,
) -> list[dict[str, Any]]:
    """``rows`` as ``scope`` may see them: personal fields clear where
    :meth:`~geogrid.core.scope.Scope.personal_clear`, masked for other staff, the public
    view for anonymous callers (:func:`geogrid.core.masking.redact_incident`); the clear
    reads are written to the audit trail (one row for the whole list; on ``audit_bind``
    when the rows were read on a replica, issue 12)."""
    out: list[dict[str, Any]] = []
    clear: list[int] = []
    for d in rows:
        if scope.personal_clear(d):
            out.append(d)
            clear.append(int(d["id"]))
        else:  # photos are personal (faces, plates, doors): only where fields are clear
            out.append({**redact_incident(d, public=scope.is_public), "media": None})
    fields = list(INCIDENT_PERSONAL)
    if any(d.get("history") for d in rows):
        fields += [f"history.{f}" for f in EVENT_PERSONAL]
    audit.record_read(audit_bind or conn, scope, "incident", clear, fields, {"via": action})
    return out


def get_incident(
    bind: Bind,
    incident_id: int,
    *,
    scope: Scope,
    with_history: bool = False,
    audit_bind: Bind | None = None,
) -> dict[str, Any]:
    """One incident with ``units`` (level → {code, name}, district first), ``address``,
    ``media_url``, ``overdue`` and optionally ``history``, as ``scope`` may see it
    (personal fields masked outside the caller's units). NotFound if none or outside the
    caller's units. ``bind`` may be a read replica: the audit row of a clear read is then
    written on ``audit_bind`` (the primary; issue 12)."""
    with transaction(bind) as c:
        d = _get(c, incident_id, with_history=with_history, scope=scope)
        return _disclose(c, scope, [d], action="get", audit_bind=audit_bind)[0]


def _unit_level(code: str, level: str | None = None) -> str:
    """The level of a unit code's column: ``level`` when given, else the code's level."""
    if level is not None:
        lifecycle.level_rank(level)
        return level
    return level_of_code(code, "unit")


def list_incidents(
    bind: Bind,
    *,
    ids: Iterable[int] | None = None,
    categories: Iterable[str] | None = None,
    statuses: Iterable[str] | None = None,
    unit_code: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 1000,
    offset: int = 0,
    category_parameter: str | None = "category",
    scope: Scope,
    audit_bind: Bind | None = None,
) -> list[dict[str, Any]]:
    """Incidents matching every filter given, newest report first. Unknown categories or
    statuses are InvalidInput (``category_parameter`` names the parameter in errors; None
    makes unknown categories simply match nothing, as Open311 filters do).

    ``start``/``end`` bound ``reported_at`` (inclusive); ``unit_code`` matches the
    incident's code at the level of the code (15 digits grid … 6 district). Only
    incidents inside ``scope``, with personal fields as ``scope`` may see them (clear in
    the caller's units, masked for other staff, public fields only for anonymous
    callers).
    """
    cats: list[str] | None = None
    if categories is not None:
        cats = (
            check_categories(bind, categories, category_parameter)
            if category_parameter
            else [str(c) for c in categories]
        )
    unit_column = LEVEL_COLUMN[_unit_level(unit_code)] if unit_code else None
    rows = store.incident_rows(
        bind,
        ids=[int(i) for i in ids] if ids is not None else None,
        categories=cats,
        statuses=lifecycle.check_statuses(statuses) if statuses is not None else None,
        unit_column=unit_column,
        unit_code=unit_code or None,
        start=_aware(start, "start"),
        end=_aware(end, "end"),
        limit=limit,
        offset=offset,
        scope=scope,
    )
    now = _now()
    found = [_row(r, now) for r in rows]
    files = media_service.media_of(bind, "incident", [int(d["id"]) for d in found])
    for d in found:
        d["media"] = files.get(int(d["id"]), [])
    return _disclose(bind, scope, found, action="list", audit_bind=audit_bind)


def history(bind: Bind, incident_id: int, *, scope: Scope) -> list[dict[str, Any]]:
    """Every event of an incident, oldest first, actors' names and notes masked outside
    the caller's units (NotFound for an unknown incident or one outside ``scope``)."""
    with transaction(bind) as c:
        row = store.incident_row(c, incident_id, scope=scope)
        if row is None:
            raise NotFound(f"incident {incident_id} does not exist (or is outside your units)")
        events = store.event_rows(c, incident_id, scope=scope)
        if not scope.personal_clear(row):
            return [redact_event(e) for e in events]
        audit.record_read(c, scope, "incident", [incident_id], list(EVENT_PERSONAL))
        return events


def overdue(
    bind: Bind,
    unit_code: str | None = None,
    level: str | None = None,
    now: datetime | None = None,
    *,
    scope: Scope,
    tz: str | None = None,
    sort: str = "unit",
    limit: int | None = None,
    offset: int = 0,
) -> pd.DataFrame:
    """Overdue incidents (not resolved/closed/rejected/duplicate and ``now > due_at``)
    inside ``scope`` (the rows carry no personal fields), ``limit`` rows from ``offset``
    (None: all) in the order ``sort``: ``unit`` (by unit, then due time), ``overdue``
    (longest overdue first) or ``reported`` (newest report first).

    Parameters
    ----------
    unit_code : only incidents in this unit (its level from the code length, or ``level``)
    level : the level of the ``unit_code`` column (default: the level of ``unit_code``, or
        grid). Rows are sorted by that unit, then by ``due_at``.
    tz : the IANA zone of the ``*_local`` columns (default: the city's,
        ``get_settings().city.timezone``)
    now : default now (timezone-aware)

    Returns
    -------
    DataFrame: unit_code, id, category, status, reported_at, due_at, hours_overdue,
    assigned_level, assigned_unit, assignee_id, grid_code, community_code, street_code,
    district_code, and ``reported_at_local``, ``due_at_local``: those times as
    "YYYY-MM-DD HH:MM" in the city's zone (for people).
    """
    when = _aware(now, "now") or _now()
    if sort not in store.OVERDUE_ORDER:
        raise InvalidInput("sort", sort, ", ".join(store.OVERDUE_ORDER))
    if unit_code:
        lv = _unit_level(unit_code, level)
    else:
        lv = level or LEVELS_UP[0]
        lifecycle.level_rank(lv)
    rows = store.overdue_rows(
        bind,
        unit_column=LEVEL_COLUMN[lv],
        done=lifecycle.DONE_STATUSES,
        now=when,
        unit_code=unit_code or None,
        scope=scope,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    df = pd.DataFrame(rows, columns=list(store.OVERDUE_COLUMNS))
    df["hours_overdue"] = df["hours_overdue"].astype(float)
    df["assignee_id"] = df["assignee_id"].astype("Int64")
    zone = tz or get_settings().city.timezone
    for col in ("reported_at", "due_at"):
        local = pd.to_datetime(df[col], utc=True).dt.tz_convert(zone)
        df[f"{col}_local"] = local.dt.strftime("%Y-%m-%d %H:%M")
    return df
