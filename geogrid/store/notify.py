"""LISTEN on PostgreSQL notification channels with a dedicated psycopg connection.

The pooled SQLAlchemy connections cannot listen (a notification is delivered to the
session that listens, and pooled sessions come and go), so a listener opens its own
autocommit :class:`psycopg.AsyncConnection` on the engine's URL and iterates its
notifications on the event loop. Notifications are delivered at commit, in commit order,
and never for a rolled-back transaction.

Channels: :data:`geogrid.core.live.CHANNEL` (incident inserts and status changes, by the
triggers of migration 0014) and ``map_change`` (every map edit, sent by
:func:`geogrid.store.changes.record_change`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import psycopg
from psycopg import sql
from sqlalchemy import Engine, text

__all__ = ["MAP_CHANNEL", "dsn_of", "listen", "notify"]

#: the channel :func:`geogrid.store.changes.record_change` notifies on
MAP_CHANNEL = "map_change"


def dsn_of(engine: Engine) -> str:
    """The libpq connection string of ``engine`` (password included; never logged)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


async def listen(
    dsn: str,
    channels: Iterable[str],
    on_notify: Callable[[str, str], None],
    *,
    on_ready: Callable[[], Awaitable[None] | None] | None = None,
    keepalive: float = 30.0,
) -> None:
    """Listen on ``channels`` and call ``on_notify(channel, payload)`` for each
    notification, until cancelled or the connection fails (the exception propagates: the
    caller reconnects). ``on_ready`` runs once the LISTENs are in place. Every
    ``keepalive`` seconds without traffic a ``SELECT 1`` checks the connection, so a
    dead server is noticed."""
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    async with conn:
        for ch in channels:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(ch)))
        if on_ready is not None:
            res = on_ready()
            if res is not None:
                await res
        while True:
            got = 0
            async for n in conn.notifies(timeout=keepalive):
                got += 1
                on_notify(n.channel, n.payload)
            if not got:
                await conn.execute("SELECT 1")


def notify(engine: Engine, channel: str, payload: str) -> None:
    """Send one notification in its own autocommit statement (no transaction id, no WAL
    flush: the notification lock is held for microseconds) — for a writer that committed
    its rows with the trigger's notification turned off (the report path, issue 10).
    A payload must stay under PostgreSQL's 8,000 bytes."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("SELECT pg_notify(:ch, :p)"), {"ch": channel, "p": payload})
