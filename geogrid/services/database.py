"""The database as the command line sees it: the embedded cluster, migrations, engines.

Thin workflows over :mod:`geogrid.store` so that the CLI (which never imports the store)
can start, stop and migrate the database it serves from.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from geogrid.settings import Settings, get_settings
from geogrid.store import cluster
from geogrid.store import engine as store_engine
from geogrid.store.schema import migrate as store_migrate

__all__ = [
    "cluster_down",
    "cluster_status",
    "cluster_up",
    "database_url",
    "get_engine",
    "migrate",
    "redacted",
]


def cluster_up(settings: Settings | None = None) -> str:
    """Initialise (once) and start the embedded cluster; returns its SQLAlchemy URL.

    Raises
    ------
    DatabaseUnavailable
        When PostgreSQL is not installed or does not start.
    """
    return cluster.up(settings or get_settings())


def redacted(url: str) -> str:
    """``url`` fit for printing or logging: its password replaced by ``***``."""
    return cluster.redacted(url)


def cluster_down(settings: Settings | None = None) -> None:
    """Stop the embedded cluster (fast shutdown); nothing when it is not running."""
    cluster.down(settings or get_settings())


def cluster_status(settings: Settings | None = None) -> dict[str, Any]:
    """Where the database is: ``{"url": ...}`` for ``GEOGRID_DATABASE_URL``, else the
    embedded cluster's ``data``, ``port``, ``initialised`` and ``running``."""
    s = settings or get_settings()
    if s.database_url:
        return {"url": redacted(s.database_url)}
    return cluster.status(s)


def database_url(url: str | None = None, *, start: bool = True) -> str:
    """The SQLAlchemy URL to use: ``url``, ``GEOGRID_DATABASE_URL``, or the embedded
    cluster (started when ``start``)."""
    return store_engine.database_url(url, start=start)


def migrate(url: str | None = None) -> str:
    """Apply the Alembic migrations to the database (idempotent); returns its URL."""
    resolved = database_url(url)
    store_migrate(resolved)
    return resolved


def get_engine(url: str | None = None) -> Engine:
    """The pooled engine of ``url`` (default: :func:`database_url`)."""
    return store_engine.get_engine(url)
