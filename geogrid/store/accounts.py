"""Accounts in the database: create with a one-time token, authenticate, list.

The plain token never reaches the database: only :func:`geogrid.core.accounts.hash_token`
of it is stored (``account.token_hash``).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from sqlalchemy import Connection, Engine, select, text

from geogrid.core.accounts import (
    Account,
    check_role,
    check_units_for_role,
    hash_token,
    new_token,
)
from geogrid.errors import Conflict, InvalidInput, NotFound, Unauthorized
from geogrid.store.engine import transaction as _tx
from geogrid.store.tables import account, account_unit

__all__ = [
    "add_user",
    "authenticate",
    "get_account",
    "list_users",
    "rotate_token",
    "accounts_for_unit",
]


def add_user(
    conn: Engine | Connection,
    name: str,
    role: str,
    units: Iterable[str] = (),
    ref: str | None = None,
) -> tuple[Account, str]:
    """Create an account and return it with its token (the only time the token is seen).

    Parameters
    ----------
    name : display name
    role : one of :data:`geogrid.core.accounts.ROLES`
    units : unit codes (grid codes for a worker, the community/street/district code for
        an admin of that level; none for other roles)
    ref : optional external reference (staff number), unique
    """
    if not name or not str(name).strip():
        raise InvalidInput("name", name, "a non-empty name")
    check_role(role)
    codes = check_units_for_role(role, units)
    token = new_token()
    with _tx(conn) as c:
        if ref is not None:
            taken = c.execute(select(account.c.id).where(account.c.ref == ref)).first()
            if taken is not None:
                raise Conflict(f"an account with ref {ref!r} already exists (id {taken[0]})")
        aid = c.execute(
            account.insert()
            .values(name=str(name).strip(), role=role, ref=ref, token_hash=hash_token(token))
            .returning(account.c.id)
        ).scalar_one()
        if codes:
            c.execute(account_unit.insert(), [{"account_id": aid, "unit_code": u} for u in codes])
    return Account(int(aid), str(name).strip(), role, tuple(codes), ref, True), token


def _units_of(c: Connection, aid: int) -> tuple[str, ...]:
    rows = (
        c.execute(
            select(account_unit.c.unit_code)
            .where(account_unit.c.account_id == aid)
            .order_by(account_unit.c.unit_code)
        )
        .scalars()
        .all()
    )
    return tuple(rows)


def authenticate(conn: Engine | Connection, token: str | None) -> Account:
    """The active account holding ``token``; Unauthorized otherwise."""
    if not token:
        raise Unauthorized("a bearer token is required: send 'Authorization: Bearer <token>'")
    with _tx(conn) as c:
        row = (
            c.execute(
                select(
                    account.c.id, account.c.name, account.c.role, account.c.ref, account.c.active
                ).where(account.c.token_hash == hash_token(token))
            )
            .mappings()
            .first()
        )
        if row is None or not row["active"]:
            raise Unauthorized("unknown or revoked token")
        units = _units_of(c, row["id"])
    return Account(int(row["id"]), row["name"], row["role"], units, row["ref"], True)


def get_account(conn: Engine | Connection, account_id: int) -> Account:
    with _tx(conn) as c:
        row = (
            c.execute(
                select(
                    account.c.id, account.c.name, account.c.role, account.c.ref, account.c.active
                ).where(account.c.id == int(account_id))
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"account {account_id} does not exist")
        units = _units_of(c, row["id"])
    return Account(int(row["id"]), row["name"], row["role"], units, row["ref"], bool(row["active"]))


def rotate_token(conn: Engine | Connection, account_id: int) -> str:
    """Replace an account's token; returns the new one (shown once)."""
    token = new_token()
    with _tx(conn) as c:
        n = c.execute(
            account.update()
            .where(account.c.id == int(account_id))
            .values(token_hash=hash_token(token))
        ).rowcount
    if not n:
        raise NotFound(f"account {account_id} does not exist")
    return token


def list_users(conn: Engine | Connection) -> pd.DataFrame:
    """Accounts with their units (no token hashes)."""
    with _tx(conn) as c:
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
    return pd.DataFrame(
        rows, columns=["id", "name", "role", "ref", "active", "created_at", "units"]
    )


def accounts_for_unit(conn: Connection, role: str, unit_code: str) -> int | None:
    """Id of the first active account of ``role`` bound to ``unit_code`` (None if none)."""
    return conn.execute(
        text(
            "SELECT a.id FROM account a JOIN account_unit au ON au.account_id = a.id "
            "WHERE a.role = :role AND a.active AND au.unit_code = :code ORDER BY a.id LIMIT 1"
        ),
        {"role": role, "code": unit_code},
    ).scalar_one_or_none()
