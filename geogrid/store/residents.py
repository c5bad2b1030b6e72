"""Residents close the loop (issue 14): satisfaction links and answers, the follow-up
queue, public status notes, evaluation rounds, and the reads of the worker's file and the
year-end review. SQL only (SQLAlchemy Core, bound parameters); the rules are in
:mod:`geogrid.core.satisfaction`, :mod:`geogrid.core.evaluation` and
:mod:`geogrid.core.review`, the workflows in ``geogrid/services``.

The tables are created by migration 0013 (``geogrid/migrations/versions/0013_residents.py``).
The field-work tables of issue 13 (``service_entry``, ``patrol``, ``patrol_grid``) are read
when they exist (``to_regclass``), so the worker's file works before they are loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from geogrid.core.scope import Scope
from geogrid.store.engine import connection
from geogrid.store.scope import scope_condition
from geogrid.store.tables import metadata

__all__ = [
    "survey_link",
    "satisfaction",
    "follow_up",
    "evaluation_round",
    "evaluation_answer",
    "worker_record",
]

Bind = Engine | Connection


def _units() -> list[Column]:
    return [
        Column("grid_code", Text),
        Column("community_code", Text),
        Column("street_code", Text),
        Column("district_code", Text),
    ]


survey_link = Table(
    "survey_link",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column(
        "incident_id", BigInteger, ForeignKey("incident.id", ondelete="CASCADE"), nullable=False
    ),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("answered_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("created_by", Integer, ForeignKey("account.id", ondelete="SET NULL")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

satisfaction = Table(
    "satisfaction",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column(
        "incident_id",
        BigInteger,
        ForeignKey("incident.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("source", Text, nullable=False),
    Column("solved", Text, nullable=False),
    Column("score", Integer, nullable=False),
    Column("comment", Text),
    Column("answers", Integer, nullable=False, server_default="1"),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    *_units(),
    CheckConstraint("score BETWEEN 1 AND 5", name="satisfaction_score"),
)

follow_up = Table(
    "follow_up",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column(
        "incident_id", BigInteger, ForeignKey("incident.id", ondelete="CASCADE"), nullable=False
    ),
    Column("reason", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True)),
    Column("staff_id", Integer, ForeignKey("account.id", ondelete="SET NULL")),
    Column("reached", Boolean),
    Column("satisfied", Boolean),
    Column("score", Integer),
    Column("note", Text),
    *_units(),
    UniqueConstraint("incident_id", "reason", name="follow_up_incident_reason"),
)

evaluation_round = Table(
    "evaluation_round",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("grid_code", Text, nullable=False),
    Column("community_code", Text),
    Column("street_code", Text),
    Column("district_code", Text),
    Column("label", Text, nullable=False),
    Column("opens_at", DateTime(timezone=True), nullable=False),
    Column("closes_at", DateTime(timezone=True), nullable=False),
    Column("salt", LargeBinary, nullable=False),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("criteria", JSONB, nullable=False),
    Column("worker_ids", ARRAY(Integer)),
    Column("created_by", Integer, ForeignKey("account.id", ondelete="SET NULL")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

evaluation_answer = Table(
    "evaluation_answer",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column(
        "round_id",
        BigInteger,
        ForeignKey("evaluation_round.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("voter_hash", LargeBinary, nullable=False),
    Column("scores", JSONB, nullable=False),
    Column("mean_score", Float, nullable=False),
    Column("comment", Text),
    Column("source", Text, nullable=False),
    Column("entered_by", Integer, ForeignKey("account.id", ondelete="SET NULL")),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("round_id", "voter_hash", name="evaluation_answer_voter"),
)

worker_record = Table(
    "worker_record",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("account_id", Integer, ForeignKey("account.id", ondelete="CASCADE"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("title", Text, nullable=False),
    Column("detail", Text),
    Column("verified", Boolean, nullable=False, server_default=text("false")),
    Column("created_by", Integer, ForeignKey("account.id", ondelete="SET NULL")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

_UNIT_COPY = "grid_code, community_code, street_code, district_code"


def _rows(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(text(sql), params or {}).mappings()]


def _one(conn: Connection, sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
    r = conn.execute(text(sql), params).mappings().first()
    return dict(r) if r is not None else None


def table_exists(conn: Connection, name: str) -> bool:
    """Is there a table ``name`` (the field-work tables of other migrations)?"""
    return bool(conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar())


# --------------------------------------------------------------------------- incidents
def incident_brief(conn: Connection, incident_id: int, *, lock: bool = False) -> dict | None:
    """An incident's workflow fields and units (``FOR UPDATE`` when ``lock``)."""
    return _one(
        conn,
        "SELECT i.id, i.category, i.status, i.reported_at, i.resolved_at, i.closed_at, "
        "i.updated_at, i.reporter_kind, i.reporter_id, i.assignee_id, i.due_at, "
        f"{_UNIT_COPY} FROM incident i WHERE i.id = :i" + (" FOR UPDATE" if lock else ""),
        {"i": int(incident_id)},
    )


def insert_event(
    conn: Connection,
    incident_id: int,
    *,
    at: datetime,
    kind: str,
    note: str | None,
    data: dict[str, Any] | None,
    public: bool,
    actor_id: int | None = None,
) -> int:
    """Append an event (with ``public``) to an incident's history."""
    return int(
        conn.execute(
            text(
                "INSERT INTO incident_event (incident_id, at, actor_id, kind, note, data, public) "
                "VALUES (:i, :at, :a, :k, :n, :d, :p) RETURNING id"
            ).bindparams(bindparam("d", type_=JSONB)),
            {
                "i": int(incident_id),
                "at": at,
                "a": actor_id,
                "k": kind,
                "n": note,
                "d": data,
                "p": public,
            },
        ).scalar_one()
    )


def public_notes(bind: Bind, incident_ids: Sequence[int]) -> dict[int, str]:
    """The latest public note of each incident (incident id → note)."""
    if not incident_ids:
        return {}
    with connection(bind) as conn:
        rows = _rows(
            conn,
            "SELECT DISTINCT ON (incident_id) incident_id, note FROM incident_event "
            "WHERE incident_id = ANY(:ids) AND public AND note IS NOT NULL "
            "ORDER BY incident_id, at DESC, id DESC",
            {"ids": [int(i) for i in incident_ids]},
        )
    return {int(r["incident_id"]): str(r["note"]) for r in rows}


def set_event_public(conn: Connection, incident_id: int, event_id: int, public: bool) -> int:
    """Mark one event of an incident public or internal; the rows changed."""
    return conn.execute(
        text("UPDATE incident_event SET public = :p WHERE id = :e AND incident_id = :i"),
        {"p": public, "e": int(event_id), "i": int(incident_id)},
    ).rowcount


# --------------------------------------------------------------------------- links
def insert_link(
    conn: Connection,
    incident_id: int,
    token_hash: str,
    *,
    expires_at: datetime,
    at: datetime,
    created_by: int | None,
) -> dict[str, Any]:
    """A new link for an incident; its older unanswered links are revoked."""
    conn.execute(
        text(
            "UPDATE survey_link SET revoked_at = :at WHERE incident_id = :i "
            "AND answered_at IS NULL AND revoked_at IS NULL"
        ),
        {"i": int(incident_id), "at": at},
    )
    row = conn.execute(
        survey_link.insert()
        .values(
            incident_id=int(incident_id),
            token_hash=token_hash,
            expires_at=expires_at,
            created_by=created_by,
            created_at=at,
        )
        .returning(survey_link.c.id, survey_link.c.expires_at)
    ).mappings()
    return dict(row.one())


def link_by_hash(conn: Connection, token_hash: str, *, lock: bool = False) -> dict | None:
    """A link with its incident's public fields (category names, status, times, the
    grid's name), or None."""
    return _one(
        conn,
        "SELECT l.id AS link_id, l.incident_id, l.expires_at, l.answered_at, l.revoked_at, "
        "i.category, c.name_zh AS category_zh, c.name_en AS category_en, i.status, "
        "i.reported_at, i.resolved_at, i.closed_at, i.grid_code, "
        "(SELECT u.name FROM unit u WHERE u.version_id = i.version_id "
        " AND u.code = i.grid_code) AS grid_name "
        "FROM survey_link l JOIN incident i ON i.id = l.incident_id "
        "LEFT JOIN category c ON c.code = i.category WHERE l.token_hash = :h"
        + (" FOR UPDATE OF l" if lock else ""),
        {"h": token_hash},
    )


def mark_link_answered(conn: Connection, link_id: int, at: datetime) -> None:
    conn.execute(
        text("UPDATE survey_link SET answered_at = :at WHERE id = :l"),
        {"l": int(link_id), "at": at},
    )


def upsert_satisfaction(
    conn: Connection,
    incident_id: int,
    *,
    source: str,
    solved: str,
    score: int,
    comment: str | None,
    at: datetime,
) -> dict[str, Any]:
    """The incident's current verdict (a later answer replaces an earlier one; ``answers``
    counts them); the units are copied from the incident."""
    return dict(
        conn.execute(
            text(
                "INSERT INTO satisfaction (incident_id, source, solved, score, comment, at, "
                f"{_UNIT_COPY}) SELECT i.id, :src, :sol, :sc, :cm, :at, "
                "i.grid_code, i.community_code, i.street_code, i.district_code "
                "FROM incident i WHERE i.id = :i "
                "ON CONFLICT (incident_id) DO UPDATE SET source = EXCLUDED.source, "
                "solved = EXCLUDED.solved, score = EXCLUDED.score, comment = EXCLUDED.comment, "
                "at = EXCLUDED.at, answers = satisfaction.answers + 1 "
                "RETURNING id, incident_id, source, solved, score, comment, answers, at"
            ),
            {
                "i": int(incident_id),
                "src": source,
                "sol": solved,
                "sc": score,
                "cm": comment,
                "at": at,
            },
        )
        .mappings()
        .one()
    )


def satisfaction_row(bind: Bind, incident_id: int) -> dict[str, Any] | None:
    with connection(bind) as conn:
        return _one(
            conn,
            "SELECT incident_id, source, solved, score, comment, answers, at "
            "FROM satisfaction WHERE incident_id = :i",
            {"i": int(incident_id)},
        )


def satisfaction_by_unit(
    conn: Connection, level_column: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Per unit of a level: answers in ``[start, end)``, the sum of their scores, and how
    many were satisfied (solved yes/partly with a score of 3 or more)."""
    if level_column not in ("grid_code", "community_code", "street_code", "district_code"):
        raise ValueError(level_column)
    return _rows(
        conn,
        f"SELECT {level_column} AS code, count(*) AS n, sum(score) AS score_sum, "
        "count(*) FILTER (WHERE solved <> 'no' AND score >= 3) AS satisfied "
        f"FROM satisfaction WHERE at >= :s AND at < :e AND {level_column} IS NOT NULL "
        f"GROUP BY {level_column}",
        {"s": start, "e": end},
    )


def evaluation_by_unit(
    conn: Connection, level_column: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Per unit of a level: evaluation answers in ``[start, end)`` and the sum of their
    mean scores."""
    if level_column not in ("grid_code", "community_code", "street_code", "district_code"):
        raise ValueError(level_column)
    return _rows(
        conn,
        f"SELECT r.{level_column} AS code, count(*) AS n, sum(a.mean_score) AS score_sum "
        "FROM evaluation_answer a JOIN evaluation_round r ON r.id = a.round_id "
        f"WHERE a.at >= :s AND a.at < :e AND r.{level_column} IS NOT NULL "
        f"GROUP BY r.{level_column}",
        {"s": start, "e": end},
    )


# --------------------------------------------------------------------------- follow-ups
def insert_follow_up(
    conn: Connection, incident_id: int, reason: str, *, due_at: datetime, at: datetime
) -> int | None:
    """Queue a follow-up (none when the incident already has one for this reason)."""
    return conn.execute(
        text(
            f"INSERT INTO follow_up (incident_id, reason, created_at, due_at, {_UNIT_COPY}) "
            "SELECT i.id, :r, :at, :due, i.grid_code, i.community_code, i.street_code, "
            "i.district_code FROM incident i WHERE i.id = :i "
            "ON CONFLICT (incident_id, reason) DO NOTHING RETURNING id"
        ),
        {"i": int(incident_id), "r": reason, "at": at, "due": due_at},
    ).scalar()


def closed_unqueued(conn: Connection, since: datetime) -> list[dict[str, Any]]:
    """Closed incidents (closed since ``since``) with no follow-up yet: id, category."""
    return _rows(
        conn,
        "SELECT i.id, i.category FROM incident i WHERE i.status = 'closed' "
        "AND i.closed_at >= :s AND NOT EXISTS "
        "(SELECT 1 FROM follow_up f WHERE f.incident_id = i.id) ORDER BY i.id",
        {"s": since},
    )


_FOLLOW_UP_SELECT = (
    "SELECT f.id, f.incident_id, f.reason, f.created_at, f.due_at, f.done_at, f.staff_id, "
    "f.reached, f.satisfied, f.score, f.note, f.grid_code, f.community_code, f.street_code, "
    "f.district_code, i.category, i.status, i.reporter_kind, i.assignee_id, i.resolved_at, "
    "i.closed_at, s.solved AS resident_solved, s.score AS resident_score, "
    "s.comment AS resident_comment FROM follow_up f JOIN incident i ON i.id = f.incident_id "
    "LEFT JOIN satisfaction s ON s.incident_id = f.incident_id "
)


def follow_up_rows(
    bind: Bind, *, scope: Scope, done: bool | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    """The queue inside ``scope``: open first (oldest due first), then done."""
    cond, params = scope_condition(scope, "f", personal=True)
    where = [cond]
    if done is True:
        where.append("f.done_at IS NOT NULL")
    elif done is False:
        where.append("f.done_at IS NULL")
    with connection(bind) as conn:
        return _rows(
            conn,
            _FOLLOW_UP_SELECT + "WHERE " + " AND ".join(where) + " ORDER BY (f.done_at IS NOT "
            "NULL), f.due_at, f.id LIMIT :lim OFFSET :off",
            {**params, "lim": int(limit), "off": int(offset)},
        )


def follow_ups_of(conn: Connection, incident_id: int) -> list[dict[str, Any]]:
    return _rows(
        conn,
        _FOLLOW_UP_SELECT + "WHERE f.incident_id = :i ORDER BY f.id",
        {"i": int(incident_id)},
    )


def lock_follow_up(conn: Connection, follow_up_id: int, scope: Scope) -> dict[str, Any] | None:
    cond, params = scope_condition(scope, "f", personal=True)
    return _one(
        conn,
        _FOLLOW_UP_SELECT + f"WHERE f.id = :f AND {cond} FOR UPDATE OF f",
        {**params, "f": int(follow_up_id)},
    )


def finish_follow_up(
    conn: Connection,
    follow_up_id: int,
    *,
    staff_id: int | None,
    reached: bool,
    satisfied: bool | None,
    score: int | None,
    note: str | None,
    at: datetime,
) -> None:
    conn.execute(
        text(
            "UPDATE follow_up SET done_at = :at, staff_id = :st, reached = :r, satisfied = :s, "
            "score = :sc, note = :n WHERE id = :f"
        ),
        {
            "f": int(follow_up_id),
            "at": at,
            "st": staff_id,
            "r": reached,
            "s": satisfied,
            "sc": score,
            "n": note,
        },
    )


# --------------------------------------------------------------------------- evaluation
def grid_workers(conn: Connection, grid_code: str) -> list[int]:
    """Active workers serving a grid now."""
    return [
        int(r)
        for r in conn.execute(
            text(
                "SELECT a.id FROM account a JOIN account_unit au ON au.account_id = a.id "
                "WHERE a.role = 'worker' AND a.active AND au.unit_code = :g ORDER BY a.id"
            ),
            {"g": grid_code},
        ).scalars()
    ]


def grid_exists(conn: Connection, grid_code: str) -> bool:
    return bool(
        conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM unit u JOIN boundary_version v ON v.id = "
                "u.version_id WHERE v.status = 'published' AND u.level = 'grid' AND u.code = :g)"
            ),
            {"g": grid_code},
        ).scalar()
    )


def insert_round(conn: Connection, values: dict[str, Any]) -> int:
    return int(
        conn.execute(
            evaluation_round.insert().values(**values).returning(evaluation_round.c.id)
        ).scalar_one()
    )


_ROUND_SELECT = (
    "SELECT r.id, r.grid_code, r.community_code, r.street_code, r.district_code, r.label, "
    "r.opens_at, r.closes_at, r.criteria, r.worker_ids, r.created_by, r.created_at, "
    "(SELECT u.name FROM unit u JOIN boundary_version v ON v.id = u.version_id "
    " WHERE v.status = 'published' AND u.code = r.grid_code) AS grid_name, "
    "(SELECT count(*) FROM evaluation_answer a WHERE a.round_id = r.id) AS answers, "
    "(SELECT avg(a.mean_score) FROM evaluation_answer a WHERE a.round_id = r.id) AS mean_score "
    "FROM evaluation_round r "
)


def round_by_hash(conn: Connection, token_hash: str) -> dict[str, Any] | None:
    row = _one(conn, _ROUND_SELECT + "WHERE r.token_hash = :h", {"h": token_hash})
    if row is not None:
        row["salt"] = conn.execute(
            text("SELECT salt FROM evaluation_round WHERE id = :r"), {"r": row["id"]}
        ).scalar_one()
    return row


def round_row(conn: Connection, round_id: int, scope: Scope) -> dict[str, Any] | None:
    cond, params = scope_condition(scope, "r", personal=True)
    row = _one(conn, _ROUND_SELECT + f"WHERE r.id = :r AND {cond}", {**params, "r": int(round_id)})
    if row is not None:
        row["salt"] = conn.execute(
            text("SELECT salt FROM evaluation_round WHERE id = :r"), {"r": row["id"]}
        ).scalar_one()
    return row


def round_rows(bind: Bind, *, scope: Scope, grid_code: str | None = None) -> list[dict]:
    cond, params = scope_condition(scope, "r", personal=True)
    extra = " AND r.grid_code = :g" if grid_code else ""
    with connection(bind) as conn:
        return _rows(
            conn,
            _ROUND_SELECT + f"WHERE {cond}{extra} ORDER BY r.opens_at DESC, r.id DESC",
            {**params, "g": grid_code},
        )


def criterion_means(conn: Connection, round_id: int) -> dict[str, float]:
    """The mean of each criterion's scores in a round."""
    rows = _rows(
        conn,
        "SELECT k AS code, avg(v::numeric)::float AS mean FROM evaluation_answer a, "
        "jsonb_each_text(a.scores) AS s(k, v) WHERE a.round_id = :r GROUP BY k",
        {"r": int(round_id)},
    )
    return {r["code"]: float(r["mean"]) for r in rows}


def insert_answer(conn: Connection, values: dict[str, Any]) -> int | None:
    """The answer's id, or None when this voter has answered the round already."""
    return conn.execute(
        text(
            "INSERT INTO evaluation_answer (round_id, voter_hash, scores, mean_score, comment, "
            "source, entered_by, at) VALUES (:round_id, :voter_hash, :scores, :mean_score, "
            ":comment, :source, :entered_by, :at) "
            "ON CONFLICT (round_id, voter_hash) DO NOTHING RETURNING id"
        ).bindparams(bindparam("scores", type_=JSONB)),
        values,
    ).scalar()


# --------------------------------------------------------------------------- workers
def worker_rows(bind: Bind) -> list[dict[str, Any]]:
    """Every worker account with its grids (codes, a list) — filtering by the caller's
    units is the service's (a worker's managers are the admins above their grids)."""
    with connection(bind) as conn:
        return _rows(
            conn,
            "SELECT a.id, a.ref, a.name, a.role, a.active, a.created_at, "
            "coalesce(array_agg(au.unit_code ORDER BY au.unit_code) "
            "FILTER (WHERE au.unit_code IS NOT NULL), '{}') AS grids "
            "FROM account a LEFT JOIN account_unit au ON au.account_id = a.id "
            "WHERE a.role = 'worker' GROUP BY a.id ORDER BY a.id",
        )


def unit_names(conn: Connection, codes: Sequence[str]) -> dict[str, str]:
    """Names of units of the published version."""
    if not codes:
        return {}
    rows = _rows(
        conn,
        "SELECT u.code, u.name FROM unit u JOIN boundary_version v ON v.id = u.version_id "
        "WHERE v.status = 'published' AND u.code = ANY(:c)",
        {"c": list(codes)},
    )
    return {r["code"]: r["name"] for r in rows}


def staffing_history(conn: Connection, account_id: int) -> list[dict[str, Any]]:
    """The plan staffing decisions naming a worker, with their plans' publish times."""
    return _rows(
        conn,
        "SELECT s.action, s.grid_code, s.decided_at, p.id AS plan_id, p.name AS plan_name, "
        "p.status AS plan_status, v.published_at FROM plan_staffing s JOIN plan p ON "
        "p.id = s.plan_id LEFT JOIN boundary_version v ON v.id = p.published_version_id "
        "WHERE s.account_id = :a ORDER BY coalesce(v.published_at, s.decided_at), s.id",
        {"a": int(account_id)},
    )


def teams_of(conn: Connection, account_id: int) -> list[dict[str, Any]]:
    """The worker's teams (issue 13's ``team`` tables, when they exist): name, role,
    since, and the team's grids."""
    if not (table_exists(conn, "team") and table_exists(conn, "team_member")):
        return []
    return _rows(
        conn,
        "SELECT t.id, t.name, t.community_code, m.role, m.added_at, "
        "coalesce((SELECT array_agg(g.grid_code ORDER BY g.grid_code) FROM team_grid g "
        " WHERE g.team_id = t.id), '{}') AS grids "
        "FROM team_member m JOIN team t ON t.id = m.team_id WHERE m.account_id = :a "
        "ORDER BY m.added_at, t.id",
        {"a": int(account_id)},
    )


def incident_counts(
    conn: Connection, account_ids: Sequence[int], start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Per worker and window: incidents reported by them; handled (assigned to them and
    resolved in the window); of those, resolved by their due time."""
    return _rows(
        conn,
        "WITH w AS (SELECT unnest(CAST(:ids AS int[])) AS id) "
        "SELECT w.id AS account_id, "
        "(SELECT count(*) FROM incident i WHERE i.reporter_id = w.id "
        " AND i.reported_at >= :s AND i.reported_at < :e) AS reported, "
        "(SELECT count(*) FROM incident i WHERE i.assignee_id = w.id "
        " AND i.status IN ('resolved', 'closed') AND i.resolved_at >= :s "
        " AND i.resolved_at < :e) AS handled, "
        "(SELECT count(*) FROM incident i WHERE i.assignee_id = w.id "
        " AND i.status IN ('resolved', 'closed') AND i.resolved_at >= :s "
        " AND i.resolved_at < :e AND i.resolved_at <= i.due_at) AS on_time "
        "FROM w ORDER BY w.id",
        {"ids": [int(a) for a in account_ids], "s": start, "e": end},
    )


def satisfaction_of_workers(
    conn: Connection, account_ids: Sequence[int], start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Per worker: satisfaction answers (given in the window) on incidents assigned to
    them — count, sum of scores, satisfied."""
    return _rows(
        conn,
        "SELECT i.assignee_id AS account_id, count(*) AS n, sum(s.score) AS score_sum, "
        "count(*) FILTER (WHERE s.solved <> 'no' AND s.score >= 3) AS satisfied "
        "FROM satisfaction s JOIN incident i ON i.id = s.incident_id "
        "WHERE i.assignee_id = ANY(:ids) AND s.at >= :s AND s.at < :e GROUP BY i.assignee_id",
        {"ids": [int(a) for a in account_ids], "s": start, "e": end},
    )


def satisfaction_list(
    conn: Connection, account_id: int, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """The satisfaction answers on a worker's incidents in the window."""
    return _rows(
        conn,
        "SELECT s.incident_id, i.category, s.source, s.solved, s.score, s.comment, s.at "
        "FROM satisfaction s JOIN incident i ON i.id = s.incident_id "
        "WHERE i.assignee_id = :a AND s.at >= :s AND s.at < :e ORDER BY s.at",
        {"a": int(account_id), "s": start, "e": end},
    )


def evaluation_of_workers(
    conn: Connection, account_ids: Sequence[int], start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Per worker: answers of rounds naming them (``worker_ids``), given in the window —
    count and sum of the answers' mean scores."""
    return _rows(
        conn,
        "SELECT w AS account_id, count(*) AS n, sum(a.mean_score) AS score_sum "
        "FROM evaluation_round r CROSS JOIN LATERAL unnest(r.worker_ids) AS w "
        "JOIN evaluation_answer a ON a.round_id = r.id "
        "WHERE w = ANY(:ids) AND a.at >= :s AND a.at < :e GROUP BY w",
        {"ids": [int(a) for a in account_ids], "s": start, "e": end},
    )


def rounds_of_worker(conn: Connection, account_id: int) -> list[dict[str, Any]]:
    return _rows(
        conn,
        _ROUND_SELECT + "WHERE :a = ANY(r.worker_ids) ORDER BY r.opens_at",
        {"a": int(account_id)},
    )


def service_entries_of_workers(
    conn: Connection, account_ids: Sequence[int], start_day: Any, end_day: Any
) -> dict[int, int]:
    """Per worker: service register entries on days in ``[start_day, end_day)``."""
    if not table_exists(conn, "service_entry"):
        return {}
    rows = _rows(
        conn,
        "SELECT account_id, count(*) AS n FROM service_entry WHERE account_id = ANY(:ids) "
        "AND day >= :s AND day < :e GROUP BY account_id",
        {"ids": [int(a) for a in account_ids], "s": start_day, "e": end_day},
    )
    return {int(r["account_id"]): int(r["n"]) for r in rows}


def patrol_coverage_of_workers(
    conn: Connection, account_ids: Sequence[int], start: datetime, end: datetime
) -> dict[int, tuple[int, float]]:
    """Per worker: (patrol × grid rows, mean coverage) of patrols started in the window."""
    if not (table_exists(conn, "patrol") and table_exists(conn, "patrol_grid")):
        return {}
    rows = _rows(
        conn,
        "SELECT p.account_id, count(*) AS n, avg(g.coverage) AS coverage FROM patrol p "
        "JOIN patrol_grid g ON g.patrol_id = p.id WHERE p.account_id = ANY(:ids) "
        "AND p.started_at >= :s AND p.started_at < :e GROUP BY p.account_id",
        {"ids": [int(a) for a in account_ids], "s": start, "e": end},
    )
    return {int(r["account_id"]): (int(r["n"]), float(r["coverage"])) for r in rows}


def complaints_of_workers(
    conn: Connection, account_ids: Sequence[int], start: datetime, end: datetime
) -> dict[int, int]:
    """Per worker: verified complaints (``worker_record``) dated in the window."""
    rows = _rows(
        conn,
        "SELECT account_id, count(*) AS n FROM worker_record WHERE account_id = ANY(:ids) "
        "AND kind = 'complaint' AND verified AND at >= :s AND at < :e GROUP BY account_id",
        {"ids": [int(a) for a in account_ids], "s": start, "e": end},
    )
    return {int(r["account_id"]): int(r["n"]) for r in rows}


def insert_record(conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
    return dict(
        conn.execute(
            worker_record.insert()
            .values(**values)
            .returning(
                worker_record.c.id,
                worker_record.c.account_id,
                worker_record.c.kind,
                worker_record.c.at,
                worker_record.c.title,
                worker_record.c.detail,
                worker_record.c.verified,
                worker_record.c.created_at,
            )
        )
        .mappings()
        .one()
    )


def records_of(conn: Connection, account_id: int) -> list[dict[str, Any]]:
    return _rows(
        conn,
        "SELECT id, account_id, kind, at, title, detail, verified, created_at "
        "FROM worker_record WHERE account_id = :a ORDER BY at, id",
        {"a": int(account_id)},
    )


def grid_load_parts(conn: Connection, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per grid of the published version: effort-weighted incidents reported in the
    window, households and area (the load index's inputs)."""
    return _rows(
        conn,
        "SELECT u.code, u.households, u.area_m2, "
        "coalesce((SELECT sum(c.effort) FROM incident i JOIN category c ON c.code = "
        " i.category WHERE i.grid_code = u.code AND i.reported_at >= :s "
        " AND i.reported_at < :e), 0)::float AS effort "
        "FROM unit u JOIN boundary_version v ON v.id = u.version_id "
        "WHERE v.status = 'published' AND u.level = 'grid' ORDER BY u.code",
        {"s": start, "e": end},
    )
