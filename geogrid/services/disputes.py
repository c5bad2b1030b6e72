"""Disputes (矛盾纠纷): record a case with its parties, hold mediation sessions, record the
outcome (resolved, referred or a signed agreement); optionally linked to an incident.

A dispute is attributed to the units of its place — the incident's, a point (``lon``/
``lat`` in ``crs``) or a grid — and acted on by the people of those units (a worker in
their grids, the admins in their units, admin anywhere), like an incident
(:func:`geogrid.core.accounts.require_can_act`). Parties' names and phones are personal:
clear inside the caller's units (audited), masked for city-wide readers (leaders,
analysts, planners); a dispute outside a unit-bound caller's units does not exist for
them (404). Every create takes an ``Idempotency-Key``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine

from geogrid.core import crs as gcrs
from geogrid.core import disputes as core
from geogrid.core.accounts import Account, require_can_act, require_can_report
from geogrid.core.hierarchy import LEVEL_COLUMN, LEVELS_UP, level_of_code, parent_chain
from geogrid.core.scope import Scope
from geogrid.errors import InvalidInput, NotFound
from geogrid.services import audit, idempotency
from geogrid.services import media as media_service
from geogrid.store import disputes as store
from geogrid.store import teams as store_teams
from geogrid.store.engine import transaction

__all__ = ["create_dispute", "list_disputes", "get_dispute", "add_session", "record_outcome"]

Bind = Engine | Connection


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None, parameter: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidInput(parameter, value.isoformat(), "a date-time with a time zone")
    return value


def _not_found(dispute_id: int) -> NotFound:
    return NotFound(f"dispute {dispute_id} does not exist (or is outside your units)")


def _place(
    conn: Connection,
    actor: Account,
    *,
    incident_id: int | None,
    lon: float | None,
    lat: float | None,
    crs: str,
    grid_code: str | None,
) -> tuple[dict[str, str | None], float | None, float | None]:
    """(unit codes by attribution column, WGS84 lon, lat) of a new dispute."""
    cols = {LEVEL_COLUMN[lv]: None for lv in LEVELS_UP}
    if incident_id is not None:
        place = store.incident_place(conn, incident_id)
        if place is None or not Scope.of(actor).covers(place):
            raise NotFound(f"incident {incident_id} does not exist (or is outside your units)")
        return {c: place[c] for c in cols}, place["lon"], place["lat"]
    if lon is not None or lat is not None:
        try:
            x, y = float(lon), float(lat)  # type: ignore[arg-type]
            ok = math.isfinite(x) and math.isfinite(y)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InvalidInput("lon/lat", (lon, lat), "finite numbers")
        name = gcrs.normalize_crs(crs)
        wx, wy = gcrs.to_wgs84(np.array([x]), np.array([y]), name)
        wlon, wlat = float(wx[0]), float(wy[0])
        codes = store.units_at(conn, wlon, wlat)
        if "grid" not in codes:
            raise InvalidInput(
                "lon/lat", (lon, lat), f"a point inside a grid of the published boundaries ({name})"
            )
        return {LEVEL_COLUMN[lv]: codes.get(lv) for lv in LEVELS_UP}, wlon, wlat
    if grid_code:
        code = str(grid_code).strip()
        if (
            not code.isdigit()
            or level_of_code(code, "grid_code") != "grid"
            or not store_teams.published_grids(conn, [code])
        ):
            raise InvalidInput("grid_code", grid_code, "a grid of the published boundaries")
        chain = parent_chain(code)
        return {LEVEL_COLUMN[lv]: chain.get(lv) for lv in LEVELS_UP}, None, None
    raise InvalidInput("lon/lat", None, "a place: lon/lat, grid_code or incident_id")


def _with_names(d: dict[str, Any]) -> dict[str, Any]:
    zh, en = core.DISPUTE_CATEGORIES.get(d["category"], (d["category"], d["category"]))
    d["category_name_zh"], d["category_name_en"] = zh, en
    d["session_count"] = int(d.get("session_count") or 0)
    if d.get("outcome"):
        d["outcome_name_zh"], d["outcome_name_en"] = core.OUTCOMES[d["outcome"]]
    else:
        d["outcome_name_zh"] = d["outcome_name_en"] = None
    return d


def _disclose(
    conn: Bind, scope: Scope, rows: Iterable[dict[str, Any]], *, action: str
) -> list[dict[str, Any]]:
    out, clear = [], []
    for d in rows:
        d = _with_names(dict(d))
        if scope.personal_clear(d):
            out.append(d)
            clear.append(int(d["id"]))
        else:
            out.append(core.redact_dispute(d))
    fields = list(core.DISPUTE_PERSONAL)
    if any("sessions" in d for d in out):
        fields += [f"sessions.{f}" for f in core.SESSION_PERSONAL]
    audit.record_read(conn, scope, "dispute", clear, fields, {"via": action})
    return out


def _get(conn: Connection, dispute_id: int, scope: Scope) -> dict[str, Any]:
    rows = store.dispute_rows(conn, scope=scope, ids=[int(dispute_id)], limit=1)
    if not rows:
        raise _not_found(dispute_id)
    d = rows[0]
    d["sessions"] = [
        {k: v for k, v in s.items() if k != "dispute_id"}
        for s in store.session_rows(conn, [int(dispute_id)])
    ]
    d["media"] = media_service.media_of(conn, "dispute", [int(dispute_id)]).get(int(dispute_id), [])
    return d


def create_dispute(
    bind: Bind,
    *,
    cause: str,
    category: str,
    parties: list[dict[str, Any]],
    actor: Account,
    incident_id: int | None = None,
    lon: float | None = None,
    lat: float | None = None,
    crs: str = "wgs84",
    grid_code: str | None = None,
    at: datetime | None = None,
    media: list[str] | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Record a dispute at its place (an incident, a point or a grid), with photos
    uploaded before (``media``: sha256s, :func:`geogrid.services.media.attach`).
    Forbidden when the actor may not act there; NotFound for an incident outside their
    units."""
    c_cause = core.check_text(cause, "cause")
    c_cat = core.check_dispute_category(category)
    c_parties = core.check_parties(parties)
    when = _aware(at, "at") or _now()
    principal = idempotency.principal_of(actor.id)
    with transaction(bind) as c:
        first = idempotency.replay_or_claim(
            c,
            idempotency_key,
            principal=principal,
            operation="create_dispute",
            request={
                "cause": c_cause,
                "category": c_cat,
                "parties": c_parties,
                "incident_id": incident_id,
                "lon": lon,
                "lat": lat,
                "crs": crs,
                "grid_code": grid_code,
                "at": at,
                "media": list(media or []),
            },
        )
        if first is not None:
            return first
        codes, wlon, wlat = _place(
            c, actor, incident_id=incident_id, lon=lon, lat=lat, crs=crs, grid_code=grid_code
        )
        require_can_report(actor, codes)
        did = store.insert_dispute(
            c,
            {
                "incident_id": incident_id,
                "cause": c_cause,
                "category": c_cat,
                "status": core.DISPUTE_STATUSES[0],
                "parties": c_parties,
                **codes,
                "created_by": actor.id,
                "created_at": when,
                "updated_at": when,
            },
            wlon,
            wlat,
        )
        if media:
            media_service.attach(c, media, "dispute", did, actor)
        audit.record(c, actor=actor, action="dispute.create", resource="dispute", ids=[did])
        out = _with_names(_get(c, did, Scope.system()))
        idempotency.remember(c, idempotency_key, principal=principal, answer=out, resource_id=did)
    return out


def list_disputes(
    bind: Bind,
    *,
    scope: Scope,
    statuses: Iterable[str] | None = None,
    unit_code: str | None = None,
    incident_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Disputes inside ``scope``, newest first (parties masked where ``scope`` does not
    read them in clear)."""
    st = core.check_dispute_statuses(statuses) if statuses is not None else None
    if unit_code and not unit_code.isdigit():
        raise InvalidInput("unit", unit_code, "a unit code of 6, 9, 12 or 15 digits")
    column = LEVEL_COLUMN[level_of_code(unit_code, "unit")] if unit_code else None
    with transaction(bind) as c:
        rows = store.dispute_rows(
            c,
            scope=scope,
            statuses=st,
            unit_column=column,
            unit_code=unit_code or None,
            incident_id=incident_id,
            limit=limit,
            offset=offset,
        )
        return _disclose(c, scope, rows, action="list")


def get_dispute(bind: Bind, dispute_id: int, *, scope: Scope) -> dict[str, Any]:
    """One dispute with its sessions (NotFound outside ``scope``)."""
    with transaction(bind) as c:
        return _disclose(c, scope, [_get(c, dispute_id, scope)], action="get")[0]


def _lock_for(conn: Connection, dispute_id: int, actor: Account) -> dict[str, Any]:
    row = store.lock_dispute(conn, dispute_id)
    if row is None or not Scope.of(actor).covers(row):
        raise _not_found(dispute_id)
    require_can_act(actor, row, f"dispute {dispute_id}")
    return row


def add_session(
    bind: Bind,
    dispute_id: int,
    *,
    actor: Account,
    note: str,
    at: datetime | None = None,
    outcome: str | None = None,
    outcome_note: str | None = None,
    media: list[str] | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """A mediation session held by ``actor`` (``media``: photos of it, e.g. the signed
    agreement, attached to the dispute) (the dispute becomes ``mediating``; with an
    ``outcome`` it is closed with it). Conflict when the dispute is closed."""
    c_note = core.check_text(note, "note")
    c_out = core.check_outcome(outcome) if outcome is not None else None
    c_out_note = core.check_text(outcome_note, "outcome_note", required=False)
    when = _aware(at, "at") or _now()
    principal = idempotency.principal_of(actor.id)
    with transaction(bind) as c:
        first = idempotency.replay_or_claim(
            c,
            idempotency_key,
            principal=principal,
            operation="dispute_session",
            request={
                "dispute_id": int(dispute_id),
                "note": c_note,
                "at": at,
                "outcome": c_out,
                "outcome_note": c_out_note,
                "media": list(media or []),
            },
        )
        if first is not None:
            return first
        row = _lock_for(c, dispute_id, actor)
        status = core.next_status(row["status"], session=True, outcome=c_out)
        store.insert_session(
            c, dispute_id, at=when, mediator_id=actor.id, note=c_note, outcome=c_out
        )
        values: dict[str, Any] = {"status": status, "updated_at": _now()}
        if c_out is not None:
            values.update(closed_at=when, outcome=c_out, outcome_note=c_out_note)
        store.update_dispute(c, dispute_id, values)
        if media:
            media_service.attach(c, media, "dispute", dispute_id, actor)
        audit.record(
            c,
            actor=actor,
            action="dispute.session",
            resource="dispute",
            ids=[dispute_id],
            detail={"from_status": row["status"], "to_status": status},
        )
        out = _with_names(_get(c, dispute_id, Scope.system()))
        idempotency.remember(
            c, idempotency_key, principal=principal, answer=out, resource_id=int(dispute_id)
        )
    return out


def record_outcome(
    bind: Bind,
    dispute_id: int,
    *,
    actor: Account,
    outcome: str,
    note: str | None = None,
    at: datetime | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Close a dispute with its outcome (resolved, referred, agreement). Conflict when it
    is closed already."""
    c_out = core.check_outcome(outcome)
    c_note = core.check_text(note, "note", required=False)
    when = _aware(at, "at") or _now()
    principal = idempotency.principal_of(actor.id)
    with transaction(bind) as c:
        first = idempotency.replay_or_claim(
            c,
            idempotency_key,
            principal=principal,
            operation="dispute_outcome",
            request={"dispute_id": int(dispute_id), "outcome": c_out, "note": c_note, "at": at},
        )
        if first is not None:
            return first
        row = _lock_for(c, dispute_id, actor)
        status = core.next_status(row["status"], outcome=c_out)
        store.update_dispute(
            c,
            dispute_id,
            {
                "status": status,
                "updated_at": _now(),
                "closed_at": when,
                "outcome": c_out,
                "outcome_note": c_note,
            },
        )
        audit.record(
            c,
            actor=actor,
            action="dispute.outcome",
            resource="dispute",
            ids=[dispute_id],
            detail={"from_status": row["status"], "outcome": c_out},
        )
        out = _with_names(_get(c, dispute_id, Scope.system()))
        idempotency.remember(
            c,
            idempotency_key,
            principal=principal,
            answer=out,
            status_code=200,
            resource_id=int(dispute_id),
        )
    return out
