"""Terminals in the database: rows of ``terminal`` and ``terminal_enrolment`` (revision
0010) in and out.

SQL only; the rules (code format, lifetimes) are in :mod:`geogrid.core.terminals`, the
workflows in :mod:`geogrid.services.terminals`. Codes are stored as SHA-256 digests only;
a device's credential is an ``account_token`` row (:mod:`geogrid.store.accounts`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Interval,
    Table,
    Text,
    bindparam,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by

from geogrid.core.scope import Scope
from geogrid.store.engine import connection
from geogrid.store.scope import scope_code_condition
from geogrid.store.tables import account, account_token, account_unit, metadata

__all__ = [
    "terminal",
    "terminal_enrolment",
    "TERMINAL_COLUMNS",
    "insert_enrolment",
    "enrolment_by_hash",
    "use_enrolment",
    "insert_terminal",
    "terminal_row",
    "terminal_rows",
    "revoke_terminal",
    "set_token",
    "terminal_of_token",
    "touch_terminal",
]

terminal = Table(
    "terminal",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("account_id", Integer, ForeignKey("account.id", ondelete="CASCADE"), nullable=False),
    Column("label", Text),
    Column("token_id", Integer, ForeignKey("account_token.id", ondelete="SET NULL"), unique=True),
    Column("app_version", Text),
    Column("user_agent", Text),
    Column("enrolled_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("enrolment_id", BigInteger),
    Column("last_seen_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_reason", Text),
    Column("revoked_by", Integer, ForeignKey("account.id", ondelete="SET NULL")),
)
Index("terminal_account", terminal.c.account_id)

terminal_enrolment = Table(
    "terminal_enrolment",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("account_id", Integer, ForeignKey("account.id", ondelete="CASCADE"), nullable=False),
    Column("code_hash", Text, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    Column("created_by", Integer, ForeignKey("account.id", ondelete="SET NULL")),
)
Index("terminal_enrolment_account", terminal_enrolment.c.account_id)

#: columns of the rows :func:`terminal_row` and :func:`terminal_rows` return
TERMINAL_COLUMNS = (
    "id",
    "account_id",
    "account_name",
    "label",
    "token_id",
    "app_version",
    "user_agent",
    "enrolled_at",
    "last_seen_at",
    "revoked_at",
    "revoked_reason",
    "token_revoked_at",
    "token_expires_at",
    "units",
)


def _units() -> Any:
    """The account's unit codes, sorted (a correlated scalar subquery)."""
    return (
        select(
            func.array_agg(aggregate_order_by(account_unit.c.unit_code, account_unit.c.unit_code))
        )
        .where(account_unit.c.account_id == terminal.c.account_id)
        .scalar_subquery()
    )


def _select() -> Any:
    return select(
        terminal.c.id,
        terminal.c.account_id,
        account.c.name.label("account_name"),
        terminal.c.label,
        terminal.c.token_id,
        terminal.c.app_version,
        terminal.c.user_agent,
        terminal.c.enrolled_at,
        terminal.c.last_seen_at,
        terminal.c.revoked_at,
        terminal.c.revoked_reason,
        account_token.c.revoked_at.label("token_revoked_at"),
        account_token.c.expires_at.label("token_expires_at"),
        _units().label("units"),
    ).select_from(
        terminal.join(account, account.c.id == terminal.c.account_id).outerjoin(
            account_token, account_token.c.id == terminal.c.token_id
        )
    )


def insert_enrolment(
    conn: Connection,
    *,
    account_id: int,
    code_hash: str,
    expires_at: datetime,
    created_by: int | None,
) -> int:
    """Store an enrolment code's digest; returns its id."""
    return int(
        conn.execute(
            terminal_enrolment.insert()
            .values(
                account_id=int(account_id),
                code_hash=code_hash,
                expires_at=expires_at,
                created_by=created_by,
            )
            .returning(terminal_enrolment.c.id)
        ).scalar_one()
    )


def enrolment_by_hash(conn: Connection, code_hash: str) -> dict[str, Any] | None:
    """The enrolment with this digest, locked for the transaction, with the database's
    ``now`` (None if none)."""
    row = (
        conn.execute(
            select(
                terminal_enrolment.c.id,
                terminal_enrolment.c.account_id,
                terminal_enrolment.c.expires_at,
                terminal_enrolment.c.used_at,
                func.now().label("now"),
            )
            .where(terminal_enrolment.c.code_hash == code_hash)
            .with_for_update()
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def use_enrolment(conn: Connection, enrolment_id: int) -> None:
    """Mark an enrolment code used (now)."""
    conn.execute(
        terminal_enrolment.update()
        .where(terminal_enrolment.c.id == int(enrolment_id))
        .values(used_at=func.now())
    )


def insert_terminal(
    conn: Connection,
    *,
    account_id: int,
    label: str | None,
    token_id: int,
    app_version: str | None,
    user_agent: str | None,
    enrolment_id: int | None,
) -> int:
    """Store an enrolled device; returns its id."""
    return int(
        conn.execute(
            terminal.insert()
            .values(
                account_id=int(account_id),
                label=label,
                token_id=int(token_id),
                app_version=app_version,
                user_agent=user_agent,
                enrolment_id=enrolment_id,
                last_seen_at=func.now(),
            )
            .returning(terminal.c.id)
        ).scalar_one()
    )


def terminal_row(
    bind: Engine | Connection, terminal_id: int, *, for_update: bool = False
) -> dict[str, Any] | None:
    """One terminal (:data:`TERMINAL_COLUMNS`; None if none)."""
    q = _select().where(terminal.c.id == int(terminal_id))
    if for_update:
        q = q.with_for_update(of=terminal)
    with connection(bind) as c:
        row = c.execute(q).mappings().first()
    return None if row is None else dict(row)


def terminal_rows(
    bind: Engine | Connection,
    *,
    scope: Scope,
    account_id: int | None = None,
    unit: str | None = None,
    only_account: int | None = None,
) -> list[dict[str, Any]]:
    """Terminals (:data:`TERMINAL_COLUMNS`) of the accounts bound to a unit inside
    ``scope`` (``only_account``: that account's alone, whatever its units), of one account
    and/or of the accounts with a unit inside ``unit``; newest first."""
    q = _select()
    if only_account is not None:
        q = q.where(terminal.c.account_id == int(only_account))
    elif scope.kind != "city":
        cond, params = scope_code_condition(scope, "au.unit_code")
        q = q.where(
            text(
                "EXISTS (SELECT 1 FROM account_unit au WHERE au.account_id = "
                f"terminal.account_id AND {cond})"
            ).bindparams(**params)
            if params
            else text(cond)
        )
    if account_id is not None:
        q = q.where(terminal.c.account_id == int(account_id))
    if unit:
        q = q.where(
            text(
                "EXISTS (SELECT 1 FROM account_unit au2 WHERE au2.account_id = "
                "terminal.account_id AND left(au2.unit_code, length(:_unit)) = :_unit)"
            ).bindparams(_unit=unit)
        )
    with connection(bind) as c:
        rows = c.execute(q.order_by(terminal.c.id.desc())).mappings().all()
    return [dict(r) for r in rows]


def revoke_terminal(
    conn: Connection, terminal_id: int, *, reason: str | None, revoked_by: int | None
) -> None:
    """Revoke a terminal (its row; its token is revoked by the caller)."""
    conn.execute(
        terminal.update()
        .where(terminal.c.id == int(terminal_id), terminal.c.revoked_at.is_(None))
        .values(revoked_at=func.now(), revoked_reason=reason, revoked_by=revoked_by)
    )


def set_token(conn: Connection, terminal_id: int, token_id: int) -> None:
    """Bind a terminal to a (new) token."""
    conn.execute(
        terminal.update().where(terminal.c.id == int(terminal_id)).values(token_id=int(token_id))
    )


def terminal_of_token(conn: Connection, token_id: int) -> dict[str, Any] | None:
    """id, revoked_at (the device's, else its token's) of the terminal holding a token."""
    row = (
        conn.execute(
            select(
                terminal.c.id,
                func.coalesce(terminal.c.revoked_at, account_token.c.revoked_at).label(
                    "revoked_at"
                ),
            )
            .select_from(terminal.join(account_token, account_token.c.id == terminal.c.token_id))
            .where(terminal.c.token_id == int(token_id))
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def touch_terminal(
    conn: Connection,
    token_id: int,
    *,
    app_version: str | None,
    user_agent: str | None,
    every: timedelta,
) -> None:
    """Set the device's ``last_seen_at`` (and app version and user agent when sent),
    unless it was seen less than ``every`` ago with the same version; a token
    that is no terminal's changes nothing."""
    stale = or_(
        terminal.c.last_seen_at.is_(None),
        terminal.c.last_seen_at < func.now() - bindparam("_every", every, type_=Interval),
    )
    changed = (
        terminal.c.app_version.is_distinct_from(app_version) if app_version is not None else None
    )
    values: dict[str, Any] = {"last_seen_at": func.now()}
    if app_version is not None:
        values["app_version"] = app_version
    if user_agent is not None:
        values["user_agent"] = user_agent
    conn.execute(
        terminal.update()
        .where(
            terminal.c.token_id == int(token_id),
            stale if changed is None else or_(stale, changed),
        )
        .values(**values)
    )
