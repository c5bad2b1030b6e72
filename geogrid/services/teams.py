"""Grid teams: create a team for a community, add or remove its members in named roles,
set the grids it covers, and list the teams a caller may see.

A team belongs to one community; its members are accounts of that community (grid
workers, the community's staff) in a role (:data:`geogrid.core.teams.TEAM_ROLES` or a
community's own); it covers one or more grids of the community, and the open incidents
assigned to those grids become tasks of every member (:mod:`geogrid.services.tasks`).

Managed by the admins of the community (and the street and district above it) and by
``admin``; a team outside the caller's units does not exist for them (404). Members'
names are personal: clear for the community's admins, admin and the member themself,
masked for everyone else (audited clear reads).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine

from geogrid.core import teams as core
from geogrid.core.accounts import UNIT_ROLES, Account
from geogrid.core.hierarchy import CODE_LENGTH
from geogrid.core.masking import mask_name
from geogrid.core.scope import Scope
from geogrid.errors import Conflict, Forbidden, InvalidInput, NotFound
from geogrid.services import audit, idempotency
from geogrid.store import teams as store
from geogrid.store.engine import transaction

__all__ = [
    "MANAGING_ROLES",
    "create_team",
    "list_teams",
    "get_team",
    "add_member",
    "remove_member",
    "set_grids",
    "grids_of",
]

Bind = Engine | Connection

#: roles that may manage teams (the unit-bound ones within their units)
MANAGING_ROLES = frozenset({"community_admin", "street_admin", "district_admin", "admin"})


def _may_manage(account: Account, community_code: str) -> bool:
    if account.role == "admin":
        return account.active
    if account.role not in MANAGING_ROLES or not account.active:
        return False
    return any(community_code.startswith(u) for u in account.units)


def _require_role(account: Account) -> None:
    if account.role not in MANAGING_ROLES:
        raise Forbidden(
            f"role {account.role!r} may not manage teams: the community's admins (and the "
            "street's and district's) and admin may"
        )


def _check_community(value: Any) -> str:
    s = str(value or "").strip()
    n = CODE_LENGTH["community"]
    if not (s.isdigit() and len(s) == n):
        raise InvalidInput("community_code", value, f"a community code of {n} digits")
    return s


def _team_for_manager(conn: Connection, account: Account, team_id: int) -> dict[str, Any]:
    _require_role(account)
    row = store.team_row(conn, team_id, lock=True)
    if row is None or not _may_manage(account, row["community_code"]):
        raise NotFound(f"team {team_id} does not exist (or is outside your units)")
    return row


def _view(
    conn: Bind, scope: Scope, teams: list[dict[str, Any]], *, action: str
) -> list[dict[str, Any]]:
    """Teams with their members and grids, names as ``scope`` may see them."""
    ids = [int(t["id"]) for t in teams]
    members: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for m in store.member_rows(conn, ids):
        members[int(m["team_id"])].append(m)
    grids: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for g in store.grid_rows(conn, ids):
        grids[int(g["team_id"])].append({"grid_code": g["grid_code"], "name": g["name"]})
    out = []
    clear_ids = []
    for t in teams:
        clear = scope.personal_clear({"community_code": t["community_code"]})
        if clear:
            clear_ids.append(int(t["id"]))
        ms = []
        for m in members[int(t["id"])]:
            own = scope.account_id is not None and int(m["account_id"]) == scope.account_id
            ms.append(
                {
                    "account_id": int(m["account_id"]),
                    "name": m["name"] if (clear or own) else mask_name(m["name"]),
                    "account_role": m["account_role"],
                    "role": m["role"],
                    "role_label": core.role_label(m["role"]),
                    "active": bool(m["active"]),
                    "added_at": m["added_at"],
                }
            )
        out.append({**t, "members": ms, "grids": grids[int(t["id"])]})
    audit.record_read(conn, scope, "team", clear_ids, ["members.name"], {"via": action})
    return out


def create_team(
    bind: Bind,
    *,
    name: str,
    community_code: str,
    actor: Account,
    grids: list[str] | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """A new team of a community (optionally with its grids). Forbidden for roles that do
    not manage teams; NotFound-free: a community outside the admin's units is Forbidden
    (it names no record). Conflict when the community has a team of that name."""
    nm = core.check_team_name(name)
    community = _check_community(community_code)
    codes = core.check_grid_codes(grids, community) if grids else []
    _require_role(actor)
    if not _may_manage(actor, community):
        raise Forbidden(
            f"{actor.role} {actor.name!r} may not manage the teams of community {community}: "
            f"it is outside their units {', '.join(actor.units)}"
        )
    principal = idempotency.principal_of(actor.id)
    with transaction(bind) as c:
        first = idempotency.replay_or_claim(
            c,
            idempotency_key,
            principal=principal,
            operation="create_team",
            request={"name": nm, "community_code": community, "grids": codes},
        )
        if first is not None:
            return first
        if codes:
            _check_published(c, codes)
        tid = store.insert_team(c, nm, community, actor.id)
        if tid is None:
            raise Conflict(f"community {community} already has a team named {nm!r}")
        if codes:
            store.add_grids(c, tid, codes)
        audit.record(c, actor=actor, action="team.create", resource="team", ids=[tid])
        out = _one(c, Scope.of(actor), tid)
        idempotency.remember(c, idempotency_key, principal=principal, answer=out, resource_id=tid)
    return out


def _one(conn: Connection, scope: Scope, team_id: int) -> dict[str, Any]:
    row = store.team_row(conn, team_id)
    if row is None:
        raise NotFound(f"team {team_id} does not exist (or is outside your units)")
    return _view(conn, scope, [row], action="get")[0]


def _check_published(conn: Connection, codes: list[str]) -> None:
    known = set(store.published_grids(conn, codes))
    missing = [c for c in codes if c not in known]
    if missing:
        raise InvalidInput("grids", ",".join(missing), "grids of the published boundaries")


def list_teams(
    bind: Bind,
    *,
    scope: Scope,
    community_code: str | None = None,
    limit: int = 500,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The teams the caller may see (their communities' teams for admins, their own teams
    and those covering their grids for workers, every team for city-wide roles), with
    members (names masked outside the caller's units) and grids."""
    community = _check_community(community_code) if community_code else None
    with transaction(bind) as c:
        rows = store.team_rows(
            c,
            scope=scope,
            account_id=scope.account_id,
            community_code=community,
            limit=limit,
            offset=offset,
        )
        return _view(c, scope, rows, action="list")


def get_team(bind: Bind, team_id: int, *, scope: Scope) -> dict[str, Any]:
    """One team as :func:`list_teams` shows it (NotFound outside the caller's view)."""
    with transaction(bind) as c:
        rows = [
            r
            for r in store.team_rows(c, scope=scope, account_id=scope.account_id, limit=10_000)
            if int(r["id"]) == int(team_id)
        ]
        if not rows:
            raise NotFound(f"team {team_id} does not exist (or is outside your units)")
        return _view(c, scope, rows, action="get")[0]


def _check_member_account(row: Mapping[str, Any] | None, account_id: int, community: str) -> None:
    allowed = f"an active account of community {community} (a grid worker or its staff)"
    if row is None or not row["active"] or row["role"] not in UNIT_ROLES:
        raise InvalidInput("account_id", account_id, allowed)
    units = list(row["units"] or [])
    if not units or not all(u.startswith(community) for u in units):
        raise InvalidInput("account_id", account_id, allowed)


def add_member(
    bind: Bind, team_id: int, *, account_id: int, role: str, actor: Account
) -> dict[str, Any]:
    """Add an account to a team in ``role`` (or change its role). The account must be an
    active grid worker or staff member of the team's community."""
    r = core.check_team_role(role)
    with transaction(bind) as c:
        t = _team_for_manager(c, actor, team_id)
        _check_member_account(store.account_row(c, account_id), account_id, t["community_code"])
        store.upsert_member(c, team_id, account_id, r)
        audit.record(
            c,
            actor=actor,
            action="team.member_add",
            resource="team",
            ids=[team_id],
            detail={"account_id": int(account_id), "role": r},
        )
        return _one(c, Scope.of(actor), team_id)


def remove_member(bind: Bind, team_id: int, *, account_id: int, actor: Account) -> dict[str, Any]:
    """Remove an account from a team (nothing to do when it is not a member)."""
    with transaction(bind) as c:
        _team_for_manager(c, actor, team_id)
        if store.delete_member(c, team_id, account_id):
            audit.record(
                c,
                actor=actor,
                action="team.member_remove",
                resource="team",
                ids=[team_id],
                detail={"account_id": int(account_id)},
            )
        return _one(c, Scope.of(actor), team_id)


def set_grids(
    bind: Bind, team_id: int, *, grids: list[str], actor: Account, replace: bool = False
) -> dict[str, Any]:
    """Add grids of the team's community to the team (``replace``: exactly these)."""
    with transaction(bind) as c:
        t = _team_for_manager(c, actor, team_id)
        codes = core.check_grid_codes(grids, t["community_code"])
        _check_published(c, codes)
        store.add_grids(c, team_id, codes, replace=replace)
        audit.record(
            c,
            actor=actor,
            action="team.grids",
            resource="team",
            ids=[team_id],
            detail={"grids": codes, "replace": replace},
        )
        return _one(c, Scope.of(actor), team_id)


def grids_of(bind: Bind, account_id: int) -> list[str]:
    """The grids the account's teams cover."""
    return store.team_grid_codes(bind, account_id)
