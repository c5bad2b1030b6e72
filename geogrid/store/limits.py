"""A statement timeout per request: every transaction begun while
:func:`statement_timeout` is in force runs with that ``statement_timeout`` (set on the
pooled connection's session when it has another value).

The API sets the budget of a request's class (cheap, standard, expensive) around the
request (:mod:`api.limits`); every transaction the request's services open — through any
engine of :func:`geogrid.store.get_engine` — then runs under it, so one expensive query
cannot hold a connection (and the database's cores) for minutes. A statement cancelled by
the timeout raises :class:`sqlalchemy.exc.OperationalError` (``QueryCanceled``), which the
API answers with 503 and ``Retry-After``.

The budget is a context variable: it follows the request into the thread pool (Starlette
copies the context) and never leaks into another request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import Connection, event
from sqlalchemy.engine import Engine

__all__ = ["current_statement_timeout", "install_statement_timeout", "statement_timeout"]

_TIMEOUT_MS: ContextVar[int | None] = ContextVar("geogrid_statement_timeout_ms", default=None)


@contextmanager
def statement_timeout(ms: int | None) -> Iterator[None]:
    """Run the block's transactions with ``statement_timeout = ms`` (milliseconds; None or 0:
    the server's default).

    >>> with statement_timeout(2000):
    ...     current_statement_timeout()
    2000
    >>> current_statement_timeout() is None
    True
    """
    token = _TIMEOUT_MS.set(int(ms) if ms else None)
    try:
        yield
    finally:
        _TIMEOUT_MS.reset(token)


def current_statement_timeout() -> int | None:
    """The budget in force (milliseconds), or None."""
    return _TIMEOUT_MS.get()


#: the statement_timeout a pooled connection's session has (kept in its ``info``)
_SET = "geogrid_statement_timeout_ms"
#: set while the transaction that changed it may still roll back (and undo it)
_UNDONE = "geogrid_statement_timeout_undone"


def _on_begin(conn: Connection) -> None:
    # issue 10 (REPORTS): a session-level SET, issued only when the connection's session
    # has another value, instead of a SET LOCAL per transaction (a round trip of every
    # transaction: a tenth of a report's). A SET in a transaction rolled back is undone
    # with it: _on_rollback forgets the value then.
    ms = _TIMEOUT_MS.get()
    info = conn.connection.info
    if info.get(_SET) == ms:
        return
    # an int (checked above): SET does not take bound parameters
    conn.exec_driver_sql(f"SET statement_timeout = {int(ms)}" if ms else "RESET statement_timeout")
    info[_SET] = ms
    if not getattr(conn.connection.dbapi_connection, "autocommit", False):
        info[_UNDONE] = True  # until this transaction commits (in autocommit it stands)


def _on_commit(conn: Connection) -> None:
    conn.connection.info.pop(_UNDONE, None)


def _on_rollback(conn: Connection) -> None:
    info = conn.connection.info
    if info.pop(_UNDONE, None):  # the SET of this transaction was undone with it
        info[_SET] = "unknown"


def install_statement_timeout(engine: Engine) -> None:
    """Make ``engine`` apply :func:`statement_timeout` to every transaction it begins."""
    if not event.contains(engine, "begin", _on_begin):
        event.listen(engine, "begin", _on_begin)
        event.listen(engine, "commit", _on_commit)
        event.listen(engine, "rollback", _on_rollback)
