"""Scratch databases for the benches: created with the schema, dropped afterwards.

    with scratch_database(admin_url) as url:   # postgresql+psycopg://…/geogrid_bench_…
        engine = get_engine(url)
        …

The database is dropped (``WITH (FORCE)``) when the block ends, also on an error or
Ctrl-C, and the engine of its URL is disposed first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from geogrid.services.database import get_engine, migrate

__all__ = ["ADMIN_URL", "scratch_database"]

#: the default maintenance connection of the benches
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def scratch_database(
    admin_url: str = ADMIN_URL, *, prefix: str = "geogrid_bench", schema: bool = True
) -> Iterator[str]:
    """A new database (migrated to the head unless ``schema`` is False); yields its
    SQLAlchemy URL and drops it at the end."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    base = admin_url.rsplit("/", 1)[0]
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        if schema:
            migrate(url)
        yield url
    finally:
        get_engine(url).dispose()
        with psycopg.connect(admin_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
