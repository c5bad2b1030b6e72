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

__all__ = [
    "AUDIT_COLUMNS",
    "INSERT_COLUMNS",
    "INSERT_VALUES",
    "audit_params",
    "insert_audit",
    "audit_rows",
]

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


#: the columns one recorded action writes, and their values as bound parameters
#: (:func:`audit_params` names them): :func:`insert_audit`, and statements that write an
#: action's audit row together with the action (the report path, issue 10)
INSERT_COLUMNS = (
    "actor_id, actor_role, action, resource, resource_ids, fields, ip, user_agent, detail"
)
INSERT_VALUES = (
    "CAST(:_audit_a AS integer), CAST(:_audit_r AS text), CAST(:_audit_action AS text), "
    "CAST(:_audit_res AS text), CAST(:_audit_ids AS text[]), CAST(:_audit_fields AS text[]), "
    "CAST(:_audit_ip AS text), CAST(:_audit_ua AS text), CAST(:_audit_d AS jsonb)"
)


def audit_params(
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
) -> dict[str, Any]:
    """The bound parameters of :data:`INSERT_VALUES` for one audit row."""
    return {
        "_audit_a": actor_id,
        "_audit_r": actor_role,
        "_audit_action": action,
        "_audit_res": resource,
        "_audit_ids": list(resource_ids) if resource_ids is not None else None,
        "_audit_fields": list(fields) if fields is not None else None,
        "_audit_ip": ip,
        "_audit_ua": user_agent,
        "_audit_d": json.dumps(dict(detail), ensure_ascii=False, default=str) if detail else None,
    }


def insert_audit(conn: Connection, row: Mapping[str, Any]) -> None:
    """Append one audit row inside the caller's transaction (``at`` is the clock time);
    ``row`` is :func:`audit_params`' answer."""
    conn.execute(
        text(f"INSERT INTO audit_log ({INSERT_COLUMNS}) VALUES ({INSERT_VALUES})"), dict(row)
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
