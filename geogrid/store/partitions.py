"""Monthly partitions of the partitioned tables (revision 0015): list, add, detach,
attach, and a month's count and checksum. SQL only; which months to make and when is
:mod:`geogrid.services.partitions`.

A partition is made as a standalone table (``LIKE`` the parent), filled when there is
something to fill it with, given a CHECK constraint equal to its bounds and then
attached: ``ATTACH PARTITION`` takes only a SHARE UPDATE EXCLUSIVE lock on the parent
(``CREATE TABLE … PARTITION OF`` takes an ACCESS EXCLUSIVE one, which waits for every
running query on the table), and the CHECK lets it skip the scan that proves the rows fit.
Rows of the new range that wait in the DEFAULT partition are moved into the table first.

Identifiers (parents, partition names) are this package's own, checked against
:data:`PARENTS` and a name pattern — never user input in SQL text; bounds are bound
parameters rendered by PostgreSQL itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from geogrid.core.partitioning import Bounds

__all__ = [
    "PARENTS",
    "Partition",
    "list_partitions",
    "add_partition",
    "create_standalone",
    "create_month_table",
    "move_from_default",
    "attach",
    "detach",
    "drop",
    "is_empty",
    "move_rows",
    "month_digest",
    "table_exists",
    "lock_timeout",
    "rename_table",
]

#: the tables partitioned by month, with their partition key
PARENTS: dict[str, str] = {"incident": "reported_at"}

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class Partition:
    """A partition: its table name and bounds (``start``/``end`` None for DEFAULT)."""

    name: str
    start: datetime | None
    end: datetime | None

    @property
    def is_default(self) -> bool:
        return self.start is None

    @property
    def bounds(self) -> Bounds:
        if self.start is None or self.end is None:
            raise ValueError(f"{self.name} is the default partition")
        return Bounds(self.start, self.end)


def _ident(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a partition table name: {name!r}")
    return name


def _parent(parent: str) -> str:
    if parent not in PARENTS:
        raise ValueError(f"not a partitioned table: {parent!r}")
    return parent


def _literal(conn: Connection, t: datetime) -> str:
    """``t`` as a quoted timestamptz literal rendered by PostgreSQL (DDL takes no
    parameters)."""
    return str(
        conn.execute(text("SELECT quote_literal(CAST(:t AS timestamptz))"), {"t": t}).scalar_one()
    )


def lock_timeout(conn: Connection, ms: int) -> None:
    """``SET LOCAL lock_timeout`` (a partition made during a report must not queue behind a
    long query)."""
    conn.execute(text("SELECT set_config('lock_timeout', :v, true)"), {"v": f"{int(ms)}ms"})


def list_partitions(conn: Connection, parent: str = "incident") -> list[Partition]:
    """The attached partitions of ``parent``, ordered by start (DEFAULT last)."""
    rows = conn.execute(
        text(
            "SELECT c.relname, (m)[1]::timestamptz, (m)[2]::timestamptz FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), "
            "'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)') AS m "
            "WHERE i.inhparent = CAST(:p AS regclass) "
            "ORDER BY 2 NULLS LAST"
        ),
        {"p": _parent(parent)},
    ).all()
    return [Partition(str(n), s, e) for n, s, e in rows]


def table_exists(conn: Connection, name: str) -> bool:
    return bool(
        conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": _ident(name)}).scalar_one()
    )


def create_standalone(conn: Connection, parent: str, name: str, *, unlogged: bool = False) -> None:
    """A new empty table shaped like ``parent`` (columns, defaults, CHECKs), no index."""
    kind = "UNLOGGED TABLE" if unlogged else "TABLE"
    conn.exec_driver_sql(
        f"CREATE {kind} {_ident(name)} (LIKE {_parent(parent)} INCLUDING DEFAULTS "
        "INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING STORAGE)"
    )


def rename_table(conn: Connection, old: str, new: str) -> None:
    """Rename the standalone table ``old`` to ``new``, with its indexes and constraints
    whose names start with ``old`` (a month loaded under a name of its own by a side
    connection takes its partition's name before it is attached)."""
    conn.exec_driver_sql(f"ALTER TABLE {_ident(old)} RENAME TO {_ident(new)}")
    # constraints first (a key constraint's index is renamed with it), then the indexes
    # left with the old prefix
    for rename, names_sql in (
        (
            f"ALTER TABLE {_ident(new)} RENAME CONSTRAINT {{}} TO {{}}",
            "SELECT conname FROM pg_constraint "
            "WHERE conrelid = CAST(:t AS regclass) AND starts_with(conname, :p)",
        ),
        (
            "ALTER INDEX {} RENAME TO {}",
            "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = CAST(:t AS regclass) AND starts_with(i.relname, :p)",
        ),
    ):
        for name in list(conn.execute(text(names_sql), {"t": new, "p": old}).scalars()):
            conn.exec_driver_sql(rename.format(_ident(name), _ident(new + name.removeprefix(old))))


def move_from_default(conn: Connection, parent: str, name: str, bounds: Bounds) -> int:
    """Move the rows of ``bounds`` waiting in ``parent``'s DEFAULT partition into the
    standalone table ``name``; returns how many. The statement runs on the partition, so
    the parent's statement triggers (keys, NOTIFY) do not fire: the rows stay the same
    incidents."""
    key = PARENTS[_parent(parent)]
    default = f"{parent}_default"
    if not table_exists(conn, default):
        return 0
    moved = conn.execute(
        text(
            f"WITH m AS (DELETE FROM {default} WHERE {key} >= :a AND {key} < :b RETURNING *) "
            f"INSERT INTO {_ident(name)} SELECT * FROM m"
        ),
        {"a": bounds.start, "b": bounds.end},
    )
    return int(moved.rowcount or 0)


def create_month_table(conn: Connection, parent: str, name: str, bounds: Bounds) -> None:
    """A standalone table for ``parent``'s partition ``bounds`` with a CHECK constraint
    equal to the bounds (checked per row as it is filled, and what lets :func:`attach` skip
    its validation scan)."""
    key = PARENTS[_parent(parent)]
    create_standalone(conn, parent, name)
    a, b = _literal(conn, bounds.start), _literal(conn, bounds.end)
    conn.exec_driver_sql(
        f"ALTER TABLE {name} ADD CONSTRAINT {name}_bound CHECK "
        f"({key} IS NOT NULL AND {key} >= {a} AND {key} < {b})"
    )


def attach(conn: Connection, parent: str, name: str, bounds: Bounds) -> int:
    """Attach the table ``name`` made by :func:`create_month_table` as ``parent``'s
    partition of ``bounds``, after moving the rows of that range waiting in the DEFAULT
    partition into it (the DEFAULT partition is locked first, so that none arrives in
    between: the attach would fail on it). Its CHECK constraint spares the attach a scan
    and is dropped after (the partition bound says the same). The parent's indexes are
    built on the table unless it has matching ones already (a bulk load builds them
    before). Returns the rows moved."""
    tbl = _ident(name)
    default = f"{_parent(parent)}_default"
    if table_exists(conn, default):
        key = PARENTS[_parent(parent)]
        waiting = conn.execute(
            text(f"SELECT EXISTS (SELECT 1 FROM {default} WHERE {key} >= :a AND {key} < :b)"),
            {"a": bounds.start, "b": bounds.end},
        ).scalar_one()
        if waiting:
            # rows move between partitions: a reader planned before the attach would scan
            # DEFAULT after the move but not the new partition, and miss them. Readers wait
            # on the parent instead, for the moment of the move (rare: the months are made
            # ahead, so DEFAULT is empty but for raw writes or a paused ensure)
            conn.exec_driver_sql(f"LOCK TABLE {_parent(parent)} IN ACCESS EXCLUSIVE MODE")
        conn.exec_driver_sql(f"LOCK TABLE {default} IN ACCESS EXCLUSIVE MODE")
    moved = move_from_default(conn, parent, tbl, bounds)
    a, b = _literal(conn, bounds.start), _literal(conn, bounds.end)
    conn.exec_driver_sql(
        f"ALTER TABLE {parent} ATTACH PARTITION {tbl} FOR VALUES FROM ({a}) TO ({b})"
    )
    conn.exec_driver_sql(f"ALTER TABLE {tbl} DROP CONSTRAINT {tbl}_bound")
    return moved


def add_partition(conn: Connection, parent: str, name: str, bounds: Bounds) -> int:
    """Make ``parent``'s partition ``name`` for ``bounds``: a standalone table, the rows of
    that range moved out of the DEFAULT partition, attached. Returns the rows moved."""
    create_month_table(conn, parent, name, bounds)
    return attach(conn, parent, name, bounds)


def detach(conn: Connection, parent: str, name: str) -> None:
    """Detach partition ``name`` from ``parent`` (it stays as a plain table)."""
    conn.exec_driver_sql(f"ALTER TABLE {_parent(parent)} DETACH PARTITION {_ident(name)}")


def is_empty(conn: Connection, name: str) -> bool:
    """True when table ``name`` holds no row."""
    return not conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {_ident(name)})")).scalar_one()


def move_rows(conn: Connection, source: str, target: str) -> int:
    """Copy every row of table ``source`` into table ``target`` (same columns, by name);
    the number of rows. The rows stay in ``source``: the caller drops it after (a move,
    as :meth:`geogrid.services.ingest._MonthLoad._replace` does)."""
    cols = conn.execute(
        text(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
            "WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped"
        ),
        {"t": _ident(target)},
    ).scalar_one()
    result = conn.exec_driver_sql(
        f"INSERT INTO {_ident(target)} ({cols}) SELECT {cols} FROM {_ident(source)}"
    )
    return int(result.rowcount or 0)


def drop(conn: Connection, name: str) -> None:
    """Drop a (detached) partition table."""
    conn.exec_driver_sql(f"DROP TABLE {_ident(name)}")


def month_digest(conn: Connection, table: str, bounds: Bounds | None = None) -> dict[str, Any]:
    """``rows`` and an ``md5`` of every column of every row (ordered by id) of ``table``
    (a parent, within ``bounds``, or one partition): equal before an archive and after its
    restore when nothing was lost or changed."""
    where, params = "", {}
    if bounds is not None:
        key = PARENTS.get(table, "reported_at")
        where = f" WHERE {key} >= :a AND {key} < :b"
        params = {"a": bounds.start, "b": bounds.end}
    row = conn.execute(
        text(
            f"SELECT count(*), coalesce(md5(string_agg(md5(t::text), '' ORDER BY t.id)), '') "
            f"FROM {_ident(table)} t{where}"
        ),
        params,
    ).one()
    return {"rows": int(row[0]), "md5": str(row[1])}
