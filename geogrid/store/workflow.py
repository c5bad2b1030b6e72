"""The SQL of incidents in their workflow: rows of ``incident`` and ``incident_event`` in
and out, and the rows behind the monthly register.

SQL only, with bound parameters: the decisions (validation, coordinates, scope, routing,
escalation) are made in :mod:`geogrid.services.incidents`, which calls these functions
inside one transaction. Events are never updated or deleted, so the history of an
incident is its events in order. Geometry is EPSG:4326; the coordinate as received is
kept in ``src_crs``/``src_lon``/``src_lat``.

Functions take a Connection (they run in the caller's transaction); the readers also
accept an Engine.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, TextClause, text

from geogrid.core.accounts import ROLE_FOR_LEVEL
from geogrid.core.hierarchy import ATTRIBUTION_COLUMNS
from geogrid.core.incident_files import INCIDENT_COPY_COLUMNS, LIFECYCLE_TIMES
from geogrid.core.lifecycle import HANDLED_STATUSES, INITIAL_STATUS, TIMESTAMP_COLUMN
from geogrid.core.scope import Scope
from geogrid.store.audit import INSERT_COLUMNS as AUDIT_INSERT_COLUMNS
from geogrid.store.audit import INSERT_VALUES as AUDIT_INSERT_VALUES
from geogrid.store.engine import connection, transaction
from geogrid.store.scope import scope_code_condition, scope_condition

__all__ = [
    "INCIDENT_COLUMNS",
    "OVERDUE_COLUMNS",
    "OVERDUE_ORDER",
    "ESCALATION_COLUMNS",
    "PUBLISH_LOCK",
    "share_published_version",
    "report_context",
    "open_report",
    "insert_report",
    "account_role",
    "near_level",
    "insert_incident",
    "insert_event",
    "lock_incident",
    "update_incident",
    "first_accounts",
    "apply_escalations",
    "escalation_candidates",
    "incident_row",
    "incident_rows",
    "unit_names",
    "incident_exists",
    "event_rows",
    "overdue_rows",
    "register_rows",
]

#: columns of ``incident`` that :func:`insert_incident` writes (plus ``geom`` from lon/lat):
#: those of a bulk load without the lifecycle timestamps
INCIDENT_COLUMNS = tuple(c for c in INCIDENT_COPY_COLUMNS if c not in {*LIFECYCLE_TIMES, "geom"})
#: columns :func:`update_incident` may set
_UPDATABLE = frozenset(
    {
        "status",
        "updated_at",
        *TIMESTAMP_COLUMN.values(),
        "assigned_level",
        "assigned_unit",
        "resolved_by",  # issue 13: who resolved it (verified resolution)
    }
)
#: columns of the rows :func:`overdue_rows` returns
OVERDUE_COLUMNS = (
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
    *ATTRIBUTION_COLUMNS,
)
#: keys of an escalation (a move of :func:`apply_escalations`)
ESCALATION_COLUMNS = ("id", "from_level", "to_level", "unit", "assignee_id", "reason")


def _check_column(column: str) -> str:
    """``column`` when it is an attribution column (it is written into SQL text)."""
    if column not in ATTRIBUTION_COLUMNS:
        raise ValueError(f"not an attribution column: {column!r}")
    return column


# --------------------------------------------------------------------------- writes
def account_role(conn: Connection, account_id: int) -> str | None:
    """The role of an account (None when it does not exist)."""
    role = conn.execute(
        text("SELECT role FROM account WHERE id = :i"), {"i": int(account_id)}
    ).scalar_one_or_none()
    return None if role is None else str(role)


#: the transaction-level advisory lock that serialises new incidents with publishes: a
#: create holds it shared (:func:`share_published_version`), a publish exclusively
#: (:func:`geogrid.store.plans.lock_publishing`)
PUBLISH_LOCK = 0x67_656F_6772_6964  # "geogrid"


def share_published_version(conn: Connection) -> None:
    """Hold the published version until the caller's transaction ends (shared: creates do
    not wait for each other, only for a publish, which waits for them).

    Call it before reading the published version: a create then either commits before a
    publish starts its re-attribution (and is re-attributed by it) or reads the version
    the publish made (READ COMMITTED: the next statement sees it).
    """
    conn.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": PUBLISH_LOCK})


#: issue 10: the report path's statements are made once (building a ``text()`` parses its
#: bind parameters with a regular expression: ~0.1 ms each, per call)
_REPORT_CONTEXT = text(
    "SELECT c.code, c.name_zh, c.name_en, c.limit_hours, c.effort, c.escalate_level, "
    "c.share, c.active, v.id AS version_id, "
    "(SELECT coalesce(json_agg(json_build_object('code', u.code, 'name', u.name, "
    "'level', u.level, 'account', (SELECT ac.id FROM account_unit au "
    "JOIN account ac ON ac.id = au.account_id AND ac.active AND ac.role = "
    "(CAST(:roles AS text[]))[array_position(CAST(:levels AS text[]), u.level)] "
    "WHERE au.unit_code = u.code ORDER BY ac.id LIMIT 1)) "
    "ORDER BY array_position(CAST(:levels AS text[]), u.level), "
    "u.code), '[]') FROM unit u WHERE u.version_id = v.id AND "
    "ST_Covers(u.geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326))) AS units, "
    "(SELECT a.role FROM account a WHERE a.id = :r) AS reporter_role "
    "FROM (SELECT 1) AS one LEFT JOIN category c ON c.code = :cat "
    "LEFT JOIN boundary_version v ON v.status = 'published'"
)


def report_context(
    conn: Connection,
    category: str,
    lon: float,
    lat: float,
    reporter_id: int | None,
    levels: Sequence[str],
    roles: Sequence[str],
) -> dict[str, Any]:
    """What a new report needs, in one query: ``category`` (the category's row, None when
    there is no such code), ``version_id`` of the published version (None when none),
    ``units`` covering the WGS84 point in it (``code``, ``name``, ``level`` and
    ``account``: the first active account of the level's role — ``roles[i]`` for
    ``levels[i]`` — bound to the unit, as :func:`first_accounts` picks it, or None; one
    unit per level, in the order of ``levels``, the lowest code first where a point on a
    shared edge is covered twice) and ``reporter_role`` (None without a reporter or when
    the account does not exist)."""
    row = (
        conn.execute(
            _REPORT_CONTEXT,
            {
                "cat": category,
                "x": lon,
                "y": lat,
                "r": reporter_id,
                "levels": list(levels),
                "roles": list(roles),
            },
        )
        .mappings()
        .one()
    )
    seen: dict[str, dict[str, Any]] = {}
    for u in row["units"] or []:
        seen.setdefault(u["level"], u)
    cat_columns = ("code", "name_zh", "name_en", "limit_hours", "effort", "escalate_level")
    return {
        "category": None
        if row["code"] is None
        else {k: row[k] for k in (*cat_columns, "share", "active")},
        "version_id": row["version_id"],
        "units": [seen[lv] for lv in levels if lv in seen],
        "reporter_role": row["reporter_role"],
    }


_OPEN_REPORT = text(
    "WITH l AS (SELECT pg_advisory_xact_lock_shared(:lock) AS held, "
    "CASE WHEN :quiet THEN set_config('geogrid.live', 'off', true) END AS live), "
    "c AS (INSERT INTO idempotency_key (principal, key, operation, request_hash) "
    "SELECT :p, :k, :o, :h FROM l WHERE CAST(:k AS text) IS NOT NULL "
    "ON CONFLICT (principal, key) DO NOTHING RETURNING 1) "
    "SELECT (SELECT count(*) FROM c) AS claimed, (SELECT count(*) FROM l) AS held, "
    "nextval('incident_id_seq') AS id"
)


def open_report(
    conn: Connection,
    *,
    claim: tuple[str, str, str, str] | None,
    notify_after: bool,
) -> tuple[bool, int]:
    """The first statement of a report's transaction (issue 10: one round trip where there
    were three): hold the published version shared (as :func:`share_published_version`),
    claim an idempotency key when ``claim`` = (principal, key, operation, request hash)
    is given (as :func:`geogrid.store.idempotency.claim_key`: waits while another open
    transaction holds it), and draw the new incident's id.

    ``notify_after``: the caller sends the live notification itself after its commit
    (:func:`geogrid.store.notify.notify`), so the ``0014_live`` trigger stays silent in
    this transaction: a transaction that sends ``NOTIFY`` holds a database-wide lock from
    its commit record to its end, so notifying reports commit one at a time (their WAL
    flushes are not grouped).

    Returns (claimed, id): ``claimed`` False when ``claim`` was given and the key already
    existed (read it with :func:`geogrid.store.idempotency.stored_answer`).
    """
    principal, key, operation, digest = claim if claim is not None else (None, None, None, None)
    row = conn.execute(
        _OPEN_REPORT,
        {
            "lock": PUBLISH_LOCK,
            "quiet": bool(notify_after),
            "p": principal,
            "k": key,
            "o": operation,
            "h": digest,
        },
    ).one()
    return (claim is None or int(row.claimed) == 1), int(row.id)


@lru_cache(maxsize=8)
def _insert_report_sql(with_id: bool, with_audit: bool, with_answer: bool) -> TextClause:
    """The statement of :func:`insert_report` (made once per shape)."""
    cols = ", ".join(INCIDENT_COLUMNS)
    params = ", ".join(f":{c}" for c in INCIDENT_COLUMNS)
    idcol, idval = ("id, ", "CAST(:_id AS bigint), ") if with_id else ("", "")
    extra = ""
    if with_audit:
        extra += (
            f", a AS (INSERT INTO audit_log ({AUDIT_INSERT_COLUMNS}) "
            f"SELECT {AUDIT_INSERT_VALUES} FROM i)"
        ).replace("CAST(:_audit_ids AS text[])", "ARRAY[i.id::text]")
    if with_answer:
        extra += (
            ", k AS (UPDATE idempotency_key SET status_code = 201, "
            "response = CAST(:_answer AS jsonb), resource_id = i.id FROM i "
            "WHERE principal = :_principal AND key = :_key)"
        )
    return text(
        f"WITH i AS (INSERT INTO incident ({idcol}{cols}, geom) VALUES ({idval}{params}, "
        "ST_SetSRID(ST_MakePoint(:_lon, :_lat), 4326)) RETURNING id), "
        "e AS (INSERT INTO incident_event (incident_id, at, actor_id, kind, to_status, data) "
        "SELECT i.id, :_at, :_actor, :_kind, :_to, CAST(:_data AS jsonb) FROM i), "
        "m AS (INSERT INTO map_change (layer, bbox, kind) VALUES ('incidents', "
        "ST_Expand(ST_SetSRID(ST_MakePoint(:_lon, :_lat), 4326), 1e-7), 'create') "
        f"RETURNING id){extra} "
        "SELECT i.id, (SELECT m.id FROM m) FROM i"
    )


def insert_report(
    conn: Connection,
    values: Mapping[str, Any],
    lon: float,
    lat: float,
    *,
    event: Mapping[str, Any],
    incident_id: int | None = None,
    audit: Mapping[str, Any] | None = None,
    answer: tuple[str, str, str] | None = None,
) -> int:
    """Insert a new incident, its first event and its ``map_change`` row in one statement.

    ``values`` has every column of :data:`INCIDENT_COLUMNS`; the point is the WGS84
    ``lon``/``lat``. ``event`` has ``at``, ``actor_id``, ``kind``, ``to_status`` and
    ``data`` (stored as JSON). The change (layer ``incidents``, the point padded by 1e-7°,
    kind ``create``) is a row for the map services' poll, without a ``NOTIFY``.

    In the same statement, when given: ``incident_id`` (drawn by :func:`open_report`),
    ``audit`` (the parameters of :func:`geogrid.store.audit.audit_params`: the action's
    audit row) and ``answer`` = (principal, key, the answer as JSON) stored under a key
    claimed by :func:`open_report` (as :func:`geogrid.store.idempotency.record_answer`,
    status 201, the new id as its resource).

    Returns the incident's id.
    """
    row = conn.execute(
        _insert_report_sql(incident_id is not None, audit is not None, answer is not None),
        {
            **{c: values[c] for c in INCIDENT_COLUMNS},
            "_lon": lon,
            "_lat": lat,
            "_at": event["at"],
            "_actor": event["actor_id"],
            "_kind": event["kind"],
            "_to": event["to_status"],
            "_data": json.dumps(dict(event["data"]), ensure_ascii=False, default=str),
            **({"_id": int(incident_id)} if incident_id is not None else {}),
            **(dict(audit) if audit is not None else {}),
            **(
                {"_principal": answer[0], "_key": answer[1], "_answer": answer[2]}
                if answer is not None
                else {}
            ),
        },
    ).one()
    return int(row[0])


def near_level(
    conn: Connection, version_id: int, level: str, lon: float, lat: float, distance_m: float
) -> bool:
    """Is a WGS84 point within ``distance_m`` metres (geodesic) of a unit of ``level``?"""
    return bool(
        conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM unit WHERE version_id = :v AND level = :level "
                "AND ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography, "
                ":d))"
            ),
            {"v": version_id, "level": level, "x": lon, "y": lat, "d": distance_m},
        ).scalar_one()
    )


def insert_incident(conn: Connection, values: Mapping[str, Any], lon: float, lat: float) -> int:
    """Insert one incident; its point is the WGS84 ``lon``/``lat``. Returns its id.

    ``values`` has every column of :data:`INCIDENT_COLUMNS`.
    """
    cols = ", ".join(INCIDENT_COLUMNS)
    params = ", ".join(f":{c}" for c in INCIDENT_COLUMNS)
    return int(
        conn.execute(
            text(
                f"INSERT INTO incident ({cols}, geom) VALUES ({params}, "
                "ST_SetSRID(ST_MakePoint(:_lon, :_lat), 4326)) RETURNING id"
            ),
            {**{c: values[c] for c in INCIDENT_COLUMNS}, "_lon": lon, "_lat": lat},
        ).scalar_one()
    )


def insert_event(
    conn: Connection,
    incident_id: int,
    *,
    at: datetime,
    actor_id: int | None,
    kind: str,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str | None = None,
    data: Mapping[str, Any] | None = None,
    public: bool = False,
) -> None:
    """Append one event to an incident's history (``data`` is stored as JSON; ``public``:
    a public status note, the column of revision 0013, written only when True)."""
    pub_col, pub_val = (", public", ", true") if public else ("", "")
    conn.execute(
        text(
            "INSERT INTO incident_event (incident_id, at, actor_id, kind, from_status, "
            f"to_status, note, data{pub_col}) VALUES (:i, :at, :a, :k, :f, :t, :n, "
            f"CAST(:d AS jsonb){pub_val})"
        ),
        {
            "i": int(incident_id),
            "at": at,
            "a": actor_id,
            "k": kind,
            "f": from_status,
            "t": to_status,
            "n": note,
            "d": json.dumps(dict(data), ensure_ascii=False, default=str) if data else None,
        },
    )


def lock_incident(conn: Connection, incident_id: int) -> dict[str, Any] | None:
    """The workflow columns of an incident, locked ``FOR UPDATE`` (None: no such incident),
    with ``updated_at``, the reporter, ``resolved_by`` and its category's ``verify``."""
    row = (
        conn.execute(
            text(
                "SELECT id, status, reported_at, due_at, assigned_level, assigned_unit, "
                f"assignee_id, {', '.join(ATTRIBUTION_COLUMNS)}, category, updated_at, "
                "reporter_kind, reporter_id, resolved_by, "
                "(SELECT c.verify FROM category c WHERE c.code = incident.category) AS verify "
                f"FROM incident WHERE {_by_id('incident')} FOR UPDATE"
            ),
            {"id": int(incident_id)},
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def update_incident(conn: Connection, incident_id: int, values: Mapping[str, Any]) -> None:
    """Set columns of one incident (status, its timestamps, ``updated_at``)."""
    bad = set(values) - _UPDATABLE
    if bad:
        raise ValueError(f"columns not updatable here: {sorted(bad)}")
    assignments = ", ".join(f"{k} = :{k}" for k in values)  # names checked above
    conn.execute(
        text(f"UPDATE incident SET {assignments} WHERE id = :_id"),
        {**values, "_id": int(incident_id)},
    )


def first_accounts(
    conn: Connection, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """(role, unit code) → the id of the first active account of that role bound to that
    unit, for every pair that has one, in one query."""
    wanted = sorted({(r, c) for r, c in pairs if r and c})
    if not wanted:
        return {}
    rows = conn.execute(
        text(
            "SELECT DISTINCT ON (w.role, w.code) w.role, w.code, a.id FROM "
            "unnest(CAST(:roles AS text[]), CAST(:codes AS text[])) AS w(role, code) "
            "JOIN account_unit au ON au.unit_code = w.code "
            "JOIN account a ON a.id = au.account_id AND a.role = w.role AND a.active "
            "ORDER BY w.role, w.code, a.id"
        ),
        {"roles": [r for r, _ in wanted], "codes": [c for _, c in wanted]},
    ).all()
    return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}


def apply_escalations(
    conn: Connection,
    moves: Sequence[Mapping[str, Any]],
    *,
    at: datetime,
    actor_id: int | None,
    note: str | None,
    kind: str,
) -> None:
    """Reassign incidents and append one ``kind`` event each, in two statements.

    Each move has the keys of :data:`ESCALATION_COLUMNS`; the event's data keeps all but
    ``id``.
    """
    if not moves:
        return
    ids = [int(m["id"]) for m in moves]
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
            "SELECT m.id, :at, :actor, :kind, :note, CAST(m.data AS jsonb) "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:data AS text[])) AS m(id, data)"
        ),
        {
            "ids": ids,
            "at": at,
            "actor": actor_id,
            "kind": kind,
            "note": note,
            "data": [json.dumps({k: m[k] for k in ESCALATION_COLUMNS[1:]}) for m in moves],
        },
    )


def escalation_candidates(
    conn: Connection, *, done: Sequence[str], now: datetime, top_level: str
) -> list[dict[str, Any]]:
    """Incidents past ``due_at`` at ``now``, not in a ``done`` status, assigned below
    ``top_level``, with their category's ``limit_hours`` and ``escalate_level``; locked
    ``FOR UPDATE``, ordered by id."""
    cols = ", ".join(f"i.{c}" for c in ATTRIBUTION_COLUMNS)
    rows = (
        conn.execute(
            text(
                f"SELECT i.id, i.reported_at, i.assigned_level, {cols}, c.limit_hours, "
                "c.escalate_level FROM incident i JOIN category c ON c.code = i.category "
                "WHERE NOT (i.status = ANY(:done)) AND i.due_at < :now "
                "AND i.assigned_level IS NOT NULL AND i.assigned_level <> :top "
                "ORDER BY i.id FOR UPDATE OF i"
            ),
            {"done": list(done), "now": now, "top": top_level},
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


# --------------------------------------------------------------------------- reads
def _by_id(alias: str) -> str:
    """The condition of one incident by ``:id`` that prunes the monthly partitions: its
    month comes from ``incident_key`` (issue 12), so only one partition is read — by id
    alone every partition's index is searched (16 of them in the demo: 8 ms a read)."""
    return (
        f"{alias}.id = :id AND {alias}.reported_at = "
        "(SELECT k.reported_at FROM incident_key k WHERE k.id = :id)"
    )


_SELECT = (
    "SELECT i.id, i.source_id, i.category, c.name_zh AS category_name_zh, "
    "c.name_en AS category_name_en, i.description, i.status, i.src_crs, i.src_lon, "
    "i.src_lat, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, i.reported_at, i.reporter_kind, "
    "i.reporter_id, i.updated_at, i.accepted_at, i.dispatched_at, i.resolved_at, "
    "i.closed_at, i.due_at, i.assigned_level, i.assigned_unit, i.resolved_by, "
    "au.name AS assigned_unit_name, i.assignee_id, i.version_id, "
    + ", ".join(f"i.{c}" for c in ATTRIBUTION_COLUMNS)
    + ", r.data AS report_data, n.note AS last_note "
    "FROM incident i JOIN category c ON c.code = i.category "
    "LEFT JOIN unit au ON au.version_id = i.version_id AND au.code = i.assigned_unit "
    "LEFT JOIN LATERAL (SELECT e.data FROM incident_event e WHERE e.incident_id = i.id "
    "AND e.to_status = :_initial ORDER BY e.id LIMIT 1) r ON true "
    "LEFT JOIN LATERAL (SELECT e.note FROM incident_event e WHERE e.incident_id = i.id "
    "AND e.note IS NOT NULL ORDER BY e.at DESC, e.id DESC LIMIT 1) n ON true "
)


def incident_row(
    bind: Engine | Connection, incident_id: int, *, scope: Scope
) -> dict[str, Any] | None:
    """One incident with its category names, WGS84 ``lon``/``lat``, the assigned unit's
    name, ``report_data`` (the first event's data) and ``last_note``; None if none or
    outside ``scope``."""
    cond, sparams = scope_condition(scope, "i")
    with connection(bind) as c:
        row = (
            c.execute(
                text(_SELECT + f"WHERE {_by_id('i')} AND {cond}"),
                {"id": int(incident_id), "_initial": INITIAL_STATUS, **sparams},
            )
            .mappings()
            .first()
        )
    return None if row is None else dict(row)


def incident_rows(
    bind: Engine | Connection,
    *,
    ids: Sequence[int] | None = None,
    categories: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
    unit_column: str | None = None,
    unit_code: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 1000,
    offset: int = 0,
    scope: Scope,
) -> list[dict[str, Any]]:
    """Incidents (as :func:`incident_row`) inside ``scope`` matching every filter given,
    newest report first. ``start``/``end`` bound ``reported_at`` (inclusive);
    ``unit_column`` is the attribution column ``unit_code`` is matched against."""
    scope_sql, sparams = scope_condition(scope, "i")
    cond: list[str] = [scope_sql]
    params: dict[str, Any] = {
        "limit": int(limit),
        "offset": int(offset),
        "_initial": INITIAL_STATUS,
        **sparams,
    }
    if ids is not None:
        cond.append("i.id = ANY(:ids)")
        params["ids"] = [int(i) for i in ids]
    if categories is not None:
        cond.append("i.category = ANY(:cats)")
        params["cats"] = list(categories)
    if statuses is not None:
        cond.append("i.status = ANY(:statuses)")
        params["statuses"] = list(statuses)
    if unit_column is not None and unit_code is not None:
        cond.append(f"i.{_check_column(unit_column)} = :unit")
        params["unit"] = unit_code
    if start is not None:
        cond.append("i.reported_at >= :start")
        params["start"] = start
    if end is not None:
        cond.append("i.reported_at <= :end")
        params["end"] = end
    where = ("WHERE " + " AND ".join(cond) + " ") if cond else ""
    with connection(bind) as c:
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
    return [dict(r) for r in rows]


def unit_names(bind: Engine | Connection, version_id: int, codes: Sequence[str]) -> dict[str, str]:
    """Unit code → name for ``codes`` in a boundary version."""
    if not codes:
        return {}
    with connection(bind) as c:
        rows = c.execute(
            text("SELECT code, name FROM unit WHERE version_id = :v AND code = ANY(:codes)"),
            {"v": int(version_id), "codes": list(codes)},
        ).all()
    return {str(code): str(name) for code, name in rows}


def incident_exists(bind: Engine | Connection, incident_id: int, *, scope: Scope) -> bool:
    """Is there an incident with this id inside ``scope``?"""
    cond, sparams = scope_condition(scope, "i")
    with connection(bind) as c:
        row = c.execute(
            text(f"SELECT 1 FROM incident i WHERE i.id = :id AND {cond}"),
            {"id": int(incident_id), **sparams},
        ).first()
    return row is not None


def event_rows(
    bind: Engine | Connection, incident_id: int, *, scope: Scope
) -> list[dict[str, Any]]:
    """Every event of an incident inside ``scope`` with the actor's name, oldest first
    (none when the incident is outside ``scope``)."""
    cond, sparams = scope_condition(scope, "i")
    with connection(bind) as c:
        rows = (
            c.execute(
                text(
                    "SELECT e.id, e.at, e.actor_id, a.name AS actor_name, e.kind, e.from_status, "
                    "e.to_status, e.note, e.data FROM incident_event e "
                    "JOIN incident i ON i.id = e.incident_id "
                    "LEFT JOIN account a ON a.id = e.actor_id WHERE e.incident_id = :id "
                    f"AND {cond} ORDER BY e.at, e.id"
                ),
                {"id": int(incident_id), **sparams},
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


#: orders of overdue rows: by unit (then due time), longest overdue first, newest report first
OVERDUE_ORDER: dict[str, str] = {
    "unit": "i.{col} NULLS LAST, i.due_at, i.id",
    "overdue": "i.due_at, i.id",
    "reported": "i.reported_at DESC, i.id DESC",
}


def overdue_rows(
    bind: Engine | Connection,
    *,
    unit_column: str,
    done: Sequence[str],
    now: datetime,
    unit_code: str | None = None,
    scope: Scope,
    sort: str = "unit",
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Incidents inside ``scope`` not in a ``done`` status whose ``due_at`` is before
    ``now``, with :data:`OVERDUE_COLUMNS` (``unit_code`` is the value of ``unit_column``;
    only ``unit_code`` when given), ordered by ``sort`` (a key of :data:`OVERDUE_ORDER`:
    by that unit, ``due_at`` and id by default); ``limit`` rows from ``offset``."""
    col = _check_column(unit_column)
    order = OVERDUE_ORDER[sort].format(col=col)
    scope_sql, sparams = scope_condition(scope, "i")
    params: dict[str, Any] = {
        "done": list(done),
        "now": now,
        "limit": limit,
        "offset": offset,
        **sparams,
    }
    cond = f"AND {scope_sql} "
    if unit_code is not None:
        cond += f"AND i.{col} = :unit "
        params["unit"] = unit_code
    attribution = ", ".join(f"i.{c}" for c in ATTRIBUTION_COLUMNS)
    with connection(bind) as c:
        rows = (
            c.execute(
                text(
                    f"SELECT i.{col} AS unit_code, i.id, i.category, i.status, i.reported_at, "
                    "i.due_at, EXTRACT(EPOCH FROM (CAST(:now AS timestamptz) - i.due_at)) / 3600.0 "
                    "AS hours_overdue, i.assigned_level, i.assigned_unit, i.assignee_id, "
                    f"{attribution} FROM incident i "
                    "WHERE NOT (i.status = ANY(:done)) AND i.due_at < :now "
                    f"{cond}ORDER BY {order} LIMIT :limit OFFSET :offset"
                ),
                params,
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


# --------------------------------------------------------------------------- register
def register_rows(
    bind: Engine | Connection,
    start: datetime,
    end: datetime,
    *,
    worker_role: str = ROLE_FOR_LEVEL["grid"],
    handled: Sequence[str] = HANDLED_STATUSES,
    scope: Scope,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The rows behind the monthly register, for ``start <= t < end``, inside ``scope``:
    the workers with a grid in the caller's units, the incidents inside them and the
    workers' service entries (none for a public scope: register rows are personal).

    Returns
    -------
    workers : worker_id, worker_name, ref, grid_codes (sorted list) of the accounts of
        ``worker_role``
    reported : worker_id, id (incidents reported by a worker in the window)
    handled : worker_id, id, reported_at, resolved_at, due_at (incidents assigned to a
        worker, in a ``handled`` status, resolved_at in the window)
    units : code, name, level, parent_code of the published version (empty if none)
    entries : worker_id, id, kind, people_count (``service_entry`` rows of the workers
        whose ``day`` — a local calendar day — is in ``[start.date(), end.date())``:
        ``start``/``end`` are aware datetimes in the city's zone)
    """
    who, who_params = scope_code_condition(scope, "au.unit_code")
    what, what_params = scope_condition(scope, "i", personal=True)
    window = {"s": start, "e": end, "role": worker_role, **what_params}
    with transaction(bind) as c:
        workers = pd.DataFrame(
            c.execute(
                text(
                    "SELECT a.id AS worker_id, a.name AS worker_name, a.ref, "
                    "array_agg(au.unit_code ORDER BY au.unit_code) AS grid_codes "
                    "FROM account a JOIN account_unit au ON au.account_id = a.id "
                    f"WHERE a.role = :role AND {who} GROUP BY a.id ORDER BY a.id"
                ),
                {"role": worker_role, **who_params},
            )
            .mappings()
            .all(),
            columns=["worker_id", "worker_name", "ref", "grid_codes"],
        )
        reported = pd.DataFrame(
            c.execute(
                text(
                    "SELECT i.reporter_id AS worker_id, i.id FROM incident i "
                    "JOIN account a ON a.id = i.reporter_id AND a.role = :role "
                    f"WHERE i.reported_at >= :s AND i.reported_at < :e AND {what}"
                ),
                window,
            )
            .mappings()
            .all(),
            columns=["worker_id", "id"],
        )
        handled_rows = pd.DataFrame(
            c.execute(
                text(
                    "SELECT i.assignee_id AS worker_id, i.id, i.reported_at, i.resolved_at, "
                    "i.due_at FROM incident i JOIN account a ON a.id = i.assignee_id "
                    "AND a.role = :role WHERE i.status = ANY(:handled) "
                    f"AND i.resolved_at >= :s AND i.resolved_at < :e AND {what}"
                ),
                {**window, "handled": list(handled)},
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
        # issue 13: the daily service register's entries of the workers in scope
        entries = pd.DataFrame(
            c.execute(
                text(
                    "SELECT s.account_id AS worker_id, s.id, s.kind, s.people_count "
                    "FROM service_entry s JOIN account a ON a.id = s.account_id "
                    "AND a.role = :role WHERE s.day >= :d0 AND s.day < :d1 AND EXISTS "
                    "(SELECT 1 FROM account_unit au WHERE au.account_id = s.account_id "
                    f"AND {who})"
                ),
                {"role": worker_role, "d0": start.date(), "d1": end.date(), **who_params},
            )
            .mappings()
            .all(),
            columns=["worker_id", "id", "kind", "people_count"],
        )
    return workers, reported, handled_rows, units, entries
