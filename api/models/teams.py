"""The bodies and answers of ``/teams`` (grid teams, issue 13)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.models.common import ApiModel
from geogrid.core.teams import TEAM_ROLES

__all__ = ["TeamIn", "MemberIn", "GridsIn", "TeamMember", "TeamGrid", "Team"]

_ROLES = ", ".join(f"{k} ({zh})" for k, (zh, _) in TEAM_ROLES.items())


class TeamIn(ApiModel):
    """A new team of a community."""

    name: str = Field(
        description="the team's name", examples=["江滨社区第一网格团队"], max_length=100
    )
    community_code: str = Field(
        description="the community (12 digits)", examples=["450902001001"], max_length=12
    )
    grids: list[str] | None = Field(
        None,
        description="grid codes of the community the team covers",
        examples=[["450902001001001"]],
        max_length=500,
    )


class MemberIn(ApiModel):
    """A member to add (or whose role to change)."""

    account_id: int = Field(
        ge=1, le=2**31 - 1, description="the account (of the team's community)", examples=[1]
    )
    role: str = Field(
        description=f"one of {_ROLES}, or the community's own role (free text)",
        examples=["building_head"],
        max_length=40,
    )


class GridsIn(ApiModel):
    """Grids a team covers."""

    grids: list[str] = Field(
        description="grid codes of the team's community",
        examples=[["450902001001001", "450902001001002"]],
        min_length=1,
        max_length=500,
    )
    replace: bool = Field(
        False,
        description="true: the team covers exactly these afterwards; false: add them",
        examples=[False],
    )


class TeamMember(ApiModel):
    account_id: int
    name: str | None = Field(description="masked outside the caller's units")
    account_role: str
    role: str = Field(description="role code or the community's own role")
    role_label: str
    active: bool
    added_at: datetime


class TeamGrid(ApiModel):
    grid_code: str
    name: str | None = None


class Team(ApiModel):
    """A grid team with its members and grids."""

    id: int
    name: str
    community_code: str
    created_by: int | None = None
    created_at: datetime
    members: list[TeamMember]
    grids: list[TeamGrid]
