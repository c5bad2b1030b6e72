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

import logging
import queue
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine

__all__ = ["AUTH_CHANNEL", "MAP_CHANNEL", "Notifier", "dsn_of", "listen", "notifier"]

log = logging.getLogger(__name__)

#: the channel :func:`geogrid.store.changes.record_change` notifies on
MAP_CHANNEL = "map_change"
#: what accounts are made of changed (migration 0021): token caches are emptied
AUTH_CHANNEL = "geogrid_auth"


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


class Notifier:
    """Notifications sent after their writers' commits, from a thread of their own.

    :meth:`send` only queues (microseconds, never blocks a request); the thread sends what
    queued meanwhile in one autocommit statement on its own connection — no transaction
    id, no WAL flush, so the database-wide notification lock is held for microseconds
    and writers' commits stay grouped (issue 10). Written here rather than taken from a
    library: psycopg has no asynchronous NOTIFY sender, and it is a queue, a thread and
    one statement.

    A send that fails (the database went away) is logged and dropped: the rows are
    committed, and the listeners' map services read them at their next poll of the
    changes.
    """

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._queue: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.sent = 0

    def send(self, channel: str, payload: str) -> None:
        """Queue one notification (a payload under PostgreSQL's 8,000 bytes)."""
        self._queue.put((channel, payload))
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="geogrid-notifier", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        while True:
            try:
                batch = [self._queue.get(timeout=_IDLE_S)]
            except queue.Empty:  # idle: give the connection back (a database may be dropped)
                if conn is not None:
                    conn.close()
                conn = None
                continue
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self._dsn, autocommit=True)
                conn.execute(
                    "SELECT pg_notify(c, p) FROM unnest(%s::text[], %s::text[]) AS t(c, p)",
                    ([c for c, _ in batch], [p for _, p in batch]),
                )
                self.sent += len(batch)
            except Exception as exc:
                log.warning("%d notifications not sent: %s", len(batch), type(exc).__name__)
                if conn is not None:
                    conn.close()
                conn = None


#: notifications sent in one statement at most
_BATCH = 256
#: seconds without a notification after which the notifier closes its connection
_IDLE_S = 30.0
_NOTIFIERS: weakref.WeakKeyDictionary[Engine, Notifier] = weakref.WeakKeyDictionary()
_NOTIFIERS_LOCK = threading.Lock()


def notifier(engine: Engine) -> Notifier:
    """The process's :class:`Notifier` of ``engine``'s database."""
    found = _NOTIFIERS.get(engine)
    if found is None:
        with _NOTIFIERS_LOCK:
            found = _NOTIFIERS.get(engine)
            if found is None:
                found = _NOTIFIERS[engine] = Notifier(dsn_of(engine))
    return found
