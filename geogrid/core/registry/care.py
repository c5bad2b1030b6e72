"""Care groups (关爱对象): the people a grid worker visits regularly, and how often.

>>> CARE_GROUPS["elderly_alone"].name_zh, CARE_GROUPS["elderly_alone"].visit_every_days
('独居老人', 7)
>>> care_codes("独居老人、残疾人"), care_codes("low_income"), care_codes("")
(['elderly_alone', 'disability'], ['low_income'], [])
>>> care_codes("孤寡")
Traceback (most recent call last):
...
ValueError: unknown care group '孤寡': one of elderly_alone (独居老人), left_behind_child (留守儿童), disability (残疾人), low_income (低保户), key_group (重点人群)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["CARE_GROUPS", "CareGroup", "care_codes", "care_code"]


@dataclass(frozen=True)
class CareGroup:
    """A care group: its code, names and the default days between two visits."""

    code: str
    name_zh: str
    name_en: str
    visit_every_days: int


#: the care-group vocabulary (code → group), in display order
CARE_GROUPS: Final[dict[str, CareGroup]] = {
    g.code: g
    for g in (
        CareGroup("elderly_alone", "独居老人", "elderly living alone", 7),
        CareGroup("left_behind_child", "留守儿童", "left-behind child", 14),
        CareGroup("disability", "残疾人", "person with disability", 14),
        CareGroup("low_income", "低保户", "low-income household", 30),
        CareGroup("key_group", "重点人群", "key group", 30),
    )
}
_BY_NAME: Final[dict[str, str]] = {
    **{g.code: g.code for g in CARE_GROUPS.values()},
    **{g.name_zh: g.code for g in CARE_GROUPS.values()},
    **{g.name_en: g.code for g in CARE_GROUPS.values()},
    "空巢老人": "elderly_alone",
    "低保": "low_income",
    "残疾": "disability",
}
_SEP = re.compile(r"[、,，;；/|\s]+")


def care_code(name: str) -> str:
    """The code of a care group named by code, Chinese or English name.

    Raises
    ------
    ValueError  an unknown name (the message lists the groups)
    """
    code = _BY_NAME.get(name.strip())
    if code is None:
        allowed = ", ".join(f"{g.code} ({g.name_zh})" for g in CARE_GROUPS.values())
        raise ValueError(f"unknown care group {name.strip()!r}: one of {allowed}")
    return code


def care_codes(text: str | None) -> list[str]:
    """The codes of a list of care groups written in one cell (separated by 、 , ; / or
    spaces), in order, without repeats."""
    out: list[str] = []
    for part in _SEP.split(text or ""):
        if part and (c := care_code(part)) not in out:
            out.append(c)
    return out
