"""Incidents in their workflow: create (attribute + route), transitions, escalation, overdue
lists, history, and the rows behind the monthly register.

Every change is one transaction that updates the ``incident`` row and appends to
``incident_event``; events are never updated or deleted, so the history of an incident is
its events in order. All geometry is EPSG:4326; the coordinate as received is kept in
``src_crs``/``src_lon``/``src_lat``. SQL uses bound parameters only.

Functions take an Engine (they open their own transaction) or a Connection (they run in
the caller's transaction).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, text

from geogrid.core import crs as gcrs
from geogrid.core import lifecycle
from geogrid.core.accounts import Account, require_can_act, require_can_report
from geogrid.core.hierarchy import LEVEL_COLUMN as _LEVEL_COLUMN
from geogrid.core.hierarchy import level_of_code
from geogrid.core.timewindow import TIME_RANGE
from geogrid.errors import Conflict, InvalidInput, NotFound
from geogrid.store.changes import record_incident_change
from geogrid.store.engine import transaction as _tx
from geogrid.store.incidents import check_categories, check_statuses

__all__ = [
    "create_incident",
    "transition",
    "escalate",
    "escalate_overdue",
    "overdue",
    "history",
    "get_incident",
    "list_incidents",
    "list_categories",
    "get_category",
    "register_rows",
]


def _now() -> datetime:
    return datetime.now(UTC)


def _actor_id(actor: Account | int | None) -> int | None:
    if actor is None:
        return None
    if isinstance(actor, Account):
        return actor.id
    return int(actor)


def _aware(value: datetime | None, parameter: str) -> datetime | None:
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
    return value


# --------------------------------------------------------------------------- categories
_CATEGORY_SELECT = (
    "SELECT code, name_zh, name_en, limit_hours, effort, escalate_level, "
    "share, active FROM category"
)


def list_categories(bind: Engine | Connection, *, active_only: bool = True) -> list[dict]:
    """The incident catalogue, ordered by code."""
    with _tx(bind) as conn:
        rows = (
            conn.execute(
                text(f"{_CATEGORY_SELECT} WHERE active OR NOT :only ORDER BY code"),
                {"only": active_only},
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def get_category(bind: Engine | Connection, code: str) -> dict:
    """One category; InvalidInput naming the known codes when it does not exist."""
    with _tx(bind) as conn:
        row = (
            conn.execute(
                text(f"{_CATEGORY_SELECT} WHERE code = :c"),
                {"c": code},
            )
            .mappings()
            .first()
        )
        if row is None or not row["active"]:
            known = (
                conn.execute(text("SELECT code FROM category WHERE active ORDER BY code"))
                .scalars()
                .all()
            )
            raise InvalidInput(
                "category", code, "one of " + (", ".join(known) or "(no categories are defined)")
            )
    return dict(row)


# --------------------------------------------------------------------------- create
def _assignee(conn: Connection, level: str | None, code: str | None) -> int | None:
    if level is None or code is None:
        return None
    return conn.execute(
        text(
            "SELECT a.id FROM account a JOIN account_unit au ON au.account_id = a.id "
            "WHERE a.role = :role AND a.active AND au.unit_code = :code ORDER BY a.id LIMIT 1"
        ),
        {"role": lifecycle.admin_role_for(level), "code": code},
    ).scalar_one_or_none()


#: A report outside every grid is kept and flagged when it is within this distance (m) of
#: a district (GPS error, a river bank, a new estate); farther away it is refused as bad
#: input (a swapped lon/lat, a wrong CRS, 0/0).
NEAR_CITY_M = 20_000.0


def _near_city(conn: Connection, version_id: int, lon: float, lat: float) -> bool:
    return bool(
        conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM unit WHERE version_id = :v AND level = 'district' "
                "AND ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography, "
                ":d))"
            ),
            {"v": version_id, "x": lon, "y": lat, "d": NEAR_CITY_M},
        ).scalar_one()
    )


def create_incident(
    conn: Engine | Connection,
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
) -> dict:
    """Store a new incident, attributed and routed, with its first event.

    Parameters
    ----------
    category : a category code (``category`` table)
    lon, lat : the coordinate in ``crs`` (degrees for ``wgs84``/``gcj02``/``bd09``,
        easting/northing for a projected EPSG CRS); converted to WGS84 (EPSG:4326) with
        :func:`geogrid.core.crs.to_wgs84`, the original kept in ``src_*``.
    reported_at : timezone-aware; default now
    reporter_id : the reporting account (None: an anonymous resident)
    actor : the account doing it. When an :class:`~geogrid.core.accounts.Account`, its scope is
        checked (a worker reports only inside their own grids: Forbidden otherwise).
    reporter_kind : default ``resident`` when anonymous, else the reporter's role
    data : extra facts kept in the ``reported`` event (``address_string``, ``media_url``)

    Returns
    -------
    The incident as :func:`get_incident` returns it, plus ``outside`` (True when the point
    is outside every grid of the published version: it is stored anyway with null codes
    at the missing levels, and a ``flag`` event says so).
    """
    for name, v in (("lon", lon), ("lat", lat)):
        try:
            ok = not isinstance(v, bool) and math.isfinite(float(v))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InvalidInput(name, v, "a finite number")
    crs_name = gcrs.normalize_crs(crs)
    reported_at = _aware(reported_at, "reported_at") or _now()
    if not TIME_RANGE[0] <= reported_at < TIME_RANGE[1]:
        raise InvalidInput(
            "reported_at",
            reported_at.isoformat(),
            f"a date-time from {TIME_RANGE[0].date()} to before {TIME_RANGE[1].date()}",
        )
    wlon, wlat = gcrs.to_wgs84(np.array([float(lon)]), np.array([float(lat)]), crs_name)
    wlon, wlat = float(wlon[0]), float(wlat[0])
    if not (-180 <= wlon <= 180 and -90 <= wlat <= 90) or not (
        math.isfinite(wlon) and math.isfinite(wlat)
    ):
        raise InvalidInput("lon/lat", (lon, lat), f"a coordinate on the earth in {crs_name}")

    from geogrid.store.units import lookup_point

    with _tx(conn) as c:
        cat = get_category(c, category)
        try:
            version_id, units = lookup_point(c, wlon, wlat)
        except NotFound:  # nothing published yet: keep the incident, unattributed
            version_id, units = None, []
        if not units and version_id is not None and not _near_city(c, version_id, wlon, wlat):
            raise InvalidInput(
                "lon/lat",
                (lon, lat),
                f"a point in or near the city ({crs_name}"
                f"; WGS84 {wlon:.6f}, {wlat:.6f} is more than "
                f"{NEAR_CITY_M / 1000:g} km from every district)",
            )
        codes = {u["level"]: u["code"] for u in units}
        if isinstance(actor, Account):
            require_can_report(actor, {_LEVEL_COLUMN[lv]: codes.get(lv) for lv in lifecycle.LEVELS})
        level, unit_code = lifecycle.route(cat["escalate_level"], codes)
        assignee = _assignee(c, level, unit_code)
        kind = reporter_kind
        if kind is None:
            kind = "resident"
            if reporter_id is not None:
                kind = c.execute(
                    text("SELECT role FROM account WHERE id = :i"), {"i": reporter_id}
                ).scalar_one_or_none()
                if kind is None:
                    raise InvalidInput("reporter_id", reporter_id, "an existing account id")
        due = lifecycle.due_at(reported_at, cat["limit_hours"])
        iid = c.execute(
            text(
                "INSERT INTO incident (source_id, category, description, src_crs, src_lon, "
                "src_lat, reported_at, reporter_kind, reporter_id, status, updated_at, due_at, "
                "assigned_level, assigned_unit, assignee_id, version_id, grid_code, "
                "community_code, street_code, district_code, geom) VALUES (:source_id, :cat, "
                ":descr, :src_crs, :src_lon, :src_lat, :rep_at, :kind, :reporter, 'reported', "
                ":rep_at, :due, :level, :unit, :assignee, :vid, :g, :c, :s, :d, "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) RETURNING id"
            ),
            {
                "source_id": source_id,
                "cat": cat["code"],
                "descr": description,
                "src_crs": crs_name,
                "src_lon": float(lon),
                "src_lat": float(lat),
                "rep_at": reported_at,
                "kind": kind,
                "reporter": reporter_id,
                "due": due,
                "level": level,
                "unit": unit_code,
                "assignee": assignee,
                "vid": version_id,
                "g": codes.get("grid"),
                "c": codes.get("community"),
                "s": codes.get("street"),
                "d": codes.get("district"),
                "lon": wlon,
                "lat": wlat,
            },
        ).scalar_one()
        actor_id = _actor_id(actor) if actor is not None else reporter_id
        event_data = {k: v for k, v in dict(data or {}).items() if v not in (None, "")}
        event_data.update(assigned_level=level, assigned_unit=unit_code, assignee_id=assignee)
        _event(c, iid, reported_at, actor_id, "status", None, "reported", None, event_data)
        outside = "grid" not in codes
        if outside:
            _event(
                c,
                iid,
                reported_at,
                actor_id,
                "flag",
                None,
                None,
                "outside every grid of the published boundaries"
                + (f" (version {version_id})" if version_id else " (none published)"),
                {"flag": "outside_grid", "version_id": version_id},
            )
        record_incident_change(c, [wlon], [wlat], kind="create")
        out = get_incident(c, iid)
    out["outside"] = outside
    return out


def _event(
    conn: Connection,
    incident_id: int,
    at: datetime,
    actor_id: int | None,
    kind: str,
    from_status: str | None,
    to_status: str | None,
    note: str | None,
    data: Mapping[str, Any] | None = None,
) -> None:
    conn.execute(
        text(
            "INSERT INTO incident_event (incident_id, at, actor_id, kind, from_status, "
            "to_status, note, data) VALUES (:i, :at, :a, :k, :f, :t, :n, CAST(:d AS jsonb))"
        ),
        {
            "i": incident_id,
            "at": at,
            "a": actor_id,
            "k": kind,
            "f": from_status,
            "t": to_status,
            "n": note,
            "d": json.dumps(dict(data), ensure_ascii=False, default=str) if data else None,
        },
    )


# --------------------------------------------------------------------------- transitions
_LOCK_SQL = (
    "SELECT id, status, reported_at, due_at, assigned_level, assigned_unit, assignee_id, "
    "grid_code, community_code, street_code, district_code, category FROM incident "
    "WHERE id = :id FOR UPDATE"
)


def _lock(conn: Connection, incident_id: int) -> dict:
    row = conn.execute(text(_LOCK_SQL), {"id": int(incident_id)}).mappings().first()
    if row is None:
        raise NotFound(f"incident {incident_id} does not exist")
    return dict(row)


def transition(
    conn: Engine | Connection,
    incident_id: int,
    to_status: str,
    actor: Account | int | None = None,
    note: str | None = None,
    *,
    at: datetime | None = None,
) -> dict:
    """Move an incident to ``to_status`` (see :data:`geogrid.core.lifecycle.TRANSITIONS`).

    Sets ``status``, ``updated_at`` and the status's timestamp column (``accepted_at`` …;
    ``rejected``/``duplicate`` set ``closed_at``; reopening ``resolved → in_progress``
    clears ``resolved_at``) and appends a ``status`` event. ``at`` (timezone-aware,
    default now) is the time of the change, for back-filled records.

    Raises NotFound, Forbidden (``actor`` is an Account out of scope), Conflict (the move
    is not allowed, with the reason).
    """
    at = _aware(at, "at") or _now()
    with _tx(conn) as c:
        row = _lock(c, incident_id)
        if isinstance(actor, Account):
            require_can_act(actor, row, f"incident {incident_id}")
        lifecycle.check_transition(row["status"], to_status)
        sets = {"status": to_status, "updated_at": at}
        col = lifecycle.TIMESTAMP_COLUMN.get(to_status)
        if col:
            sets[col] = at
        if row["status"] == "resolved" and to_status == "in_progress":
            sets["resolved_at"] = None
        assignments = ", ".join(f"{k} = :{k}" for k in sets)  # column names from constants
        c.execute(
            text(f"UPDATE incident SET {assignments} WHERE id = :id"),
            {**sets, "id": int(incident_id)},
        )
        _event(c, int(incident_id), at, _actor_id(actor), "status", row["status"], to_status, note)
        out = get_incident(c, int(incident_id))
        if out.get("lon") is not None:  # status colours and backlog metrics change
            record_incident_change(c, [out["lon"]], [out["lat"]], kind="status")
        return out


# --------------------------------------------------------------------------- escalation
def _code_at_or_above(row: Mapping[str, Any], level: str) -> tuple[str | None, str | None]:
    for lv in lifecycle.LEVELS[lifecycle.level_rank(level) :]:
        code = row.get(_LEVEL_COLUMN[lv])
        if code:
            return lv, code
    return None, None


def _assignees(conn: Connection, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """(level, code) → the first active account responsible there, in one query."""
    pairs = list({p for p in pairs if p[0] and p[1]})
    if not pairs:
        return {}
    roles = [lifecycle.admin_role_for(lv) for lv, _ in pairs]
    codes = [code for _, code in pairs]
    rows = conn.execute(
        text(
            "SELECT DISTINCT ON (w.role, w.code) w.role, w.code, a.id FROM "
            "unnest(CAST(:roles AS text[]), CAST(:codes AS text[])) AS w(role, code) "
            "JOIN account_unit au ON au.unit_code = w.code "
            "JOIN account a ON a.id = au.account_id AND a.role = w.role AND a.active "
            "ORDER BY w.role, w.code, a.id"
        ),
        {"roles": roles, "codes": codes},
    ).all()
    by_role = {(r[0], r[1]): int(r[2]) for r in rows}
    return {
        (lv, code): by_role[(lifecycle.admin_role_for(lv), code)]
        for lv, code in pairs
        if (lifecycle.admin_role_for(lv), code) in by_role
    }


def _apply_escalations(
    conn: Connection, moves: list[dict], at: datetime, actor_id: int | None, note: str | None
) -> None:
    """Update the incidents and append one ``escalate`` event each, in two statements."""
    if not moves:
        return
    ids = [m["id"] for m in moves]
    conn.execute(
        text(
            "UPDATE incident i SET assigned_level = m.level, assigned_unit = m.unit, "
            "assignee_id = m.assignee, updated_at = :at FROM unnest(CAST(:ids AS bigint[]), "
            "CAST(:levels AS text[]), CAST(:units AS text[]), CAST(:assignees AS int[])) "
            "AS m(id, level, unit, assignee) WHERE i.id = m.id"
        ),
        {
            "ids": ids,
            "levels": [m["to_level"] for m in moves],
            "units": [m["unit"] for m in moves],
            "assignees": [m["assignee_id"] for m in moves],
            "at": at,
        },
    )
    conn.execute(
        text(
            "INSERT INTO incident_event (incident_id, at, actor_id, kind, note, data) "
            "SELECT m.id, :at, :actor, 'escalate', :note, CAST(m.data AS jsonb) "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:data AS text[])) AS m(id, data)"
        ),
        {
            "ids": ids,
            "at": at,
            "actor": actor_id,
            "note": note,
            "data": [
                json.dumps(
                    {k: m[k] for k in ("from_level", "to_level", "unit", "assignee_id", "reason")}
                )
                for m in moves
            ],
        },
    )


def escalate(
    conn: Engine | Connection,
    incident_id: int,
    actor: Account | int | None = None,
    to_level: str | None = None,
    note: str | None = None,
    *,
    at: datetime | None = None,
) -> dict:
    """Hand an incident up to a higher level (default: the next level up).

    It is assigned to the incident's unit at that level (or the first level above that it
    has) and to the account responsible there; an ``escalate`` event records from/to.
    Conflict when it is resolved/closed/rejected/duplicate, not assigned, already at or
    above ``to_level``, or at the district.
    """
    at = _aware(at, "at") or _now()
    if to_level is not None:
        lifecycle.level_rank(to_level, "to_level")
    with _tx(conn) as c:
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
            raise Conflict(f"cannot escalate incident {incident_id}: it is already at the district")
        if lifecycle.level_rank(target) <= lifecycle.level_rank(current):
            raise Conflict(
                f"cannot escalate incident {incident_id} to {target!r}: it is "
                f"already at {current!r} (escalation goes up: "
                f"{', '.join(lifecycle.LEVELS)})"
            )
        level, unit = _code_at_or_above(row, target)
        if level is None:
            raise Conflict(
                f"cannot escalate incident {incident_id}: it has no unit at {target!r} or above"
            )
        assignee = _assignees(c, [(level, unit)]).get((level, unit))
        _apply_escalations(
            c,
            [
                {
                    "id": int(incident_id),
                    "from_level": current,
                    "to_level": level,
                    "unit": unit,
                    "assignee_id": assignee,
                    "reason": "manual",
                }
            ],
            at,
            _actor_id(actor),
            note,
        )
        return get_incident(c, int(incident_id))


def escalate_overdue(
    conn: Engine | Connection,
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
    now = _aware(now, "now") or _now()
    cols = ["id", "from_level", "to_level", "unit", "assignee_id", "reason"]
    with _tx(conn) as c:
        rows = (
            c.execute(
                text(
                    "SELECT i.id, i.reported_at, i.assigned_level, i.grid_code, i.community_code, "
                    "i.street_code, i.district_code, c.limit_hours, c.escalate_level "
                    "FROM incident i JOIN category c ON c.code = i.category "
                    "WHERE NOT (i.status = ANY(:done)) AND i.due_at < :now "
                    "AND i.assigned_level IS NOT NULL AND i.assigned_level <> 'district' "
                    "ORDER BY i.id FOR UPDATE OF i"
                ),
                {"done": sorted(lifecycle.DONE), "now": now},
            )
            .mappings()
            .all()
        )
        planned = []
        for r in rows:
            current = r["assigned_level"]
            required = lifecycle.escalation_level(r, r["reported_at"], now, current)
            if lifecycle.level_rank(required) <= lifecycle.level_rank(current):
                continue
            level, unit = _code_at_or_above(r, lifecycle.next_level(current))
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
        who = _assignees(c, [(m["to_level"], m["unit"]) for m in planned])
        for m in planned:
            m["assignee_id"] = who.get((m["to_level"], m["unit"]))
        _apply_escalations(
            c, planned, now, _actor_id(actor), "time limit passed: escalated automatically"
        )
    return pd.DataFrame(planned, columns=cols)


# --------------------------------------------------------------------------- reads
_SELECT = (
    "SELECT i.id, i.source_id, i.category, c.name_zh AS category_name_zh, "
    "c.name_en AS category_name_en, i.description, i.status, i.src_crs, i.src_lon, "
    "i.src_lat, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, i.reported_at, i.reporter_kind, "
    "i.reporter_id, i.updated_at, i.accepted_at, i.dispatched_at, i.resolved_at, "
    "i.closed_at, i.due_at, i.assigned_level, i.assigned_unit, "
    "au.name AS assigned_unit_name, i.assignee_id, i.version_id, i.grid_code, "
    "i.community_code, i.street_code, i.district_code, r.data AS report_data, "
    "n.note AS last_note "
    "FROM incident i JOIN category c ON c.code = i.category "
    "LEFT JOIN unit au ON au.version_id = i.version_id AND au.code = i.assigned_unit "
    "LEFT JOIN LATERAL (SELECT e.data FROM incident_event e WHERE e.incident_id = i.id "
    "AND e.kind = 'status' AND e.to_status = 'reported' ORDER BY e.id LIMIT 1) r ON true "
    "LEFT JOIN LATERAL (SELECT e.note FROM incident_event e WHERE e.incident_id = i.id "
    "AND e.note IS NOT NULL ORDER BY e.at DESC, e.id DESC LIMIT 1) n ON true "
)


def _row(r: Mapping[str, Any]) -> dict:
    d = dict(r)
    data = d.pop("report_data") or {}
    d["address"] = data.get("address_string")
    d["media_url"] = data.get("media_url")
    d["overdue"] = lifecycle.is_overdue(d["status"], d["due_at"], _now())
    return d


def get_incident(
    conn: Engine | Connection, incident_id: int, *, with_history: bool = False
) -> dict:
    """One incident with ``units`` (level → {code, name}) and optionally ``history``."""
    with _tx(conn) as c:
        r = (
            c.execute(text(_SELECT + "WHERE i.id = :id"), {"id": int(incident_id)})
            .mappings()
            .first()
        )
        if r is None:
            raise NotFound(f"incident {incident_id} does not exist")
        d = _row(r)
        codes = [d[_LEVEL_COLUMN[lv]] for lv in lifecycle.LEVELS if d[_LEVEL_COLUMN[lv]]]
        names = {}
        if d["version_id"] is not None and codes:
            names = dict(
                c.execute(
                    text(
                        "SELECT code, name FROM unit WHERE version_id = :v AND code = ANY(:codes)"
                    ),
                    {"v": d["version_id"], "codes": codes},
                ).all()
            )
        d["units"] = {
            lv: {"code": d[_LEVEL_COLUMN[lv]], "name": names.get(d[_LEVEL_COLUMN[lv]])}
            for lv in reversed(lifecycle.LEVELS)
            if d[_LEVEL_COLUMN[lv]]
        }
        if with_history:
            d["history"] = history(c, int(incident_id))
    return d


def list_incidents(
    conn: Engine | Connection,
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
) -> list[dict]:
    """Incidents matching every filter given, newest report first. Unknown categories or
    statuses are InvalidInput (``category_parameter`` names the parameter in errors; None
    makes unknown categories simply match nothing, as Open311 filters do).

    ``start``/``end`` bound ``reported_at`` (inclusive); ``unit_code`` matches the
    incident's code at the level of the code (15 digits grid … 6 district).
    """
    cond, params = [], {"limit": int(limit), "offset": int(offset)}
    if ids is not None:
        cond.append("i.id = ANY(:ids)")
        params["ids"] = [int(i) for i in ids]
    if categories is not None:
        cond.append("i.category = ANY(:cats)")
        params["cats"] = (
            check_categories(conn, categories, category_parameter)
            if category_parameter
            else [str(c) for c in categories]
        )
    if statuses is not None:
        cond.append("i.status = ANY(:statuses)")
        params["statuses"] = check_statuses(statuses)
    if unit_code:
        cond.append(f"i.{_LEVEL_COLUMN[_level_of_code(unit_code)]} = :unit")
        params["unit"] = unit_code
    if start is not None:
        cond.append("i.reported_at >= :start")
        params["start"] = _aware(start, "start")
    if end is not None:
        cond.append("i.reported_at <= :end")
        params["end"] = _aware(end, "end")
    where = ("WHERE " + " AND ".join(cond) + " ") if cond else ""
    with _tx(conn) as c:
        rows = (
            c.execute(
                text(
                    _SELECT + where + "ORDER BY i.reported_at DESC, i.id DESC "
                    "LIMIT :limit OFFSET :offset"
                ),
                params,
            )
            .mappings()
            .all()
        )
    return [_row(r) for r in rows]


def _level_of_code(code: str, level: str | None = None) -> str:
    if level is not None:
        lifecycle.level_rank(level)
        return level
    return level_of_code(code, "unit")


def history(conn: Engine | Connection, incident_id: int) -> list[dict]:
    """Every event of an incident, oldest first (NotFound for an unknown incident)."""
    with _tx(conn) as c:
        exists = c.execute(
            text("SELECT 1 FROM incident WHERE id = :id"), {"id": int(incident_id)}
        ).first()
        if exists is None:
            raise NotFound(f"incident {incident_id} does not exist")
        rows = (
            c.execute(
                text(
                    "SELECT e.id, e.at, e.actor_id, a.name AS actor_name, e.kind, e.from_status, "
                    "e.to_status, e.note, e.data FROM incident_event e "
                    "LEFT JOIN account a ON a.id = e.actor_id WHERE e.incident_id = :id "
                    "ORDER BY e.at, e.id"
                ),
                {"id": int(incident_id)},
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def overdue(
    conn: Engine | Connection,
    unit_code: str | None = None,
    level: str | None = None,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Overdue incidents (not resolved/closed/rejected/duplicate and ``now > due_at``).

    Parameters
    ----------
    unit_code : only incidents in this unit (its level from the code length, or ``level``)
    level : the level of the ``unit_code`` column (default: the level of ``unit_code``, or
        grid). Rows are sorted by that unit, then by ``due_at``.
    now : default now (timezone-aware)

    Returns
    -------
    DataFrame: unit_code, id, category, status, reported_at, due_at, hours_overdue,
    assigned_level, assigned_unit, assignee_id, grid_code, community_code, street_code,
    district_code.
    """
    now = _aware(now, "now") or _now()
    lv = _level_of_code(unit_code, level) if unit_code else (level or "grid")
    lifecycle.level_rank(lv)
    col = _LEVEL_COLUMN[lv]
    params: dict[str, Any] = {"done": sorted(lifecycle.DONE), "now": now}
    cond = ""
    if unit_code:
        cond = f"AND i.{col} = :unit "
        params["unit"] = unit_code
    cols = [
        "unit_code",
        "id",
        "category",
        "status",
        "reported_at",
        "due_at",
        "hours_overdue",
        "assigned_level",
        "assigned_unit",
        "assignee_id",
        "grid_code",
        "community_code",
        "street_code",
        "district_code",
    ]
    with _tx(conn) as c:
        rows = (
            c.execute(
                text(
                    f"SELECT i.{col} AS unit_code, i.id, i.category, i.status, i.reported_at, "
                    "i.due_at, EXTRACT(EPOCH FROM (CAST(:now AS timestamptz) - i.due_at)) / 3600.0 "
                    "AS hours_overdue, i.assigned_level, i.assigned_unit, i.assignee_id, "
                    "i.grid_code, i.community_code, i.street_code, i.district_code FROM incident i "
                    "WHERE NOT (i.status = ANY(:done)) AND i.due_at < :now "
                    f"{cond}ORDER BY i.{col} NULLS LAST, i.due_at, i.id"
                ),
                params,
            )
            .mappings()
            .all()
        )
    df = pd.DataFrame(rows, columns=cols)
    df["hours_overdue"] = df["hours_overdue"].astype(float)
    df["assignee_id"] = df["assignee_id"].astype("Int64")
    return df


# --------------------------------------------------------------------------- register
def register_rows(
    conn: Engine | Connection,
    start: datetime,
    end: datetime,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The rows behind the monthly register, for ``start <= t < end``.

    Returns
    -------
    workers : worker_id, worker_name, ref, grid_codes (sorted list)
    reported : worker_id, id (incidents reported by a worker in the window)
    handled : worker_id, id, reported_at, resolved_at, due_at (incidents assigned to a
        worker, status resolved or closed, resolved_at in the window)
    units : code, name, level, parent_code of the published version (empty if none)
    """
    with _tx(conn) as c:
        workers = pd.DataFrame(
            c.execute(
                text(
                    "SELECT a.id AS worker_id, a.name AS worker_name, a.ref, "
                    "array_agg(au.unit_code ORDER BY au.unit_code) AS grid_codes "
                    "FROM account a JOIN account_unit au ON au.account_id = a.id "
                    "WHERE a.role = 'worker' GROUP BY a.id ORDER BY a.id"
                )
            )
            .mappings()
            .all(),
            columns=["worker_id", "worker_name", "ref", "grid_codes"],
        )
        reported = pd.DataFrame(
            c.execute(
                text(
                    "SELECT i.reporter_id AS worker_id, i.id FROM incident i "
                    "JOIN account a ON a.id = i.reporter_id AND a.role = 'worker' "
                    "WHERE i.reported_at >= :s AND i.reported_at < :e"
                ),
                {"s": start, "e": end},
            )
            .mappings()
            .all(),
            columns=["worker_id", "id"],
        )
        handled = pd.DataFrame(
            c.execute(
                text(
                    "SELECT i.assignee_id AS worker_id, i.id, i.reported_at, i.resolved_at, "
                    "i.due_at FROM incident i JOIN account a ON a.id = i.assignee_id "
                    "AND a.role = 'worker' WHERE i.status IN ('resolved', 'closed') "
                    "AND i.resolved_at >= :s AND i.resolved_at < :e"
                ),
                {"s": start, "e": end},
            )
            .mappings()
            .all(),
            columns=["worker_id", "id", "reported_at", "resolved_at", "due_at"],
        )
        units = pd.DataFrame(
            c.execute(
                text(
                    "SELECT u.code, u.name, u.level, u.parent_code FROM unit u "
                    "JOIN boundary_version v ON v.id = u.version_id AND v.status = 'published'"
                )
            )
            .mappings()
            .all(),
            columns=["code", "name", "level", "parent_code"],
        )
    return workers, reported, handled, units
