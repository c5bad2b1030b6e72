"""Scratch databases for the benches: created with the schema, dropped afterwards.

    with scratch_database(admin_url) as url:   # postgresql+psycopg://…/geogrid_bench_…
        engine = get_engine(url)
        …

The database is dropped (``WITH (FORCE)``) when the block ends, also on an error or
Ctrl-C, and the engine of its URL is disposed first — unless it is kept (``keep``: the
bench's ``--keep``). :func:`create_scratch` and :func:`drop_scratch` are the two halves,
for a database whose life is not one block.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from geogrid.services.database import get_engine, migrate

__all__ = ["ADMIN_URL", "create_scratch", "drop_scratch", "raw_copy_seconds", "scratch_database"]

#: the default maintenance connection of the benches
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def create_scratch(
    admin_url: str = ADMIN_URL,
    *,
    prefix: str = "geogrid_bench",
    name: str | None = None,
    schema: bool = True,
) -> str:
    """A new database (migrated to the head unless ``schema`` is False) named ``name`` —
    an existing one of that name is dropped first — or ``<prefix>_<random>``; returns its
    SQLAlchemy URL."""
    name = name or f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    url = f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    if schema:
        try:
            migrate(url)
        except BaseException:
            drop_scratch(url, admin_url)
            raise
    return url


def drop_scratch(url: str, admin_url: str = ADMIN_URL) -> None:
    """Dispose the engine of ``url`` and drop its database."""
    get_engine(url).dispose()
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


@contextmanager
def scratch_database(
    admin_url: str = ADMIN_URL,
    *,
    prefix: str = "geogrid_bench",
    name: str | None = None,
    schema: bool = True,
    keep: bool = False,
) -> Iterator[str]:
    """A new database (:func:`create_scratch`); yields its SQLAlchemy URL and drops it at
    the end unless ``keep`` (then only its engine is disposed)."""
    url = create_scratch(admin_url, prefix=prefix, name=name, schema=schema)
    try:
        yield url
    finally:
        if keep:
            get_engine(url).dispose()
        else:
            drop_scratch(url, admin_url)


def raw_copy_seconds(url: str, tables: list[str]) -> float:
    """The database's floor for writing what ``tables`` hold: their rows, every column, the
    body already encoded (``COPY … TO STDOUT (FORMAT BINARY)``, read first, not timed),
    written by binary ``COPY … FROM STDIN`` into unindexed copies (``LIKE``, no indexes,
    no constraints but NOT NULL), one table after another on one connection. Returns the
    seconds of the writes; the copies are dropped."""
    raw = url.replace("postgresql+psycopg://", "postgresql://", 1)
    total = 0.0
    with psycopg.connect(raw) as pc:
        for table in tables:
            copy = f"{table}_raw_floor"
            pc.execute(f"CREATE TABLE {copy} (LIKE {table})")
            buf = bytearray()
            with pc.cursor().copy(f"COPY (SELECT * FROM {table}) TO STDOUT (FORMAT BINARY)") as cp:
                for chunk in cp:
                    buf += chunk
            pc.commit()
            t0 = time.perf_counter()
            with pc.cursor().copy(f"COPY {copy} FROM STDIN (FORMAT BINARY)") as cp:
                view = memoryview(buf)
                for i in range(0, len(view), 1 << 20):
                    cp.write(view[i : i + (1 << 20)])
            pc.commit()
            total += time.perf_counter() - t0
            del buf
            pc.execute(f"DROP TABLE {copy}")
            pc.commit()
    return total
