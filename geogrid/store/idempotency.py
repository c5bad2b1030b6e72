"""The SQL of idempotency keys: the first answer of a create, kept under its key.

A key is claimed with an ``INSERT … ON CONFLICT DO NOTHING`` in the transaction of the
create it guards, and its answer is written by :func:`record_answer` before that
transaction commits, so a crash leaves both the create and its key or neither. A second
transaction claiming the same key while the first is open waits on the primary key until
the first commits (then it finds the stored answer) or rolls back (then it claims the key
itself): one create per key, whatever the timing.

SQL only, with bound parameters; the decisions are made in
:mod:`geogrid.services.idempotency`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

__all__ = ["claim_key", "record_answer", "stored_answer", "delete_before", "count_keys"]


def claim_key(
    conn: Connection, principal: str, key: str, operation: str, request_hash: str
) -> dict[str, Any] | None:
    """Claim ``key`` of ``principal`` in the caller's transaction.

    Returns None when the key was free (it is now held by this transaction until it
    commits or rolls back), else the stored row (:func:`stored_answer`). Waits while
    another open transaction holds the same key.
    """
    claimed = conn.execute(
        text(
            "INSERT INTO idempotency_key (principal, key, operation, request_hash) "
            "VALUES (:p, :k, :o, :h) ON CONFLICT (principal, key) DO NOTHING RETURNING 1"
        ),
        {"p": principal, "k": key, "o": operation, "h": request_hash},
    ).first()
    if claimed is not None:
        return None
    return stored_answer(conn, principal, key)


def stored_answer(conn: Connection, principal: str, key: str) -> dict[str, Any] | None:
    """The row of a key: ``operation``, ``request_hash``, ``status_code``, ``response``
    (decoded JSON), ``resource_id``, ``created_at``; None when there is none."""
    row = (
        conn.execute(
            text(
                "SELECT operation, request_hash, status_code, response, resource_id, created_at "
                "FROM idempotency_key WHERE principal = :p AND key = :k"
            ),
            {"p": principal, "k": key},
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def record_answer(
    conn: Connection,
    principal: str,
    key: str,
    status_code: int,
    response: Mapping[str, Any] | list[Any],
    resource_id: int | None,
) -> None:
    """Store the answer of a claimed key (``response`` must be JSON-serialisable)."""
    conn.execute(
        text(
            "UPDATE idempotency_key SET status_code = :s, response = CAST(:r AS jsonb), "
            "resource_id = :i WHERE principal = :p AND key = :k"
        ),
        {
            "s": int(status_code),
            "r": json.dumps(response, ensure_ascii=False),
            "i": resource_id,
            "p": principal,
            "k": key,
        },
    )


def delete_before(conn: Connection, before: datetime) -> int:
    """Delete the keys created before ``before`` (aware); returns how many."""
    result = conn.execute(text("DELETE FROM idempotency_key WHERE created_at < :b"), {"b": before})
    return int(result.rowcount or 0)


def count_keys(conn: Connection, principal: str | None = None) -> int:
    """How many keys are stored (of ``principal`` when given)."""
    if principal is None:
        return int(conn.execute(text("SELECT count(*) FROM idempotency_key")).scalar_one())
    return int(
        conn.execute(
            text("SELECT count(*) FROM idempotency_key WHERE principal = :p"), {"p": principal}
        ).scalar_one()
    )
