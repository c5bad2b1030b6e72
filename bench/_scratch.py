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

import threading
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


def _read_bodies(raw: str, table: str, parts: int) -> list[bytearray]:
    """``table``'s rows as binary COPY bodies, dealt out by heap block into ``parts``."""
    bodies = []
    with psycopg.connect(raw) as pc:
        for i in range(parts):
            where = f" WHERE ((ctid::text::point)[0])::bigint % {parts} = {i}" if parts > 1 else ""
            buf = bytearray()
            with pc.cursor().copy(
                f"COPY (SELECT * FROM {table}{where}) TO STDOUT (FORMAT BINARY)"
            ) as cp:
                for chunk in cp:
                    buf += chunk
            bodies.append(buf)
    return bodies


def _write_body(
    conn: psycopg.Connection,
    copy: str,
    body: bytearray,
    go: threading.Barrier,
    errors: list[BaseException],
) -> None:
    """COPY ``body`` into the table ``copy`` in 1 MB writes once every writer is ready
    (a failure is kept in ``errors``, raised again by the caller)."""
    go.wait()
    try:
        with conn.cursor().copy(f"COPY {copy} FROM STDIN (FORMAT BINARY)") as cp:
            view = memoryview(body)
            for j in range(0, len(view), 1 << 20):
                cp.write(view[j : j + (1 << 20)])
        conn.commit()
    except BaseException as exc:
        errors.append(exc)


def raw_copy_seconds(
    url: str, tables: list[str], *, connections: int = 1, logged: bool = True
) -> float:
    """The database's floor for writing what ``tables`` hold: their rows, every column, the
    body already encoded (``COPY … TO STDOUT (FORMAT BINARY)``, read first, not timed),
    written by binary ``COPY … FROM STDIN`` into unindexed copies (``LIKE``, no indexes,
    no constraints but NOT NULL), one table after another. Returns the seconds of the
    writes; the copies are dropped.

    ``connections`` > 1: each table's rows are dealt out by heap block to that many
    connections, which COPY their share into copies of their own at the same time — the
    most the machine's cores can write. ``logged`` False: the copies are ``UNLOGGED`` (no
    WAL, lost on a crash: no loader of data to keep may do that) — the ceiling with
    durability taken away too."""
    raw = url.replace("postgresql+psycopg://", "postgresql://", 1)
    kind = "" if logged else "UNLOGGED "
    total = 0.0
    for table in tables:
        bodies = _read_bodies(raw, table, connections)
        conns = [psycopg.connect(raw) for _ in range(connections)]
        copies = [f"{table}_raw_floor_{i}" for i in range(connections)]
        try:
            for c, copy in zip(conns, copies, strict=True):
                c.execute(f"CREATE {kind}TABLE {copy} (LIKE {table})")
                c.commit()
            go = threading.Barrier(connections + 1)
            errors: list[BaseException] = []
            threads = [
                threading.Thread(target=_write_body, args=(c, copy, body, go, errors))
                for c, copy, body in zip(conns, copies, bodies, strict=True)
            ]
            for th in threads:
                th.start()
            go.wait()
            t0 = time.perf_counter()
            for th in threads:
                th.join()
            total += time.perf_counter() - t0
            if errors:
                raise errors[0]
        finally:
            for c, copy in zip(conns, copies, strict=True):
                c.rollback()
                c.execute(f"DROP TABLE IF EXISTS {copy}")
                c.commit()
                c.close()
    return total
