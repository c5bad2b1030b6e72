"""Grid teams (网格团队): several people in named roles for one or more grids of a
community; tasks of the team's grids route to its members. Managed by the community's
admins (and the street's and district's above it) and by admin; read by staff (names
masked outside the caller's units)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status

from api.auth import AccountDep
from api.deps import EngineDep
from api.models.common import error_responses
from api.models.idempotency import IdempotencyKeyHeader
from api.models.teams import GridsIn, MemberIn, Team, TeamIn
from geogrid.core.scope import Scope
from geogrid.services import teams

__all__ = ["router"]

router = APIRouter(tags=["teams"])

TeamId = Annotated[int, Path(ge=1, le=2**62, description="team id", examples=[1])]
AccountId = Annotated[int, Path(ge=1, le=2**31 - 1, description="account id", examples=[1])]


@router.post(
    "/teams",
    status_code=status.HTTP_201_CREATED,
    response_model=Team,
    summary="Create a grid team",
    responses=error_responses(400, 401, 403, 409),
)
def create_team(
    body: TeamIn,
    engine: EngineDep,
    account: AccountDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """A new team of a community (403 outside the caller's units; 409 when the community
    has a team of that name)."""
    return teams.create_team(
        engine,
        name=body.name,
        community_code=body.community_code,
        grids=body.grids,
        actor=account,
        idempotency_key=idempotency_key,
    )


@router.get(
    "/teams",
    response_model=list[Team],
    summary="Teams the caller may see",
    responses=error_responses(400, 401),
)
def list_teams(
    engine: EngineDep,
    account: AccountDep,
    community: Annotated[
        str | None,
        Query(max_length=12, description="only this community's", examples=["450902001001"]),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="at most this many teams", examples=[100])
    ] = 500,
    offset: Annotated[
        int, Query(ge=0, le=10_000_000, description="skip this many teams first", examples=[0])
    ] = 0,
) -> list[dict[str, Any]]:
    """Teams of the caller's communities (admins), the caller's own teams and those
    covering their grids (workers), every team (city-wide roles, names masked)."""
    return teams.list_teams(
        engine, scope=Scope.of(account), community_code=community, limit=limit, offset=offset
    )


@router.post(
    "/teams/{team_id}/members",
    response_model=Team,
    summary="Add a member (or change their role)",
    responses=error_responses(400, 401, 403, 404),
)
def add_member(
    team_id: TeamId, body: MemberIn, engine: EngineDep, account: AccountDep
) -> dict[str, Any]:
    """Add an account of the team's community in a role (a known role code or the
    community's own); adding again changes the role."""
    return teams.add_member(
        engine, team_id, account_id=body.account_id, role=body.role, actor=account
    )


@router.delete(
    "/teams/{team_id}/members/{account_id}",
    response_model=Team,
    summary="Remove a member",
    responses=error_responses(401, 403, 404),
)
def remove_member(
    team_id: TeamId, account_id: AccountId, engine: EngineDep, account: AccountDep
) -> dict[str, Any]:
    """Remove an account from the team (nothing happens when it is not a member)."""
    return teams.remove_member(engine, team_id, account_id=account_id, actor=account)


@router.post(
    "/teams/{team_id}/grids",
    response_model=Team,
    summary="Set the grids a team covers",
    responses=error_responses(400, 401, 403, 404),
)
def set_grids(
    team_id: TeamId, body: GridsIn, engine: EngineDep, account: AccountDep
) -> dict[str, Any]:
    """Add grids of the team's community to the team (or, with `replace`, set them)."""
    return teams.set_grids(engine, team_id, grids=body.grids, actor=account, replace=body.replace)
