"""Bulk incident loads at COPY speed: the lookups and statements of
:mod:`geogrid.services.ingest` that work on whole Arrow batches or whole tables. SQL only;
the rows are built by :func:`geogrid.core.incident_files.prepare_table` and encoded by
:func:`geogrid.store.incidents.encode_rows`.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, text

from geogrid.core.incident_files import INCIDENT_COPY_COLUMNS

__all__ = ["stored_source_ids", "copy_body", "bulk_settings", "analyze_new"]

_TABLE = re.compile(r"(incident|incident_p\d{4}_\d{2}(_\d+)?|incident_stage|incident_bulk_\w+)")


def _checked(table: str) -> str:
    if not _TABLE.fullmatch(table):
        raise ValueError(f"not an incident table: {table!r}")
    return table


def _raw(conn: Connection) -> Any:
    return conn.connection.driver_connection  # a psycopg 3 connection


def stored_source_ids(conn: Connection, ids: pa.Array) -> pa.Array:
    """The ``source_id`` values among ``ids`` that are already stored.

    The stored ids' range is read first (two ends of ``incident_source_id_key``, a byte
    comparison as the key is in the C collation, as Arrow compares strings): ids outside it
    cannot be stored and are not sent; the others are looked up in one statement.
    """
    empty = pa.array([], pa.string())
    if len(ids) == 0:
        return empty
    lo, hi = conn.execute(text("SELECT min(source_id), max(source_id) FROM incident_key")).one()
    if lo is None:
        return empty
    inside = pc.and_(pc.greater_equal(ids, str(lo)), pc.less_equal(ids, str(hi)))
    candidates = ids.filter(inside)
    if len(candidates) == 0:
        return empty
    rows = conn.execute(
        text("SELECT source_id FROM incident_key WHERE source_id = ANY(:ids)"),
        {"ids": candidates.to_pylist()},
    ).scalars()
    return pa.array([str(r) for r in rows], pa.string())


def copy_body(conn: Connection, body: bytes, table: str, *, freeze: bool = False) -> None:
    """COPY a binary body (:func:`geogrid.store.incidents.encode_rows`) into ``table`` in the
    caller's transaction. ``freeze``: the table was created in this transaction (a month
    loaded standalone, the staging table), so its rows are written frozen and its pages
    all-visible — the index builds, ANALYZE and later readers do not rewrite every page
    to set hint bits. Other sessions cannot see the table before the commit anyway."""
    options = "FORMAT BINARY, FREEZE" if freeze else "FORMAT BINARY"
    with _raw(conn).cursor() as cur:
        with cur.copy(
            f"COPY {_checked(table)} ({', '.join(INCIDENT_COPY_COLUMNS)}) FROM STDIN "
            f"WITH ({options})"
        ) as cp:
            view = memoryview(body)
            for i in range(0, len(view), 1 << 20):
                cp.write(view[i : i + (1 << 20)])


def bulk_settings(conn: Connection, *, work_mem: str = "64MB", maintenance: str = "256MB") -> None:
    """Memory for the set-based statements of a bulk load, for this transaction only: the
    sorts and aggregates of the key insert, the sorted INSERT and the rollup hook in
    memory (the default 4 MB spills a million rows to disk), the index builds' sorts."""
    conn.execute(
        text(
            "SELECT set_config('work_mem', :w, true), set_config('maintenance_work_mem', :m, true)"
        ),
        {"w": work_mem, "m": maintenance},
    )


def analyze_new(conn: Connection, tables: list[str]) -> None:
    """ANALYZE the given tables only (months just loaded), in one statement."""
    if tables:
        conn.exec_driver_sql(f"ANALYZE {', '.join(_checked(t) for t in tables)}")
