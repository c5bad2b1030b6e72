"""Accounts in the database: rows of ``account`` and ``account_unit`` in and out.

SQL only; the rules (roles, unit codes, tokens) are in :mod:`geogrid.core.accounts` and
the workflows (create with a one-time token, authenticate) in
:mod:`geogrid.services.accounts`. The plain token never reaches the database: only its
hash (``account.token_hash``) is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, select, text

from geogrid.store.engine import connection
from geogrid.store.tables import account, account_unit

__all__ = [
    "USER_COLUMNS",
    "insert_account",
    "account_id_by_ref",
    "account_by_token_hash",
    "account_row",
    "account_units",
    "set_token_hash",
    "user_rows",
    "accounts_for_unit",
]

#: columns of the rows :func:`user_rows` returns (no token hashes)
USER_COLUMNS = ("id", "name", "role", "ref", "active", "created_at", "units")
_ACCOUNT = (account.c.id, account.c.name, account.c.role, account.c.ref, account.c.active)


def insert_account(
    conn: Connection,
    *,
    name: str,
    role: str,
    ref: str | None,
    token_hash: str,
    units: Sequence[str] = (),
) -> int:
    """Insert an account bound to ``units``; returns its id."""
    aid = conn.execute(
        account.insert()
        .values(name=name, role=role, ref=ref, token_hash=token_hash)
        .returning(account.c.id)
    ).scalar_one()
    if units:
        conn.execute(account_unit.insert(), [{"account_id": aid, "unit_code": u} for u in units])
    return int(aid)


def account_id_by_ref(conn: Connection, ref: str) -> int | None:
    """The id of the account with this external reference (None if none)."""
    aid = conn.execute(select(account.c.id).where(account.c.ref == ref)).scalar_one_or_none()
    return None if aid is None else int(aid)


def account_by_token_hash(bind: Engine | Connection, token_hash: str) -> dict[str, Any] | None:
    """id, name, role, ref, active of the account holding a token hash (None if none)."""
    with connection(bind) as c:
        row = c.execute(select(*_ACCOUNT).where(account.c.token_hash == token_hash)).mappings()
        first = row.first()
    return None if first is None else dict(first)


def account_row(bind: Engine | Connection, account_id: int) -> dict[str, Any] | None:
    """id, name, role, ref, active of one account (None if none)."""
    with connection(bind) as c:
        first = (
            c.execute(select(*_ACCOUNT).where(account.c.id == int(account_id))).mappings().first()
        )
    return None if first is None else dict(first)


def account_units(bind: Engine | Connection, account_id: int) -> tuple[str, ...]:
    """The unit codes an account is bound to, sorted."""
    with connection(bind) as c:
        rows = (
            c.execute(
                select(account_unit.c.unit_code)
                .where(account_unit.c.account_id == int(account_id))
                .order_by(account_unit.c.unit_code)
            )
            .scalars()
            .all()
        )
    return tuple(str(r) for r in rows)


def set_token_hash(conn: Connection, account_id: int, token_hash: str) -> int:
    """Replace an account's token hash; returns the number of accounts changed (0 or 1)."""
    result = conn.execute(
        account.update().where(account.c.id == int(account_id)).values(token_hash=token_hash)
    )
    return int(result.rowcount)


def user_rows(bind: Engine | Connection) -> list[dict[str, Any]]:
    """Every account with its units as a comma-separated text (:data:`USER_COLUMNS`)."""
    with connection(bind) as c:
        rows = (
            c.execute(
                text(
                    "SELECT a.id, a.name, a.role, a.ref, a.active, a.created_at, "
                    "coalesce(string_agg(au.unit_code, ',' ORDER BY au.unit_code), '') AS units "
                    "FROM account a LEFT JOIN account_unit au ON au.account_id = a.id "
                    "GROUP BY a.id ORDER BY a.id"
                )
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def accounts_for_unit(conn: Connection, role: str, unit_code: str) -> int | None:
    """Id of the first active account of ``role`` bound to ``unit_code`` (None if none)."""
    aid = conn.execute(
        text(
            "SELECT a.id FROM account a JOIN account_unit au ON au.account_id = a.id "
            "WHERE a.role = :role AND a.active AND au.unit_code = :code ORDER BY a.id LIMIT 1"
        ),
        {"role": role, "code": unit_code},
    ).scalar_one_or_none()
    return None if aid is None else int(aid)
