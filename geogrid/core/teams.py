"""Grid teams (网格团队): the people of a community in named roles, covering one or more
grids. Tasks of a team's grids route to its members (:mod:`geogrid.services.tasks`).

Pure vocabulary and checks; the SQL is in :mod:`geogrid.store.teams`, the workflows in
:mod:`geogrid.services.teams`.

Roles
-----
:data:`TEAM_ROLES` are the roles most communities use (the grid worker 网格员, the
building head 楼长 and the usual "七员" of a grid); a community may name others: any
short free text is accepted as a role and kept as written.

>>> check_team_role("building_head"), check_team_role(" 消防宣传员 ")
('building_head', '消防宣传员')
>>> role_label("grid_worker")
'网格员 grid worker'
"""

from __future__ import annotations

import unicodedata
from typing import Any, Final

from geogrid.core.hierarchy import CODE_LENGTH
from geogrid.errors import InvalidInput

__all__ = [
    "TEAM_ROLES",
    "ROLE_MAX_CHARS",
    "NAME_MAX_CHARS",
    "check_team_role",
    "check_team_name",
    "role_label",
    "check_grid_codes",
]

#: code → (Chinese name, English name) of the roles most grids have
TEAM_ROLES: Final[dict[str, tuple[str, str]]] = {
    "grid_worker": ("网格员", "grid worker"),
    "grid_leader": ("网格长", "grid leader"),
    "building_head": ("楼长", "building head"),
    "informant": ("信息员", "informant"),
    "mediator": ("调解员", "mediator"),
    "patroller": ("巡防员", "patroller"),
    "safety_officer": ("安全员", "safety officer"),
    "publicist": ("宣传员", "publicist"),
    "volunteer": ("志愿者", "volunteer"),
}
#: the longest free-text role and team name accepted
ROLE_MAX_CHARS: Final[int] = 40
NAME_MAX_CHARS: Final[int] = 100


def _text(value: Any, parameter: str, max_chars: int, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(parameter, value, what)
    s = value.strip()
    if not s or len(s) > max_chars or any(unicodedata.category(ch)[0] == "C" for ch in s):
        raise InvalidInput(parameter, value, what)
    return s


def check_team_role(value: Any, parameter: str = "role") -> str:
    """A role code of :data:`TEAM_ROLES`, a known role's Chinese name (mapped to its code),
    or a community's own role as short free text (1–40 printable characters).

    >>> check_team_role("网格员")
    'grid_worker'
    >>> check_team_role("")
    Traceback (most recent call last):
    ...
    geogrid.errors.InvalidInput: role='' is not valid: expected one of grid_worker, \
grid_leader, building_head, informant, mediator, patroller, safety_officer, publicist, \
volunteer, or a community's own role (1-40 printable characters)
    """
    allowed = (
        "one of "
        + ", ".join(TEAM_ROLES)
        + f", or a community's own role (1-{ROLE_MAX_CHARS} printable characters)"
    )
    s = _text(value, parameter, ROLE_MAX_CHARS, allowed)
    if s in TEAM_ROLES:
        return s
    by_zh = {zh: code for code, (zh, _) in TEAM_ROLES.items()}
    return by_zh.get(s, s)


def check_team_name(value: Any, parameter: str = "name") -> str:
    """A team's name: 1–100 printable characters, trimmed."""
    return _text(value, parameter, NAME_MAX_CHARS, f"a name of 1-{NAME_MAX_CHARS} characters")


def role_label(role: str) -> str:
    """``网格员 grid worker`` for a known role; a free-text role as it is."""
    names = TEAM_ROLES.get(role)
    return f"{names[0]} {names[1]}" if names else role


def check_grid_codes(values: Any, community_code: str, parameter: str = "grids") -> list[str]:
    """Grid codes (15 digits) inside ``community_code``, deduplicated and sorted.

    >>> check_grid_codes(["450902001001002", "450902001001001"], "450902001001")
    ['450902001001001', '450902001001002']
    >>> check_grid_codes(["450902001002001"], "450902001001")
    Traceback (most recent call last):
    ...
    geogrid.errors.InvalidInput: grids='450902001002001' is not valid: expected grid codes \
of 15 digits inside community 450902001001
    """
    if isinstance(values, str) or not isinstance(values, list | tuple) or not values:
        raise InvalidInput(parameter, values, "a non-empty list of grid codes")
    n = CODE_LENGTH["grid"]
    out = set()
    for v in values:
        s = str(v).strip()
        if not (s.isdigit() and len(s) == n and s.startswith(community_code)):
            raise InvalidInput(
                parameter, v, f"grid codes of {n} digits inside community {community_code}"
            )
        out.add(s)
    return sorted(out)
