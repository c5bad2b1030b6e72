"""The SQL of the audit trail (``audit_log``, revision 0006): one INSERT per recorded
action, and the admins' filtered, paged read. Rows are never updated or deleted (a trigger
refuses it)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from geogrid.store.engine import connection

__all__ = ["AUDIT_COLUMNS", "insert_audit", "audit_rows"]

#: columns of the rows :func:`audit_rows` returns
AUDIT_COLUMNS = (
    "id",
    "at",
    "actor_id",
    "actor_role",
    "action",
    "resource",
    "resource_ids",
    "fields",
    "ip",
    "user_agent",
    "detail",
)


def insert_audit(
    conn: Connection,
    *,
    actor_id: int | None,
    actor_role: str | None,
    action: str,
    resource: str,
    resource_ids: Sequence[str] | None,
    fields: Sequence[str] | None,
    ip: str | None,
    user_agent: str | None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append one audit row inside the caller's transaction (``at`` is the clock time)."""
    conn.execute(
        text(
            "INSERT INTO audit_log (actor_id, actor_role, action, resource, resource_ids, "
            "fields, ip, user_agent, detail) VALUES (:a, :r, :action, :res, "
            "CAST(:ids AS text[]), CAST(:fields AS text[]), :ip, :ua, CAST(:d AS jsonb))"
        ),
        {
            "a": actor_id,
            "r": actor_role,
            "action": action,
            "res": resource,
            "ids": list(resource_ids) if resource_ids is not None else None,
            "fields": list(fields) if fields is not None else None,
            "ip": ip,
            "ua": user_agent,
            "d": json.dumps(dict(detail), ensure_ascii=False, default=str) if detail else None,
        },
    )


def audit_rows(
    bind: Engine | Connection,
    *,
    actor_id: int | None = None,
    resource: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Audit rows matching every filter given (``since <= at < until``), newest first."""
    cond: list[str] = []
    params: dict[str, Any] = {"limit": int(limit), "offset": int(offset)}
    if actor_id is not None:
        cond.append("actor_id = :actor")
        params["actor"] = int(actor_id)
    if resource is not None:
        cond.append("resource = :resource")
        params["resource"] = resource
    if action is not None:
        cond.append("action = :action")
        params["action"] = action
    if since is not None:
        cond.append("at >= :since")
        params["since"] = since
    if until is not None:
        cond.append("at < :until")
        params["until"] = until
    where = ("WHERE " + " AND ".join(cond) + " ") if cond else ""
    with connection(bind) as c:
        rows = (
            c.execute(
                text(
                    f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_log {where}"
                    "ORDER BY at DESC, id DESC LIMIT :limit OFFSET :offset"
                ),
                params,
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]
