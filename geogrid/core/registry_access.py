"""Who reads what of the base-information registry (issue 15), and the arithmetic of care
visits and small-count suppression (pure).

The registry is the most sensitive data geogrid holds. The rule, applied in one place
(:mod:`geogrid.services.registry`) on top of the SQL scope
(:func:`geogrid.store.scope.scope_condition` with ``personal=True``):

=====================================  ==========================================================
caller                                 reads
=====================================  ==========================================================
anonymous                              nothing of people or households (401); the map's address
                                       search finds **buildings and units only** — a building's
                                       name, address and position are not personal (they are on
                                       the door); households and people are
worker                                 the records of their grids, in clear
community / street / district admin    the records of their subtree, in clear
admin (and the CLI's system scope)     every record, in clear
leader, analyst, planner, lead planner aggregates only (403 on records); counts from 1 to k − 1
                                       suppressed (``None``), k = ``settings.registry_k``
=====================================  ==========================================================

"In clear" has two steps: a **list** (search results, a household's members, the care
list) shows names, birth dates and addresses in clear and the ID number and phone
**masked** (the stored masks, nothing decrypted); **one person's record** decrypts the ID
number and phone. Every clear read — list or record — is one audit row naming the fields
read (never their values), with an optional reason. A record outside the caller's scope
is 404 (not 403: it does not exist for them).

>>> reads_records("worker"), reads_records("leader"), reads_records(None)
(True, False, False)
>>> suppressed_count(3, 5), suppressed_count(0, 5), suppressed_count(7, 5)
(None, 0, 7)
>>> from datetime import date
>>> visit_due(date(2026, 11, 1), None, 30)
datetime.date(2026, 12, 1)
>>> is_overdue(date(2026, 12, 1), date(2026, 12, 1)), is_overdue(date(2026, 12, 1), date(2026, 12, 2))
(False, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, Final

from geogrid.core.accounts import UNIT_ROLES
from geogrid.errors import InvalidInput

__all__ = [
    "RECORD_ROLES",
    "AGGREGATE_ROLES",
    "SUPPRESSED_ROLES",
    "EXPORT_ROLES",
    "PERSON_LIST_FIELDS",
    "PERSON_RECORD_FIELDS",
    "HOUSEHOLD_FIELDS",
    "AGGREGATE_COUNTS",
    "DEFAULT_K",
    "MAX_PAGE",
    "MAX_EXPORT_ROWS",
    "reads_records",
    "reads_aggregates",
    "suppressed",
    "suppressed_count",
    "suppress_row",
    "visit_due",
    "is_overdue",
    "age_on",
    "check_reason",
]

#: roles reading registry records (people, households, buildings, orgs, care lists) in
#: their scope; "system" is the CLI's scope
RECORD_ROLES: Final[frozenset[str]] = frozenset({*UNIT_ROLES, "admin", "system"})
#: roles reading aggregates (every staff role)
AGGREGATE_ROLES: Final[frozenset[str]] = frozenset(
    {*RECORD_ROLES, "leader", "analyst", "planner", "lead_planner"}
)
#: roles whose aggregates have small counts suppressed (they read no records)
SUPPRESSED_ROLES: Final[frozenset[str]] = AGGREGATE_ROLES - RECORD_ROLES
#: roles that may export personal data (with a reason; audited)
EXPORT_ROLES: Final[frozenset[str]] = frozenset(
    {"community_admin", "street_admin", "district_admin", "admin", "system"}
)
#: personal fields a list shows in clear (ID number and phone: masks only)
PERSON_LIST_FIELDS: Final[tuple[str, ...]] = (
    "name",
    "sex",
    "birth_date",
    "relation",
    "residence",
    "address",
)
#: personal fields of one person's record (the list's, the ID number and phone decrypted)
PERSON_RECORD_FIELDS: Final[tuple[str, ...]] = (*PERSON_LIST_FIELDS, "id_number", "phone")
#: personal fields of a household (its address; members are people)
HOUSEHOLD_FIELDS: Final[tuple[str, ...]] = ("address",)
#: the counts of an aggregate row (care groups are added per group: ``care_<group>``)
AGGREGATE_COUNTS: Final[tuple[str, ...]] = ("population", "households", "floating", "care")
#: the default k of small-count suppression
DEFAULT_K: Final[int] = 5
#: most rows of one page of a list
MAX_PAGE: Final[int] = 500
#: most rows of one export
MAX_EXPORT_ROWS: Final[int] = 200_000


def reads_records(role: str | None) -> bool:
    """May a caller of ``role`` read registry records (in their scope)?"""
    return role in RECORD_ROLES


def reads_aggregates(role: str | None) -> bool:
    """May a caller of ``role`` read registry aggregates?"""
    return role in AGGREGATE_ROLES


def suppressed(role: str | None) -> bool:
    """Are small counts suppressed for ``role``?

    >>> suppressed("leader"), suppressed("street_admin")
    (True, False)
    """
    return role in SUPPRESSED_ROLES


def suppressed_count(n: int | None, k: int) -> int | None:
    """``n`` unless it is from 1 to ``k - 1`` (then None: too few to show without pointing
    at people). Zero stays zero: it names nobody."""
    if n is None:
        return None
    return None if 0 < int(n) < k else int(n)


def suppress_row(row: Mapping[str, Any], counts: tuple[str, ...], k: int) -> dict[str, Any]:
    """``row`` with its ``counts`` columns suppressed (:func:`suppressed_count`) and
    ``suppressed`` listing the columns that were.

    >>> suppress_row({"code": "1", "population": 120, "floating": 2}, ("population", "floating"), 5)
    {'code': '1', 'population': 120, 'floating': None, 'suppressed': ['floating']}
    """
    out = dict(row)
    hidden = []
    for c in counts:
        if c in out:
            v = suppressed_count(out[c], k)
            if v is None and out[c] is not None:
                hidden.append(c)
            out[c] = v
    out["suppressed"] = hidden
    return out


def visit_due(last_visit: date | None, since: date | None, every_days: int) -> date | None:
    """The day a person in a care group is next due a visit: ``every_days`` after the last
    visit, else after the day they joined the group (``since``); never visited and no
    ``since``: None (due now)."""
    base = last_visit or since
    return base + timedelta(days=int(every_days)) if base is not None else None


def is_overdue(due: date | None, today: date) -> bool:
    """Is a visit due on ``due`` overdue ``today``? (A visit due today is not yet; one that
    was never due — None — is.)"""
    return due is None or today > due


def age_on(birth: date | None, today: date) -> int | None:
    """Age in whole years on ``today``.

    >>> age_on(date(1950, 12, 2), date(2026, 12, 1)), age_on(date(1950, 12, 1), date(2026, 12, 1))
    (75, 76)
    """
    if birth is None:
        return None
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def check_reason(reason: str | None, *, required: bool) -> str | None:
    """A reason given for a clear read or an export: stripped, at most 200 characters,
    required for exports.

    >>> check_reason("  回访核实 ", required=True)
    '回访核实'
    """
    r = (reason or "").strip()
    if required and not r:
        raise InvalidInput("reason", reason, "why the data is needed (1 to 200 characters)")
    if len(r) > 200:
        raise InvalidInput("reason", reason, "at most 200 characters")
    return r or None
