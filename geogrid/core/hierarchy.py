"""The domain vocabulary of the unit hierarchy, defined once.

A city is cut into four levels, district (区/县) → street (街道/乡镇) → community (社区/村)
→ grid (网格). Unit codes are hierarchical strings: a child's code starts with its parent's
code, and the code's length says the level (district ``450902``, street ``450902001``,
community ``450902001001``, grid ``450902001001001``). Incidents carry one attribution
column per level (``grid_code`` … ``district_code``).

Every other module imports these names instead of spelling them again.

>>> level_of_code("450902001001")
'community'
>>> parent_chain("450902001001001")
{'district': '450902', 'street': '450902001', 'community': '450902001001', 'grid': '450902001001001'}
>>> LEVELS_UP[0], PARENT_LEVEL["grid"]
('grid', 'community')
"""

from __future__ import annotations

from typing import Final, Literal

from geogrid.errors import InvalidInput

__all__ = [
    "Level",
    "LEVELS",
    "LEVELS_UP",
    "CODE_LENGTH",
    "LEVEL_COLUMN",
    "ATTRIBUTION_COLUMNS",
    "PARENT_LEVEL",
    "CHILD_LEVEL",
    "LEVEL_NAMES",
    "check_level",
    "level_of_code",
    "parent_chain",
]

Level = Literal["district", "street", "community", "grid"]

#: levels from the top (district) down to the grid
LEVELS: Final[tuple[Level, ...]] = ("district", "street", "community", "grid")
#: levels from the grid up (the order of routing and escalation)
LEVELS_UP: Final[tuple[Level, ...]] = ("grid", "community", "street", "district")
#: length of a unit code at each level
CODE_LENGTH: Final[dict[str, int]] = {"district": 6, "street": 9, "community": 12, "grid": 15}
_LEVEL_OF_LENGTH: Final[dict[int, str]] = {n: lv for lv, n in CODE_LENGTH.items()}
#: the incident/attribution column holding a level's code
LEVEL_COLUMN: Final[dict[str, str]] = {lv: f"{lv}_code" for lv in LEVELS_UP}
#: attribution columns, grid first
ATTRIBUTION_COLUMNS: Final[list[str]] = [LEVEL_COLUMN[lv] for lv in LEVELS_UP]
#: a level's parent level (None for the district)
PARENT_LEVEL: Final[dict[str, str | None]] = {
    "district": None,
    "street": "district",
    "community": "street",
    "grid": "community",
}
#: a level's child level (None for the grid)
CHILD_LEVEL: Final[dict[str, str | None]] = {
    "district": "street",
    "street": "community",
    "community": "grid",
    "grid": None,
}
#: display names of the levels
LEVEL_NAMES: Final[dict[str, dict[str, str]]] = {
    "district": {"zh": "区县", "en": "District"},
    "street": {"zh": "街道/乡镇", "en": "Street/town"},
    "community": {"zh": "社区/村", "en": "Community/village"},
    "grid": {"zh": "网格", "en": "Grid"},
}


def check_level(level: str, parameter: str = "level") -> str:
    """Return ``level`` when it is one of :data:`LEVELS`, else raise :class:`InvalidInput`.

    >>> check_level("grid")
    'grid'
    """
    if level not in CODE_LENGTH:
        raise InvalidInput(parameter, level, "one of " + ", ".join(LEVELS))
    return level


def level_of_code(code: str, parameter: str = "code") -> str:
    """The level of a unit code, read from its length (6, 9, 12 or 15 characters)."""
    level = _LEVEL_OF_LENGTH.get(len(str(code)))
    if level is None:
        raise InvalidInput(
            parameter, code, "a unit code of 6 (district), 9, 12 or 15 (grid) characters"
        )
    return level


def parent_chain(code: str) -> dict[str, str]:
    """The codes of a unit and of every unit above it, by level (prefixes of ``code``)."""
    level = level_of_code(code)
    out: dict[str, str] = {}
    for lv in LEVELS:
        out[lv] = str(code)[: CODE_LENGTH[lv]]
        if lv == level:
            break
    return out
