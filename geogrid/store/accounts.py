"""Accounts in the database: rows of ``account``, ``account_unit``, ``account_token`` and
``web_session`` in and out.

SQL only; the rules (roles, unit codes, password policy, token lifetimes, lock-out) are in
:mod:`geogrid.core.accounts`, :mod:`geogrid.core.passwords` and
:mod:`geogrid.core.credentials`, the workflows in :mod:`geogrid.services.accounts`.
Secrets never reach the database: tokens and session ids are stored as SHA-256 digests,
passwords as argon2id hashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, literal_column, or_, select, text

from geogrid.core.scope import Scope
from geogrid.store.engine import connection
from geogrid.store.tables import account, account_token, account_unit, web_session

__all__ = [
    "USER_COLUMNS",
    "TOKEN_COLUMNS",
    "insert_account",
    "account_id_by_ref",
    "account_id_by_username",
    "find_account_ids",
    "account_row",
    "account_units",
    "published_unit_codes",
    "user_rows",
    "accounts_for_unit",
    "insert_token",
    "token_by_hash",
    "touch_token",
    "token_row",
    "token_rows",
    "revoke_token",
    "revoke_account_tokens",
    "login_row",
    "record_login_failure",
    "record_login_success",
    "set_password",
    "password_hash_of",
    "unlock",
    "insert_session",
    "session_by_hash",
    "revoke_session",
    "revoke_account_sessions",
    "prune_sessions",
]

#: columns of the rows :func:`user_rows` returns (no hashes)
USER_COLUMNS = ("id", "name", "username", "role", "ref", "active", "created_at", "units")
#: columns of the rows :func:`token_rows` returns (no hashes)
TOKEN_COLUMNS = (
    "id",
    "account_id",
    "label",
    "created_at",
    "expires_at",
    "revoked_at",
    "last_used_at",
)
_ACCOUNT = (
    account.c.id,
    account.c.name,
    account.c.role,
    account.c.ref,
    account.c.active,
    account.c.username,
)
_TOKEN = tuple(account_token.c[c] for c in TOKEN_COLUMNS)
#: last_used_at is written at most once a minute per token (reads stay cheap)
_TOUCH_EVERY = text("interval '60 seconds'")


def insert_account(
    conn: Connection,
    *,
    name: str,
    role: str,
    ref: str | None,
    units: Sequence[str] = (),
    username: str | None = None,
    password_hash: str | None = None,
) -> int:
    """Insert an account bound to ``units``; returns its id."""
    aid = conn.execute(
        account.insert()
        .values(
            name=name,
            role=role,
            ref=ref,
            username=username,
            password_hash=password_hash,
            password_changed_at=func.now() if password_hash else None,
        )
        .returning(account.c.id)
    ).scalar_one()
    if units:
        conn.execute(account_unit.insert(), [{"account_id": aid, "unit_code": u} for u in units])
    return int(aid)


def account_id_by_ref(conn: Connection, ref: str) -> int | None:
    """The id of the account with this external reference (None if none)."""
    aid = conn.execute(select(account.c.id).where(account.c.ref == ref)).scalar_one_or_none()
    return None if aid is None else int(aid)


def account_id_by_username(conn: Connection, username: str) -> int | None:
    """The id of the account with this username (None if none)."""
    aid = conn.execute(
        select(account.c.id).where(account.c.username == username)
    ).scalar_one_or_none()
    return None if aid is None else int(aid)


def find_account_ids(conn: Connection, key: str) -> list[int]:
    """Ids of the accounts whose username, ref or name is ``key`` (or whose id it is)."""
    conds = [account.c.username == key.lower(), account.c.ref == key, account.c.name == key]
    if key.isdigit() and len(key) < 10:
        conds.append(account.c.id == int(key))
    rows = conn.execute(select(account.c.id).where(or_(*conds)).order_by(account.c.id))
    return [int(r) for r in rows.scalars()]


def account_row(bind: Engine | Connection, account_id: int) -> dict[str, Any] | None:
    """id, name, role, ref, active, username of one account (None if none)."""
    with connection(bind) as c:
        first = (
            c.execute(select(*_ACCOUNT).where(account.c.id == int(account_id))).mappings().first()
        )
    return None if first is None else dict(first)


#: the unit codes of the account ``{a}`` (an SQL expression), sorted
_UNITS_OF = (
    "SELECT unit_code FROM account_unit WHERE account_id = {a} "
    "UNION SELECT g.grid_code FROM team_member m "
    "JOIN team_grid g ON g.team_id = m.team_id WHERE m.account_id = {a} "
    "ORDER BY 1"
)


def account_units(bind: Engine | Connection, account_id: int) -> tuple[str, ...]:
    """The unit codes an account acts on, sorted: the units it is bound to, and the grids
    of the grid teams it is a member of (a team covers several grids and its tasks route
    to every member: issue 13)."""
    with connection(bind) as c:
        rows = (
            c.execute(
                text(_UNITS_OF.format(a=":a")),
                {"a": int(account_id)},
            )
            .scalars()
            .all()
        )
    return tuple(str(r) for r in rows)


def published_unit_codes(conn: Connection, level: str, codes: Sequence[str]) -> set[str]:
    """Those of ``codes`` that are units of ``level`` in the published boundary version."""
    rows = conn.execute(
        text(
            "SELECT u.code FROM unit u JOIN boundary_version v ON v.id = u.version_id "
            "WHERE v.status = 'published' AND u.level = :level AND u.code = ANY(:codes)"
        ),
        {"level": level, "codes": list(codes)},
    )
    return {str(r) for r in rows.scalars()}


def user_rows(bind: Engine | Connection, *, scope: Scope) -> list[dict[str, Any]]:
    """The accounts ``scope`` may list, with their units as a comma-separated text
    (:data:`USER_COLUMNS`): every account for a city-wide scope; for a unit scope the
    accounts bound to a unit inside one of the scope's units (codes are hierarchical, so
    a unit lies inside another when its code starts with the other's); none for the
    public."""
    if scope.kind == "public":
        return []
    where, params = "TRUE", {}
    if scope.kind == "units":
        where = (
            "EXISTS (SELECT 1 FROM account_unit x, unnest(CAST(:units AS text[])) AS s(code) "
            "WHERE x.account_id = a.id AND left(x.unit_code, length(s.code)) = s.code)"
        )
        params = {"units": list(scope.units)}
    with connection(bind) as c:
        rows = (
            c.execute(
                text(
                    "SELECT a.id, a.name, a.username, a.role, a.ref, a.active, a.created_at, "
                    "coalesce(string_agg(au.unit_code, ',' ORDER BY au.unit_code), '') AS units "
                    "FROM account a LEFT JOIN account_unit au ON au.account_id = a.id "
                    f"WHERE {where} GROUP BY a.id ORDER BY a.id"
                ),
                params,
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


# --------------------------------------------------------------------------- tokens
def insert_token(
    conn: Connection,
    account_id: int,
    token_hash: str,
    *,
    label: str | None,
    expires_at: datetime | None,
) -> dict[str, Any]:
    """Store a token's hash; returns its row (:data:`TOKEN_COLUMNS`)."""
    row = (
        conn.execute(
            account_token.insert()
            .values(
                account_id=int(account_id),
                token_hash=token_hash,
                label=label,
                expires_at=expires_at,
            )
            .returning(*_TOKEN)
        )
        .mappings()
        .one()
    )
    return dict(row)


def token_by_hash(conn: Connection, token_hash: str) -> dict[str, Any] | None:
    """The token with this hash joined to its account: token_id, expires_at, revoked_at,
    last_used_at, the account's id, name, role, ref, active, username and ``units`` (as
    :func:`account_units`, in the same query: one round trip per sign-in check, issue 10)
    — None if none."""
    row = (
        conn.execute(
            select(
                account_token.c.id.label("token_id"),
                account_token.c.expires_at,
                account_token.c.revoked_at,
                account_token.c.last_used_at,
                *_ACCOUNT,
                literal_column(f"ARRAY({_UNITS_OF.format(a='account.id')})").label("units"),
            )
            .join(account, account.c.id == account_token.c.account_id)
            .where(account_token.c.token_hash == token_hash)
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def touch_token(conn: Connection, token_id: int) -> None:
    """Set a token's ``last_used_at`` to now, unless it was set less than a minute ago."""
    conn.execute(
        account_token.update()
        .where(
            account_token.c.id == int(token_id),
            or_(
                account_token.c.last_used_at.is_(None),
                account_token.c.last_used_at < func.now() - _TOUCH_EVERY,
            ),
        )
        .values(last_used_at=func.now())
    )


def token_row(
    conn: Connection, token_id: int, *, for_update: bool = False
) -> dict[str, Any] | None:
    """One token's row (:data:`TOKEN_COLUMNS`; None if none)."""
    q = select(*_TOKEN).where(account_token.c.id == int(token_id))
    if for_update:
        q = q.with_for_update()
    row = conn.execute(q).mappings().first()
    return None if row is None else dict(row)


def token_rows(bind: Engine | Connection, account_id: int | None = None) -> list[dict[str, Any]]:
    """Tokens (:data:`TOKEN_COLUMNS` plus the account's ``name``), of one account or all."""
    q = select(*_TOKEN, account.c.name).join(account, account.c.id == account_token.c.account_id)
    if account_id is not None:
        q = q.where(account_token.c.account_id == int(account_id))
    with connection(bind) as c:
        rows = c.execute(q.order_by(account_token.c.id)).mappings().all()
    return [dict(r) for r in rows]


def revoke_token(conn: Connection, token_id: int) -> int:
    """Revoke one live token; returns the number revoked (0 or 1)."""
    result = conn.execute(
        account_token.update()
        .where(account_token.c.id == int(token_id), account_token.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return int(result.rowcount)


def revoke_account_tokens(conn: Connection, account_id: int) -> int:
    """Revoke every live token of an account; returns how many."""
    result = conn.execute(
        account_token.update()
        .where(
            account_token.c.account_id == int(account_id),
            account_token.c.revoked_at.is_(None),
        )
        .values(revoked_at=func.now())
    )
    return int(result.rowcount)


# --------------------------------------------------------------------------- passwords
def login_row(conn: Connection, username: str) -> dict[str, Any] | None:
    """The account signing in (locked for the transaction): its public columns plus
    password_hash, failed_logins, locked_until and the database's ``now``."""
    row = (
        conn.execute(
            select(
                *_ACCOUNT,
                account.c.password_hash,
                account.c.failed_logins,
                account.c.locked_until,
                func.now().label("now"),
            )
            .where(account.c.username == username)
            .with_for_update()
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def record_login_failure(
    conn: Connection, account_id: int, failed_logins: int, locked_until: datetime | None
) -> None:
    """Store the count of failures in a row and the lock (None: not locked)."""
    conn.execute(
        account.update()
        .where(account.c.id == int(account_id))
        .values(failed_logins=int(failed_logins), locked_until=locked_until)
    )


def record_login_success(
    conn: Connection, account_id: int, new_password_hash: str | None = None
) -> None:
    """Clear failures and lock; store an upgraded password hash when given."""
    values: dict[str, Any] = {"failed_logins": 0, "locked_until": None}
    if new_password_hash:
        values["password_hash"] = new_password_hash
    conn.execute(account.update().where(account.c.id == int(account_id)).values(**values))


def set_password(
    conn: Connection, account_id: int, password_hash: str, username: str | None = None
) -> int:
    """Replace an account's password hash (and set its username when given), clear the
    lock; returns the number of accounts changed (0 or 1)."""
    values: dict[str, Any] = {
        "password_hash": password_hash,
        "password_changed_at": func.now(),
        "failed_logins": 0,
        "locked_until": None,
    }
    if username is not None:
        values["username"] = username
    result = conn.execute(account.update().where(account.c.id == int(account_id)).values(**values))
    return int(result.rowcount)


def password_hash_of(conn: Connection, account_id: int) -> str | None:
    """The stored password hash of an account (None without one)."""
    h = conn.execute(
        select(account.c.password_hash).where(account.c.id == int(account_id)).with_for_update()
    ).scalar_one_or_none()
    return None if h is None else str(h)


def unlock(conn: Connection, account_id: int) -> int:
    """Clear an account's failures and lock; returns the number changed (0 or 1)."""
    result = conn.execute(
        account.update()
        .where(account.c.id == int(account_id))
        .values(failed_logins=0, locked_until=None)
    )
    return int(result.rowcount)


# --------------------------------------------------------------------------- sessions
def insert_session(
    conn: Connection,
    *,
    session_hash: str,
    account_id: int,
    csrf_hash: str,
    expires_at: datetime,
    ip: str | None,
) -> None:
    """Store a new browser session (its id and CSRF token as hashes)."""
    conn.execute(
        web_session.insert().values(
            id=session_hash,
            account_id=int(account_id),
            csrf_hash=csrf_hash,
            expires_at=expires_at,
            ip=ip,
        )
    )


def session_by_hash(conn: Connection, session_hash: str) -> dict[str, Any] | None:
    """A live session (not revoked, not expired) joined to its account: csrf_hash,
    expires_at and the account's public columns (None if none)."""
    row = (
        conn.execute(
            select(web_session.c.csrf_hash, web_session.c.expires_at, *_ACCOUNT)
            .join(account, account.c.id == web_session.c.account_id)
            .where(
                and_(
                    web_session.c.id == session_hash,
                    web_session.c.revoked_at.is_(None),
                    web_session.c.expires_at > func.now(),
                )
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def revoke_session(conn: Connection, session_hash: str) -> int:
    """End one session; returns the number ended (0 or 1)."""
    result = conn.execute(
        web_session.update()
        .where(web_session.c.id == session_hash, web_session.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return int(result.rowcount)


def revoke_account_sessions(conn: Connection, account_id: int, keep_hash: str | None = None) -> int:
    """End every live session of an account except ``keep_hash``; returns how many."""
    q = web_session.update().where(
        web_session.c.account_id == int(account_id), web_session.c.revoked_at.is_(None)
    )
    if keep_hash is not None:
        q = q.where(web_session.c.id != keep_hash)
    return int(conn.execute(q.values(revoked_at=func.now())).rowcount)


def prune_sessions(conn: Connection, account_id: int) -> int:
    """Delete an account's sessions that ended (expired or revoked) over a day ago."""
    result = conn.execute(
        web_session.delete().where(
            web_session.c.account_id == int(account_id),
            or_(
                web_session.c.expires_at < func.now() - text("interval '1 day'"),
                web_session.c.revoked_at < func.now() - text("interval '1 day'"),
            ),
        )
    )
    return int(result.rowcount)
