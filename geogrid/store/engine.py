"""Database engine: from ``GEOGRID_DATABASE_URL`` or the embedded cluster."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, create_engine, event, exc
from sqlalchemy.engine import Engine

from geogrid.settings import get_settings
from geogrid.store import cluster
from geogrid.store.limits import install_statement_timeout

__all__ = ["autocommit", "database_url", "get_engine", "raw_dsn", "transaction", "connection"]


def database_url(url: str | None = None, *, start: bool = True) -> str:
    """The SQLAlchemy URL to use: the argument, ``GEOGRID_DATABASE_URL``, or the embedded
    cluster (started on demand when ``start``)."""
    if url:
        return _normalise(url)
    s = get_settings()
    if s.database_url:
        return _normalise(s.database_url)
    return cluster.up(s) if start else cluster.url(s)


def _normalise(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def raw_dsn(url: str) -> str:
    """libpq DSN of a SQLAlchemy URL (for psycopg COPY and GDAL)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


#: issue 10: connections an engine keeps open (opened lazily) beyond the setting
#: ``request_threads`` (the serving process's request threads: ``api.main`` caps them to
#: it), for background threads. A new PostgreSQL backend costs ~50 ms of CPU before its
#: first PostGIS query (fork, catalogue, library load); with 10 kept and 20 overflow, a
#: report burst past 10 concurrent transactions opened and closed overflow connections
#: on every wave — the churn turned a busy moment at 150 reports/s into a collapse.
POOL_SPARE = 5
#: beyond the connections kept: opened when needed, closed when returned
POOL_OVERFLOW = 10


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    # jit off: with monthly partitions a query's estimated cost passes jit_above_cost and
    # PostgreSQL compiles every partition's expressions — seconds for a tile of 60k points
    # under load (the cheap class's 5 s budget ran out); our queries are short and indexed
    engine = create_engine(
        url,
        pool_size=get_settings().request_threads + POOL_SPARE,
        max_overflow=POOL_OVERFLOW,
        pool_timeout=10,
        connect_args={"options": "-c jit=off"},
    )
    install_idle_ping(engine)
    install_statement_timeout(engine)
    return engine


#: a pooled connection idle longer than this is pinged before use (seconds)
IDLE_PING_S = 1.0


def install_idle_ping(engine: Engine, idle_s: float = IDLE_PING_S) -> None:
    """Ping a pooled connection before use only when it sat idle for ``idle_s`` or more.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout: a round trip per transaction,
    a fifth of a report's (issue 10). A connection used a moment ago is alive or fails
    like any statement would — and a disconnect error invalidates the whole pool, so the
    next checkouts connect afresh; one idle across a database restart is replaced before
    use. This is SQLAlchemy's documented pessimistic pattern (raise ``DisconnectionError``
    in ``checkout``: the pool retries with a new connection), only made lazier."""

    @event.listens_for(engine.pool, "checkin")
    def _returned(dbapi_connection: Any, record: Any) -> None:
        record.info["geogrid_idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("geogrid_idle_since")
        if since is None or time.monotonic() - since < idle_s:
            return  # new, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as e:  # any failure: this connection is not to be used
            raise exc.DisconnectionError(str(e)) from e


def get_engine(url: str | None = None) -> Engine:
    """A pooled engine (one per URL per process)."""
    return _engine(database_url(url))


@contextmanager
def transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """A new transaction on an Engine, or the caller's Connection (and its transaction)."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.begin() as conn:
            yield conn


@contextmanager
def connection(bind: Engine | Connection) -> Iterator[Connection]:
    """A connection from an Engine (closed afterwards), or the caller's Connection as is."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as conn:
            yield conn


@contextmanager
def autocommit(bind: Engine | Connection) -> Iterator[Connection]:
    """A connection from an Engine in autocommit (each statement its own transaction: no
    ``BEGIN``/``COMMIT`` round trips around a lone read — issue 10, the sign-in check), or
    the caller's Connection (and its transaction) as is."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")
