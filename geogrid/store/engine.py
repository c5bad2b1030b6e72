"""Database engine: from ``GEOGRID_DATABASE_URL`` or the embedded cluster."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Connection, create_engine
from sqlalchemy.engine import Engine

from geogrid.settings import get_settings
from geogrid.store import cluster
from geogrid.store.limits import install_statement_timeout

__all__ = ["database_url", "get_engine", "raw_dsn", "transaction", "connection"]


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


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    # pool_pre_ping: a connection broken by a database restart is replaced, not used
    # jit off: with monthly partitions a query's estimated cost passes jit_above_cost and
    # PostgreSQL compiles every partition's expressions — seconds for a tile of 60k points
    # under load (the cheap class's 5 s budget ran out); our queries are short and indexed
    engine = create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={"options": "-c jit=off"},
    )
    install_statement_timeout(engine)
    return engine


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
