"""A statement timeout per request: ``SET LOCAL statement_timeout`` at the start of every
transaction begun while :func:`statement_timeout` is in force.

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


def _on_begin(conn: Connection) -> None:
    ms = _TIMEOUT_MS.get()
    if ms:
        # an int (checked above): SET does not take bound parameters
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(ms)}")


def install_statement_timeout(engine: Engine) -> None:
    """Make ``engine`` apply :func:`statement_timeout` to every transaction it begins."""
    if not event.contains(engine, "begin", _on_begin):
        event.listen(engine, "begin", _on_begin)
