"""The daily service register (为民服务事项登记表): the kinds of service item a grid worker
records, and the checks of one entry.

A worker records each service item of the day as one *entry* (table ``service_entry``):
its ``kind`` (:data:`SERVICE_KINDS`), the day in the city's zone, the household, building
and people involved, the result, a note, an optional position and photos. The monthly
register (:mod:`geogrid.core.register`) counts entries per kind next to the incidents.

This module is pure: the vocabulary is defined here once and imported by the store (the
table's CHECK constraint), the services, the API and the exports.

>>> [k.code for k in SERVICE_KINDS]
['visit', 'mediation', 'paperwork', 'hazard', 'policy', 'other']
>>> service_kind("visit").name_zh
'走访入户'
>>> check_entry_fields("visit", people_count=2, person_ids=[1, 2])
('visit', 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

from geogrid.errors import InvalidInput

__all__ = [
    "ServiceKind",
    "SERVICE_KINDS",
    "SERVICE_KIND_CODES",
    "ENTRY_PERSONAL",
    "MAX_PEOPLE",
    "service_kind",
    "check_kind",
    "check_entry_fields",
    "check_day",
    "register_column",
]


@dataclass(frozen=True)
class ServiceKind:
    """One kind of service item: its code, Chinese and English names."""

    code: str
    name_zh: str
    name_en: str


#: the kinds of service item of the register, in the form's column order
SERVICE_KINDS: Final[tuple[ServiceKind, ...]] = (
    ServiceKind("visit", "走访入户", "Household visit"),
    ServiceKind("mediation", "矛盾调解", "Dispute mediation"),
    ServiceKind("paperwork", "代办服务", "Help with paperwork"),
    ServiceKind("hazard", "隐患排查", "Hazard check"),
    ServiceKind("policy", "政策宣传", "Policy explained"),
    ServiceKind("other", "其他", "Other"),
)
#: their codes
SERVICE_KIND_CODES: Final[tuple[str, ...]] = tuple(k.code for k in SERVICE_KINDS)
#: personal fields of an entry as the services return it (clear inside the caller's units)
ENTRY_PERSONAL: Final[tuple[str, ...]] = ("account_name", "result", "note", "person_ids")
#: the most people one entry may count
MAX_PEOPLE: Final[int] = 10_000


def service_kind(code: str) -> ServiceKind:
    """The kind of a code (InvalidInput naming the allowed codes).

    >>> service_kind("hazard").name_en
    'Hazard check'
    """
    for k in SERVICE_KINDS:
        if k.code == code:
            return k
    raise InvalidInput("kind", code, "one of " + ", ".join(SERVICE_KIND_CODES))


def check_kind(code: str) -> str:
    """``code`` when it is a service kind, else InvalidInput."""
    return service_kind(code).code


def register_column(code: str) -> str:
    """The register's column counting entries of a kind: ``svc_<code>``.

    >>> register_column("mediation")
    'svc_mediation'
    """
    return f"svc_{check_kind(code)}"


def check_day(day: date, today: date, *, max_past_days: int = 400) -> date:
    """A day an entry may be recorded for: not after ``today`` (the city's date, with one
    day of grace for clocks) and not more than ``max_past_days`` before it.

    >>> check_day(date(2026, 5, 3), date(2026, 5, 4))
    datetime.date(2026, 5, 3)
    """
    if (day - today).days > 1 or (today - day).days > max_past_days:
        raise InvalidInput(
            "day",
            day.isoformat(),
            f"a day from {max_past_days} days before today ({today.isoformat()}) to today",
        )
    return day


def check_entry_fields(
    kind: str, *, people_count: int | None, person_ids: Sequence[int] | None
) -> tuple[str, int]:
    """Check an entry's kind and people; returns ``(kind, people_count)``.

    ``people_count`` defaults to the number of ``person_ids`` (at least 1 when neither is
    given: somebody was served); when both are given it may not be below the ids' count.

    >>> check_entry_fields("policy", people_count=None, person_ids=None)
    ('policy', 1)
    >>> check_entry_fields("visit", people_count=1, person_ids=[4, 5])
    Traceback (most recent call last):
    geogrid.errors.InvalidInput: people_count=1 is not valid: expected at least the number of person_ids (2), at most 10000
    """
    k = check_kind(kind)
    ids = list(person_ids or [])
    if any((not isinstance(i, int)) or isinstance(i, bool) or i < 1 for i in ids):
        raise InvalidInput("person_ids", ids, "positive integer ids of reg_person rows")
    if people_count is None:
        return k, max(len(ids), 1)
    if people_count < len(ids) or people_count > MAX_PEOPLE or people_count < 0:
        raise InvalidInput(
            "people_count",
            people_count,
            f"at least the number of person_ids ({len(ids)}), at most {MAX_PEOPLE}",
        )
    return k, int(people_count)
