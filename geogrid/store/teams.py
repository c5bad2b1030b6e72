"""The SQL of grid teams: ``team``, ``team_member``, ``team_grid`` (revision 0012).

Rows in, rows out, with bound parameters; the rules (who may manage a team, which roles
and grids are valid) are in :mod:`geogrid.core.teams` and :mod:`geogrid.services.teams`.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)

from geogrid.core.scope import Scope
from geogrid.store.engine import connection
from geogrid.store.scope import scope_code_condition
from geogrid.store.tables import metadata

__all__ = [
    "team",
    "team_member",
    "team_grid",
    "insert_team",
    "team_row",
    "team_rows",
    "member_rows",
    "grid_rows",
    "upsert_member",
    "delete_member",
    "add_grids",
    "account_row",
    "published_grids",
    "team_grid_codes",
    "teams_of",
]

team = Table(
    "team",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("name", Text, nullable=False),
    Column("community_code", Text, nullable=False),
    Column("created_by", Integer, ForeignKey("account.id", ondelete="SET NULL")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("community_code", "name", name="team_community_name"),
)
team_member = Table(
    "team_member",
    metadata,
    Column("team_id", BigInteger, ForeignKey("team.id", ondelete="CASCADE"), primary_key=True),
    Column("account_id", Integer, ForeignKey("account.id", ondelete="CASCADE"), primary_key=True),
    Column("role", Text, nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("team_member_account", team_member.c.account_id)
team_grid = Table(
    "team_grid",
    metadata,
    Column("team_id", BigInteger, ForeignKey("team.id", ondelete="CASCADE"), primary_key=True),
    Column("grid_code", Text, primary_key=True),
)
Index("team_grid_code", team_grid.c.grid_code)

Bind = Engine | Connection


def insert_team(
    conn: Connection, name: str, community_code: str, created_by: int | None
) -> int | None:
    """A new team's id; None when the community already has a team of that name."""
    v = conn.execute(
        text(
            "INSERT INTO team (name, community_code, created_by) VALUES (:n, :c, :by) "
            "ON CONFLICT ON CONSTRAINT team_community_name DO NOTHING RETURNING id"
        ),
        {"n": name, "c": community_code, "by": created_by},
    ).scalar()
    return None if v is None else int(v)


_TEAM = "SELECT t.id, t.name, t.community_code, t.created_by, t.created_at FROM team t "


def team_row(bind: Bind, team_id: int, *, lock: bool = False) -> dict[str, Any] | None:
    """One team, or None (``lock``: FOR UPDATE)."""
    with connection(bind) as c:
        row = (
            c.execute(
                text(_TEAM + "WHERE t.id = :id" + (" FOR UPDATE" if lock else "")),
                {"id": int(team_id)},
            )
            .mappings()
            .first()
        )
    return None if row is None else dict(row)


def team_rows(
    bind: Bind,
    *,
    scope: Scope,
    account_id: int | None,
    community_code: str | None = None,
    limit: int = 500,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Teams the caller may see, by community then name: those of communities inside the
    caller's units (admins; the whole city for city-wide roles), those the caller is a
    member of, and those covering one of the caller's grids (workers)."""
    cond, params = scope_code_condition(scope, "t.community_code")
    ors = [cond]
    if account_id is not None:
        ors.append(
            "EXISTS (SELECT 1 FROM team_member m WHERE m.team_id = t.id AND m.account_id = :me)"
        )
        params["me"] = int(account_id)
    if scope.kind == "units" and scope.units:
        ors.append(
            "EXISTS (SELECT 1 FROM team_grid g WHERE g.team_id = t.id "
            "AND g.grid_code = ANY(:_my_grids))"
        )
        params["_my_grids"] = list(scope.units)
    where = "(" + " OR ".join(ors) + ")"
    if community_code is not None:
        where += " AND t.community_code = :community"
        params["community"] = community_code
    with connection(bind) as c:
        rows = (
            c.execute(
                text(
                    _TEAM + f"WHERE {where} ORDER BY t.community_code, t.name, t.id "
                    "LIMIT :limit OFFSET :offset"
                ),
                {**params, "limit": int(limit), "offset": int(offset)},
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def member_rows(bind: Bind, team_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Members of the teams: team_id, account_id, name, account_role, role, added_at and
    the account's unit codes (``units``), by team then name."""
    if not team_ids:
        return []
    with connection(bind) as c:
        rows = (
            c.execute(
                text(
                    "SELECT m.team_id, m.account_id, a.name, a.role AS account_role, m.role, "
                    "m.added_at, a.active, COALESCE((SELECT array_agg(au.unit_code ORDER BY "
                    "au.unit_code) FROM account_unit au WHERE au.account_id = a.id), "
                    "'{}') AS units FROM team_member m JOIN account a ON a.id = m.account_id "
                    "WHERE m.team_id = ANY(:ids) ORDER BY m.team_id, a.name, a.id"
                ),
                {"ids": [int(i) for i in team_ids]},
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def grid_rows(bind: Bind, team_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Grids of the teams: team_id, grid_code and the grid's name in the published
    version (None when it is not there)."""
    if not team_ids:
        return []
    with connection(bind) as c:
        rows = (
            c.execute(
                text(
                    "SELECT g.team_id, g.grid_code, u.name FROM team_grid g "
                    "LEFT JOIN boundary_version v ON v.status = 'published' "
                    "LEFT JOIN unit u ON u.version_id = v.id AND u.code = g.grid_code "
                    "WHERE g.team_id = ANY(:ids) ORDER BY g.team_id, g.grid_code"
                ),
                {"ids": [int(i) for i in team_ids]},
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def upsert_member(conn: Connection, team_id: int, account_id: int, role: str) -> None:
    """Add a member, or change the role of one already there."""
    conn.execute(
        text(
            "INSERT INTO team_member (team_id, account_id, role) VALUES (:t, :a, :r) "
            "ON CONFLICT (team_id, account_id) DO UPDATE SET role = EXCLUDED.role"
        ),
        {"t": int(team_id), "a": int(account_id), "r": role},
    )


def delete_member(conn: Connection, team_id: int, account_id: int) -> bool:
    """Remove a member; False when the account was not one."""
    res = conn.execute(
        text("DELETE FROM team_member WHERE team_id = :t AND account_id = :a"),
        {"t": int(team_id), "a": int(account_id)},
    )
    return bool(res.rowcount)


def add_grids(
    conn: Connection, team_id: int, codes: Sequence[str], *, replace: bool = False
) -> None:
    """Add grids to a team (``replace``: the team covers exactly ``codes`` afterwards)."""
    if replace:
        conn.execute(
            text("DELETE FROM team_grid WHERE team_id = :t AND NOT (grid_code = ANY(:codes))"),
            {"t": int(team_id), "codes": list(codes)},
        )
    conn.execute(
        text(
            "INSERT INTO team_grid (team_id, grid_code) SELECT :t, c FROM unnest(CAST(:codes "
            "AS text[])) AS c ON CONFLICT DO NOTHING"
        ),
        {"t": int(team_id), "codes": list(codes)},
    )


def account_row(bind: Bind, account_id: int) -> dict[str, Any] | None:
    """id, name, role, active and ``units`` of an account, or None."""
    with connection(bind) as c:
        row = (
            c.execute(
                text(
                    "SELECT a.id, a.name, a.role, a.active, COALESCE((SELECT array_agg("
                    "au.unit_code ORDER BY au.unit_code) FROM account_unit au WHERE "
                    "au.account_id = a.id), '{}') AS units FROM account a WHERE a.id = :id"
                ),
                {"id": int(account_id)},
            )
            .mappings()
            .first()
        )
    return None if row is None else dict(row)


def published_grids(bind: Bind, codes: Sequence[str]) -> list[str]:
    """The ``codes`` that are grids of the published version."""
    with connection(bind) as c:
        rows = c.execute(
            text(
                "SELECT u.code FROM unit u JOIN boundary_version v ON v.id = u.version_id "
                "AND v.status = 'published' WHERE u.level = 'grid' AND u.code = ANY(:codes)"
            ),
            {"codes": list(codes)},
        ).all()
    return sorted(str(r[0]) for r in rows)


def team_grid_codes(bind: Bind, account_id: int) -> list[str]:
    """The grids of every team the account is a member of."""
    with connection(bind) as c:
        rows = c.execute(
            text(
                "SELECT DISTINCT g.grid_code FROM team_member m JOIN team_grid g ON "
                "g.team_id = m.team_id WHERE m.account_id = :a ORDER BY 1"
            ),
            {"a": int(account_id)},
        ).all()
    return [str(r[0]) for r in rows]


def teams_of(bind: Bind, account_id: int) -> list[dict[str, Any]]:
    """The teams an account is a member of: id, name, community_code and its role."""
    with connection(bind) as c:
        rows = (
            c.execute(
                text(
                    "SELECT t.id, t.name, t.community_code, m.role FROM team_member m JOIN "
                    "team t ON t.id = m.team_id WHERE m.account_id = :a ORDER BY t.name, t.id"
                ),
                {"a": int(account_id)},
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]
