"""The SQL of notifications: deriving the missing ``notification`` rows from the
incidents and their events, reading an account's notifications, and the outbound
``notification_delivery`` queue (revision 0012).

Derivation is one ``INSERT … SELECT … ON CONFLICT DO NOTHING`` over the recipients of
every open incident (or of one account's), so running it twice inserts nothing the
second time (``UNIQUE(account_id, kind, incident_id)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)

from geogrid.store.engine import connection
from geogrid.store.sync import OPEN_CONDITION
from geogrid.store.tables import metadata

__all__ = [
    "notification",
    "notification_delivery",
    "Changed",
    "Sweep",
    "insert_missing",
    "last_sweep",
    "snapshot_xmin",
    "recipients_digest",
    "record_sweep",
    "notification_rows",
    "mark_read",
    "queue_deliveries",
    "claim_deliveries",
    "finish_delivery",
    "delivery_rows",
]

notification = Table(
    "notification",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("account_id", Integer, ForeignKey("account.id", ondelete="CASCADE"), nullable=False),
    Column("kind", Text, nullable=False),
    Column(
        "incident_id", BigInteger, ForeignKey("incident.id", ondelete="CASCADE"), nullable=False
    ),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("read_at", DateTime(timezone=True)),
    UniqueConstraint("account_id", "kind", "incident_id", name="notification_once"),
    CheckConstraint(
        "kind IN ('assigned', 'due_soon', 'overdue', 'escalated')", name="notification_kind"
    ),
)
Index("notification_account_created", notification.c.account_id, notification.c.created_at)
notification_delivery = Table(
    "notification_delivery",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column(
        "notification_id",
        BigInteger,
        ForeignKey("notification.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("channel", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("sent_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("notification_id", "channel", name="notification_delivery_once"),
    CheckConstraint("status IN ('pending', 'sent', 'failed')", name="delivery_status"),
)

Bind = Engine | Connection


#: the incidents a city-wide run looks at when it goes on from the last one
#: (:class:`Changed`): open, and written by a transaction the last run could not see, or
#: due between the last run's time and the end of this run's due-soon window (the only
#: ones whose overdue or due-soon notice may have come due since)
_CHANGED_INCIDENTS = (
    "SELECT i.id, i.assignee_id, i.assigned_unit, i.assigned_level, i.grid_code, i.status, "
    f"i.due_at FROM incident i WHERE {OPEN_CONDITION} AND "
    "(age(i.xmin) <= age(xid(CAST(:xmin AS xid8))) OR i.due_at BETWEEN :due_since AND :soon)"
)
#: a digest of who receives what: the active accounts' units and the teams' grids
_RECIPIENTS_DIGEST = (
    "SELECT md5(concat_ws('|', (SELECT string_agg(au.account_id || ':' || au.unit_code, ',' "
    "ORDER BY au.account_id, au.unit_code) FROM account_unit au JOIN account a ON "
    "a.id = au.account_id AND a.active), (SELECT string_agg(tm.account_id || ':' || "
    "tg.grid_code, ',' ORDER BY tm.account_id, tg.grid_code) FROM team_member tm JOIN "
    "team_grid tg ON tg.team_id = tm.team_id)))"
)


@dataclass(frozen=True)
class Sweep:
    """The last city-wide derivation (table ``notification_sweep``, revision 0023)."""

    #: the ``now`` it derived for
    swept_at: datetime
    #: the oldest transaction running when it started (``pg_snapshot_xmin``): every write
    #: of an older transaction was visible to it
    since_xmin: int
    #: :func:`recipients_digest` when it ran
    recipients: str
    #: the ``now`` of the last full run
    full_at: datetime


@dataclass(frozen=True)
class Changed:
    """What a run going on from a :class:`Sweep` looks at: incidents written by
    transactions from ``since_xmin`` on, or due from ``due_since`` to the end of the run's
    due-soon window."""

    since_xmin: int
    due_since: datetime


def last_sweep(conn: Connection) -> Sweep | None:
    """The last city-wide run, or None (none yet)."""
    row = conn.execute(
        text(
            "SELECT swept_at, since_xmin::text, recipients, full_at FROM notification_sweep "
            "WHERE id = 1"
        )
    ).first()
    return None if row is None else Sweep(row[0], int(row[1]), row[2], row[3])


def snapshot_xmin(conn: Connection) -> int:
    """The oldest transaction still running now (every older one has ended)."""
    return int(conn.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")).one()[0])


def recipients_digest(conn: Connection) -> str:
    """A digest of who receives what (the active accounts' units, the teams' grids): a
    notice owed to an account depends on nothing else of the accounts and teams."""
    return str(conn.execute(text(_RECIPIENTS_DIGEST)).scalar_one())


def record_sweep(conn: Connection, sweep: Sweep) -> None:
    """Store ``sweep`` as the last city-wide run (in the run's transaction)."""
    conn.execute(
        text(
            "INSERT INTO notification_sweep (id, swept_at, since_xmin, recipients, full_at) "
            "VALUES (1, :at, CAST(:xmin AS xid8), :who, :full) ON CONFLICT (id) DO UPDATE "
            "SET swept_at = EXCLUDED.swept_at, since_xmin = EXCLUDED.since_xmin, "
            "recipients = EXCLUDED.recipients, full_at = EXCLUDED.full_at"
        ),
        {
            "at": sweep.swept_at,
            "xmin": str(sweep.since_xmin),
            "who": sweep.recipients,
            "full": sweep.full_at,
        },
    )


def _recipients(one_account: bool, source: str = "incident") -> str:
    """(incident_id, account_id, why) of every open incident's recipients: ``task`` for
    the assignee, the accounts of the assigned unit and the members of teams covering the
    assigned grid; ``handed_up`` for the accounts and team members of the incident's grid
    when it is assigned above the grid. ``one_account``: only the account ``:me``.
    ``source``: the table or CTE of incidents (``incident``, or the changed ones)."""
    me = "AND {col} = :me" if one_account else ""
    au = me.format(col="au.account_id")
    tm = me.format(col="tm.account_id")
    assignee = "AND i.assignee_id = :me" if one_account else "AND i.assignee_id IS NOT NULL"
    return (
        f"SELECT i.id AS incident_id, i.assignee_id AS account_id, 'task' AS why "
        f"FROM {source} i WHERE {OPEN_CONDITION} {assignee} "
        "UNION SELECT i.id, au.account_id, 'task' FROM account_unit au JOIN account a ON "
        f"a.id = au.account_id AND a.active JOIN {source} i ON i.assigned_unit = au.unit_code "
        f"AND {OPEN_CONDITION} WHERE TRUE {au} "
        "UNION SELECT i.id, tm.account_id, 'task' FROM team_member tm JOIN team_grid tg ON "
        f"tg.team_id = tm.team_id JOIN {source} i ON i.assigned_unit = tg.grid_code AND "
        f"i.assigned_level = 'grid' AND {OPEN_CONDITION} WHERE TRUE {tm} "
        "UNION SELECT i.id, au.account_id, 'handed_up' FROM account_unit au JOIN account a ON "
        f"a.id = au.account_id AND a.active JOIN {source} i ON i.grid_code = au.unit_code AND "
        f"i.assigned_level <> 'grid' AND {OPEN_CONDITION} WHERE TRUE {au} "
        "UNION SELECT i.id, tm.account_id, 'handed_up' FROM team_member tm JOIN team_grid tg "
        f"ON tg.team_id = tm.team_id JOIN {source} i ON i.grid_code = tg.grid_code AND "
        f"i.assigned_level <> 'grid' AND {OPEN_CONDITION} WHERE TRUE {tm}"
    )


def insert_missing(
    conn: Connection,
    *,
    now: datetime,
    due_soon_until: datetime,
    escalate_kind: str,
    account_id: int | None = None,
    changed: Changed | None = None,
) -> list[int]:
    """Insert the notifications the incidents call for at ``now`` and are not there yet;
    the ids inserted.

    For each recipient of an open incident: ``assigned`` (a task, never escalated),
    ``escalated`` (an ``escalate_kind`` event exists: to the task's recipients and to the
    grid's people it was handed up from), ``overdue`` (a task past ``due_at``),
    ``due_soon`` (a task due between ``now`` and ``due_soon_until``).
    ``account_id``: derive only that account's. ``changed``: look only at the incidents
    written or coming due since the last city-wide run (the recipients unchanged), not at
    every open incident.
    """
    params: dict[str, Any] = {"now": now, "soon": due_soon_until, "esc": escalate_kind}
    if account_id is not None:
        params["me"] = int(account_id)
    source, head = "incident", ""
    if changed is not None:
        # issue 10: the changed incidents, once, before the five joins of the recipients
        source, head = "cand", f"cand AS MATERIALIZED ({_CHANGED_INCIDENTS}), "
        params |= {"xmin": str(changed.since_xmin), "due_since": changed.due_since}
    sql = (
        f"WITH {head}r AS ({_recipients(account_id is not None, source)}), x AS (SELECT "
        "r.incident_id, r.account_id, r.why, i.due_at, EXISTS (SELECT 1 FROM incident_event e "
        "WHERE e.incident_id = i.id AND e.kind = :esc) AS escalated FROM r JOIN "
        f"{source} i ON i.id = r.incident_id) "
        "INSERT INTO notification (account_id, kind, incident_id, created_at) "
        "SELECT x.account_id, k.kind, x.incident_id, :now FROM x CROSS JOIN LATERAL (VALUES "
        "(CASE WHEN x.why = 'task' AND NOT x.escalated THEN 'assigned' END), "
        "(CASE WHEN x.escalated THEN 'escalated' END), "
        "(CASE WHEN x.why = 'task' AND x.due_at < :now THEN 'overdue' END), "
        "(CASE WHEN x.why = 'task' AND x.due_at >= :now AND x.due_at <= :soon "
        "THEN 'due_soon' END)) AS k(kind) WHERE k.kind IS NOT NULL "
        "ORDER BY x.incident_id, x.account_id "
        "ON CONFLICT ON CONSTRAINT notification_once DO NOTHING RETURNING id"
    )
    return [int(r[0]) for r in conn.execute(text(sql), params).all()]


_SELECT = (
    "SELECT n.id, n.kind, n.incident_id, n.account_id, n.created_at, n.read_at, "
    "i.category, c.name_zh AS category_name_zh, c.name_en AS category_name_en, i.status, "
    "i.due_at, i.updated_at, i.assigned_level, i.assigned_unit, i.grid_code "
    "FROM notification n JOIN incident i ON i.id = n.incident_id "
    "JOIN category c ON c.code = i.category "
)


def notification_rows(
    bind: Bind,
    account_id: int,
    *,
    since: datetime | None = None,
    unread_only: bool = False,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """The account's newest ``limit`` notifications created after ``since``, returned
    oldest first, with a summary of their incident (no personal field)."""
    cond = ["n.account_id = :me"]
    params: dict[str, Any] = {"me": int(account_id), "limit": int(limit)}
    if since is not None:
        cond.append("n.created_at > :since")
        params["since"] = since
    if unread_only:
        cond.append("n.read_at IS NULL")
    with connection(bind) as c:
        rows = (
            c.execute(
                text(
                    _SELECT + "WHERE " + " AND ".join(cond) + " ORDER BY n.created_at DESC, "
                    "n.id DESC LIMIT :limit"
                ),
                params,
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in reversed(rows)]


def mark_read(
    conn: Connection, notification_id: int, account_id: int, at: datetime
) -> dict[str, Any] | None:
    """Mark the account's notification read (kept when already read); None when the
    account has no such notification."""
    conn.execute(
        text(
            "UPDATE notification SET read_at = COALESCE(read_at, :at) WHERE id = :id "
            "AND account_id = :me"
        ),
        {"id": int(notification_id), "me": int(account_id), "at": at},
    )
    row = (
        conn.execute(
            text(_SELECT + "WHERE n.id = :id AND n.account_id = :me"),
            {"id": int(notification_id), "me": int(account_id)},
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def queue_deliveries(
    conn: Connection, notification_ids: Sequence[int], channels: Sequence[str], now: datetime
) -> int:
    """One pending delivery per notification and channel (existing ones kept)."""
    if not notification_ids or not channels:
        return 0
    res = conn.execute(
        text(
            "INSERT INTO notification_delivery (notification_id, channel, next_attempt_at) "
            "SELECT n, ch, CAST(:now AS timestamptz) FROM unnest(CAST(:ids AS bigint[])) n CROSS JOIN "
            "unnest(CAST(:chs AS text[])) ch ON CONFLICT ON CONSTRAINT "
            "notification_delivery_once DO NOTHING"
        ),
        {"ids": [int(i) for i in notification_ids], "chs": list(channels), "now": now},
    )
    return int(res.rowcount or 0)


def claim_deliveries(
    conn: Connection,
    *,
    channels: Sequence[str],
    now: datetime,
    lease_until: datetime,
    limit: int,
) -> list[dict[str, Any]]:
    """Pending deliveries due at ``now`` on ``channels``, with their notification and its
    incident's summary; their ``next_attempt_at`` moves to ``lease_until`` so another
    worker does not take them meanwhile (``FOR UPDATE SKIP LOCKED``)."""
    if not channels:
        return []
    rows = (
        conn.execute(
            text(
                "WITH d AS (SELECT d.id FROM notification_delivery d WHERE d.status = 'pending' "
                "AND d.channel = ANY(:chs) AND (d.next_attempt_at IS NULL OR "
                "d.next_attempt_at <= :now) ORDER BY d.id LIMIT :limit FOR UPDATE SKIP LOCKED) "
                "UPDATE notification_delivery nd SET next_attempt_at = :lease FROM d "
                "WHERE nd.id = d.id RETURNING nd.id, nd.notification_id, nd.channel, nd.attempts"
            ),
            {"chs": list(channels), "now": now, "lease": lease_until, "limit": int(limit)},
        )
        .mappings()
        .all()
    )
    if not rows:
        return []
    ids = [int(r["notification_id"]) for r in rows]
    notes = {
        int(n["id"]): dict(n)
        for n in conn.execute(text(_SELECT + "WHERE n.id = ANY(:ids)"), {"ids": ids})
        .mappings()
        .all()
    }
    out = []
    for r in sorted(rows, key=lambda r: int(r["id"])):
        n = notes.get(int(r["notification_id"]))
        if n is not None:
            out.append({**dict(r), "notification": n})
    return out


def finish_delivery(
    conn: Connection,
    delivery_id: int,
    *,
    status: str,
    attempts: int,
    last_error: str | None,
    sent_at: datetime | None,
    next_attempt_at: datetime | None,
) -> None:
    """Record the result of a delivery's attempts."""
    conn.execute(
        text(
            "UPDATE notification_delivery SET status = :st, attempts = :n, last_error = :err, "
            "sent_at = :sent, next_attempt_at = :next WHERE id = :id"
        ),
        {
            "id": int(delivery_id),
            "st": status,
            "n": int(attempts),
            "err": last_error,
            "sent": sent_at,
            "next": next_attempt_at,
        },
    )


def delivery_rows(
    bind: Bind, notification_ids: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """Deliveries (of ``notification_ids``, or all), by id."""
    cond, params = "TRUE", {}
    if notification_ids is not None:
        cond, params = "notification_id = ANY(:ids)", {"ids": [int(i) for i in notification_ids]}
    with connection(bind) as c:
        rows = (
            c.execute(
                text(
                    "SELECT id, notification_id, channel, status, attempts, last_error, "
                    f"next_attempt_at, sent_at, created_at FROM notification_delivery WHERE {cond} "
                    "ORDER BY id"
                ),
                params,
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]
