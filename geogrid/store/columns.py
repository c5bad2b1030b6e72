"""A query's result as columns: one list per output column, for the per-unit aggregates
(thousands of rows, a few numbers each) that pandas and numpy take column by column.

Why not rows: fetching a unit aggregate of 8,798 grids as rows made 8,798 tuples (and as
many SQLAlchemy ``Row`` objects) per statement, and a month of grid metrics runs five
such statements. Those objects outlived the young garbage-collector generations and
triggered a full collection every call or two — about 130 ms each in a serving process
(issue 12, "a month of grid metrics ≤ 100 ms"). Here the database packs each column into
one array (``array_agg`` over the query, all columns in the same row order: one aggregate
node feeds them all) and psycopg reads the single row in the binary protocol: a handful of
lists of untracked ints, floats and strings, and about 40 % less decoding than text rows.

The statement runs on the SQLAlchemy connection's own psycopg connection (its
transaction and settings, e.g. the request's statement timeout, apply); it is written
with SQLAlchemy's ``:name`` placeholders, as every other statement of the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.dialects.postgresql import psycopg
from sqlalchemy.engine import Dialect

__all__ = ["driver_sql", "fetch_columns"]


def driver_sql(sql: str, dialect: Dialect | None = None) -> str:
    """``sql`` with SQLAlchemy's ``:name`` placeholders as the driver's ``%(name)s`` (and
    ``%`` doubled), compiled by SQLAlchemy for ``dialect`` (default: psycopg's).

    >>> driver_sql("SELECT CAST(:a AS int)::text, '5%' WHERE x = :b_1")
    "SELECT CAST(%(a)s AS int)::text, '5%%' WHERE x = %(b_1)s"
    """
    return str(text(sql).compile(dialect=dialect or psycopg.dialect()))


def fetch_columns(
    conn: Connection, sql: str, params: Mapping[str, Any], names: Sequence[str]
) -> list[list[Any]]:
    """The rows of ``sql`` as one list per column of ``names`` (the query's output column
    names, in order), all in the same row order; empty lists when there is no row.

    Every output column must have a type psycopg reads in binary as Python scalars (text,
    integers, float8, booleans, timestamps): cast sums of integers (numeric) to bigint.
    """
    aggs = ", ".join(f'array_agg(q."{n}")' for n in names)
    statement = f"SELECT {aggs} FROM ({driver_sql(sql, conn.dialect)}) q"
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor(binary=True) as cur:
        cur.execute(statement, dict(params))
        row = cur.fetchone()
    if row is None or row[0] is None:
        return [[] for _ in names]
    return list(row)
