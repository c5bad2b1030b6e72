"""PostgreSQL advisory locks held until the end of the caller's transaction.

A lock is named by two 32-bit integers: a namespace (one per kind of work, so that
geogrid's locks never collide with another application's) and a key within it.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

__all__ = ["try_xact_lock", "xact_lock"]


def try_xact_lock(conn: Connection, namespace: int, key: int) -> bool:
    """Take the lock ``(namespace, key)`` for the transaction if it is free; True if taken."""
    return bool(
        conn.execute(
            text("SELECT pg_try_advisory_xact_lock(:ns, :key)"), {"ns": namespace, "key": key}
        ).scalar_one()
    )


def xact_lock(conn: Connection, namespace: int, key: int) -> None:
    """Take the lock ``(namespace, key)`` for the transaction, waiting while another
    transaction holds it."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:ns, :key)"), {"ns": namespace, "key": key})
