"""The audit trail: every write and every clear read of personal fields (who, role, what
resource and ids, which fields, when, from which IP and user agent), and the admins' read.

How it stays out of the write path's way
----------------------------------------
A row is written **in the transaction of the action it records**, with one INSERT per
request: a list read of 1,000 incidents is one row listing the ids, not 1,000 rows. So an
action and its audit row commit or roll back together (a crash cannot leave a write
without its trail, nor a trail of a write that never happened), and the cost is one
small INSERT into a table with two b-tree indexes (``at``; ``actor_id, at``) and no
foreign keys. A buffered background writer (a bounded queue flushed by a thread) was
rejected: it is faster only by that INSERT, loses the rows queued when the process dies,
and must drop or block when the queue is full — an audit trail that may silently miss
rows is not one. ``at`` is ``clock_timestamp()``, the moment of the INSERT.

Who and from where: the acting :class:`~geogrid.core.scope.Scope` (role and account id)
is passed by the caller; the IP and user agent of the HTTP request are bound per request
with :func:`bind_client` (the API does it in a dependency) and read from a context
variable, so the services need no web framework types. Without a bound client (the CLI),
``ip`` is ``None`` and ``user_agent`` is ``"cli"``.

Values of personal fields are never written to the trail: only their names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine

from geogrid.core.accounts import Account
from geogrid.core.scope import Scope
from geogrid.errors import Forbidden, InvalidInput
from geogrid.store import audit as store
from geogrid.store.engine import transaction

__all__ = [
    "AUDIT_COLUMNS",
    "AUDIT_ROLES",
    "MAX_AUDIT_ROWS",
    "Client",
    "bind_client",
    "reset_client",
    "current_client",
    "record",
    "entry",
    "record_read",
    "audit_log",
]

AUDIT_COLUMNS = store.AUDIT_COLUMNS
#: roles that may read the audit trail
AUDIT_ROLES: Final[frozenset[str]] = frozenset({"admin", "system"})
#: most rows one :func:`audit_log` call returns
MAX_AUDIT_ROWS: Final[int] = 1000
_CLI_AGENT: Final[str] = "cli"

Bind = Engine | Connection


@dataclass(frozen=True)
class Client:
    """Where a request came from: the client's IP address and user agent."""

    ip: str | None
    user_agent: str | None


_client: ContextVar[Client | None] = ContextVar("geogrid_audit_client", default=None)


def bind_client(ip: str | None, user_agent: str | None) -> Token[Client | None]:
    """Bind the current request's client (IP, user agent; the agent cut to 300 characters)
    for the audit rows written while it is served. Returns the token for
    :func:`reset_client`."""
    return _client.set(Client(ip, user_agent[:300] if user_agent else user_agent))


def reset_client(token: Token[Client | None]) -> None:
    """Undo :func:`bind_client`."""
    _client.reset(token)


def current_client() -> Client:
    """The bound client, or the CLI's (no IP, user agent ``cli``).

    >>> current_client()
    Client(ip=None, user_agent='cli')
    """
    return _client.get() or Client(None, _CLI_AGENT)


def _who(actor: Scope | Account | int | None) -> tuple[int | None, str | None]:
    if isinstance(actor, Scope):
        return actor.account_id, actor.role
    if isinstance(actor, Account):
        return actor.id, actor.role
    if actor is None:
        return None, None
    return int(actor), None


def record(
    bind: Bind,
    *,
    actor: Scope | Account | int | None,
    action: str,
    resource: str,
    ids: Iterable[Any] | None = None,
    fields: Sequence[str] | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append one audit row (in ``bind``'s transaction when it is a Connection).

    Parameters
    ----------
    actor
        Who acts: a Scope, an Account, an account id, or None (an anonymous caller).
    action
        What was done, ``<resource>.<verb>`` (``incident.create``, ``incident.read``,
        ``register.read``, ``plan.publish``, ``account.add`` …).
    resource
        The kind of record (``incident``, ``register``, ``plan``, ``account`` …).
    ids
        The records' ids (one row lists every id of a list read).
    fields
        Names of the personal fields read in clear (reads) or changed (writes).
    detail
        Extra facts (filters of a list, the new status …); never personal values.
    """
    row = entry(
        actor=actor, action=action, resource=resource, ids=ids, fields=fields, detail=detail
    )
    with transaction(bind) as c:
        store.insert_audit(c, store.audit_params(**row))


def entry(
    *,
    actor: Scope | Account | int | None,
    action: str,
    resource: str,
    ids: Iterable[Any] | None = None,
    fields: Sequence[str] | None = None,
    detail: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The audit row :func:`record` appends (the parameters are the same), as the keyword
    arguments of :func:`geogrid.store.audit.audit_params` — for a store statement that writes an
    action and its audit row at once (the report path)."""
    actor_id, role = _who(actor)
    client = current_client()
    return {
        "actor_id": actor_id,
        "actor_role": role,
        "action": action,
        "resource": resource,
        "resource_ids": [str(i) for i in ids] if ids is not None else None,
        "fields": list(fields) if fields is not None else None,
        "ip": client.ip,
        "user_agent": client.user_agent,
        "detail": detail,
    }


def record_read(
    bind: Bind,
    scope: Scope,
    resource: str,
    ids: Iterable[Any],
    fields: Sequence[str],
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Record a read of personal ``fields`` in clear of the records ``ids`` (nothing when
    none was read in clear)."""
    id_list = [str(i) for i in ids]
    if not id_list or not fields:
        return
    record(
        bind,
        actor=scope,
        action=f"{resource}.read",
        resource=resource,
        ids=id_list,
        fields=fields,
        detail=detail,
    )


def audit_log(
    bind: Bind,
    *,
    scope: Scope,
    actor_id: int | None = None,
    resource: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Audit rows, newest first, filtered by actor, resource, action and time
    (``since <= at < until``, timezone-aware); admins only (Forbidden otherwise).

    ``limit`` is 1 … :data:`MAX_AUDIT_ROWS`.
    """
    if scope.role not in AUDIT_ROLES:
        raise Forbidden(f"role {scope.role!r} may not read the audit log (admins only)")
    if not 1 <= int(limit) <= MAX_AUDIT_ROWS:
        raise InvalidInput("limit", limit, f"1 to {MAX_AUDIT_ROWS}")
    if int(offset) < 0:
        raise InvalidInput("offset", offset, "0 or more")
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(name, value.isoformat(), "a date-time with a time zone")
    rows = store.audit_rows(
        bind,
        actor_id=actor_id,
        resource=resource,
        action=action,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return rows
