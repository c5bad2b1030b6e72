"""Accounts: create one with a one-time bearer token, authenticate a token, list them.

Rules (roles, unit codes per role, token hashing) come from :mod:`geogrid.core.accounts`;
rows are read and written with :mod:`geogrid.store.accounts`. The plain token is returned
once by :func:`add_user` / :func:`rotate_token` and never stored.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from sqlalchemy import Connection, Engine

from geogrid.core.accounts import (
    Account,
    check_role,
    check_units_for_role,
    hash_token,
    new_token,
)
from geogrid.errors import Conflict, InvalidInput, NotFound, Unauthorized
from geogrid.store import accounts as store
from geogrid.store.engine import transaction

__all__ = ["add_user", "authenticate", "get_account", "rotate_token", "list_users"]


def add_user(
    bind: Engine | Connection,
    name: str,
    role: str,
    units: Iterable[str] = (),
    ref: str | None = None,
) -> tuple[Account, str]:
    """Create an account and return it with its token (the only time the token is seen).

    Parameters
    ----------
    name : display name (not empty)
    role : one of :data:`geogrid.core.accounts.ROLES`
    units : unit codes (grid codes for a worker, the community/street/district code for
        an admin of that level; none for other roles)
    ref : optional external reference (staff number), unique

    Raises
    ------
    InvalidInput : empty name, unknown role, units that do not fit the role.
    Conflict : ``ref`` is taken.
    """
    clean = str(name).strip() if name is not None else ""
    if not clean:
        raise InvalidInput("name", name, "a non-empty name")
    check_role(role)
    codes = check_units_for_role(role, units)
    token = new_token()
    with transaction(bind) as c:
        if ref is not None:
            taken = store.account_id_by_ref(c, ref)
            if taken is not None:
                raise Conflict(f"an account with ref {ref!r} already exists (id {taken})")
        aid = store.insert_account(
            c, name=clean, role=role, ref=ref, token_hash=hash_token(token), units=codes
        )
    return Account(aid, clean, role, tuple(codes), ref, True), token


def authenticate(bind: Engine | Connection, token: str | None) -> Account:
    """The active account holding ``token``.

    Raises
    ------
    Unauthorized : no token, or an unknown or revoked one.
    """
    if not token:
        raise Unauthorized("a bearer token is required: send 'Authorization: Bearer <token>'")
    with transaction(bind) as c:
        row = store.account_by_token_hash(c, hash_token(token))
        if row is None or not row["active"]:
            raise Unauthorized("unknown or revoked token")
        units = store.account_units(c, row["id"])
    return Account(int(row["id"]), row["name"], row["role"], units, row["ref"], True)


def get_account(bind: Engine | Connection, account_id: int) -> Account:
    """One account (active or not); NotFound when it does not exist."""
    with transaction(bind) as c:
        row = store.account_row(c, account_id)
        if row is None:
            raise NotFound(f"account {account_id} does not exist")
        units = store.account_units(c, row["id"])
    return Account(int(row["id"]), row["name"], row["role"], units, row["ref"], bool(row["active"]))


def rotate_token(bind: Engine | Connection, account_id: int) -> str:
    """Replace an account's token; returns the new one (shown once). NotFound if none."""
    token = new_token()
    with transaction(bind) as c:
        changed = store.set_token_hash(c, account_id, hash_token(token))
    if not changed:
        raise NotFound(f"account {account_id} does not exist")
    return token


def list_users(bind: Engine | Connection) -> pd.DataFrame:
    """Accounts with their units (comma-separated), no token hashes.

    Returns
    -------
    DataFrame: id, name, role, ref, active, created_at, units.
    """
    return pd.DataFrame(store.user_rows(bind), columns=list(store.USER_COLUMNS))
