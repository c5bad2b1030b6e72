"""The caller's scope: which records a read may return and where personal fields are clear.

One access model for every read (incidents, history, overdue, register, people):

* ``public`` — an anonymous caller. Sees public fields only (Open311's public status and
  a moderated description); never a personal field, never a staff row.
* ``units`` — a worker (their grids) or a community/street/district admin (their subtree).
  Sees the records whose unit code at any level is one of the caller's units; personal
  fields are clear on those records.
* ``city`` — admin, planner, leader, analyst (and the ``system`` scope of the CLI and of
  internal workflows). Sees the whole city; personal fields are clear only for ``admin``
  and ``system`` (planners, leaders and analysts read city aggregates, masked).

The SQL form of the same rule is :func:`geogrid.store.scope.scope_condition`; the
services clear or mask personal fields with :meth:`Scope.personal_clear` and
:mod:`geogrid.core.masking`.

>>> w = Scope.of(Account(7, "李梅", "worker", ("450902001001001",)))
>>> w.kind, w.units
('units', ('450902001001001',))
>>> rec = {"grid_code": "450902001001001", "community_code": "450902001001",
...        "street_code": "450902001", "district_code": "450902"}
>>> w.covers(rec), w.personal_clear(rec)
(True, True)
>>> other = dict(rec, grid_code="450902001001002")
>>> w.covers(other), w.personal_clear(other)
(False, False)
>>> d = Scope.of(Account(8, "王强", "district_admin", ("450902",)))
>>> d.covers(other), d.personal_clear(other)
(True, True)
>>> lead = Scope.of(Account(9, "赵", "leader"))
>>> lead.kind, lead.covers(other), lead.personal_clear(other)
('city', True, False)
>>> Scope.of(None).kind, Scope.of(None).personal_clear(rec)
('public', False)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from geogrid.core.accounts import UNIT_ROLES, Account
from geogrid.core.hierarchy import CODE_LENGTH, LEVEL_COLUMN, LEVELS_UP

__all__ = [
    "ScopeKind",
    "SCOPE_KINDS",
    "CLEAR_CITY_ROLES",
    "SYSTEM_ROLE",
    "Scope",
    "record_codes",
]

ScopeKind = Literal["public", "units", "city"]
SCOPE_KINDS: Final[tuple[str, ...]] = ("public", "units", "city")
#: city-wide roles that read personal fields in clear (the others read them masked)
CLEAR_CITY_ROLES: Final[frozenset[str]] = frozenset({"admin", "system"})
#: the role of the :meth:`Scope.system` scope (CLI commands and internal workflows)
SYSTEM_ROLE: Final[str] = "system"


def record_codes(record: Mapping[str, Any]) -> dict[str, str]:
    """A record's unit codes by level, from ``grid_code``… keys or ``grid``… keys.

    A value may be a code string or a mapping with a ``code`` key (as in the incident
    API's ``units``); missing or empty codes are left out.

    >>> record_codes({"grid_code": "450902001001001", "district": {"code": "450902"}})
    {'grid': '450902001001001', 'district': '450902'}
    """
    out: dict[str, str] = {}
    for level in LEVELS_UP:
        v = record.get(LEVEL_COLUMN[level])
        if v is None:
            v = record.get(level)
            if isinstance(v, Mapping):
                v = v.get("code")
        if v:
            out[level] = str(v)
    return out


@dataclass(frozen=True)
class Scope:
    """What a caller may read.

    Parameters
    ----------
    role
        The caller's role (:data:`geogrid.core.accounts.ROLES`), ``"system"`` for the CLI
        and internal workflows, None for an anonymous caller.
    account_id
        The caller's account id (None when anonymous or system).
    units
        Unit codes of a ``units`` scope (grid codes for a worker, community/street/district
        codes for the admins of those levels); empty otherwise.
    kind
        ``public``, ``units`` or ``city`` (see the module notes).
    """

    role: str | None
    account_id: int | None
    units: tuple[str, ...] = field(default_factory=tuple)
    kind: ScopeKind = "public"

    @classmethod
    def of(cls, account: Account | None) -> Scope:
        """The scope of an (authenticated) account; None or an inactive account → public.

        >>> Scope.of(Account(1, "A", "admin")).kind
        'city'
        >>> Scope.of(Account(2, "B", "street_admin", ("450902001",))).units
        ('450902001',)
        """
        if account is None or not account.active:
            return cls.public()
        if account.role in UNIT_ROLES:
            return cls(account.role, account.id, tuple(sorted(set(account.units))), "units")
        return cls(account.role, account.id, (), "city")

    @classmethod
    def public(cls) -> Scope:
        """The anonymous scope (public fields only)."""
        return cls(None, None, (), "public")

    @classmethod
    def system(cls) -> Scope:
        """The whole city with personal fields clear: the CLI and internal workflows only.

        >>> Scope.system().personal_clear({})
        True
        """
        return cls(SYSTEM_ROLE, None, (), "city")

    @property
    def is_public(self) -> bool:
        """True for an anonymous caller."""
        return self.kind == "public"

    @property
    def level(self) -> str | None:
        """The level of a ``units`` scope's codes (None for other kinds)."""
        return UNIT_ROLES.get(self.role or "") if self.kind == "units" else None

    def covers(self, record: Mapping[str, Any]) -> bool:
        """May the caller read this record (an incident, an event's incident, a register or
        overdue row) at all? ``record`` has the unit codes (see :func:`record_codes`).

        ``public`` covers every record but only for its public fields (the services strip
        the rest); ``units`` covers a record whose code at any level is one of the caller's
        units; ``city`` covers everything.
        """
        if self.kind != "units":
            return True
        codes = record_codes(record)
        return any(c in self.units for c in codes.values()) or any(
            _inside(code, unit) for code in codes.values() for unit in self.units
        )

    def personal_clear(self, record: Mapping[str, Any]) -> bool:
        """Are the record's personal fields (names, phones, contacts, staff references,
        notes) shown in clear to this caller? Only inside the caller's units (``units``),
        everywhere for admin/system, never for planners, leaders, analysts or anonymous."""
        if self.kind == "public":
            return False
        if self.kind == "city":
            return self.role in CLEAR_CITY_ROLES
        return self.covers(record)

    def to_dict(self) -> dict[str, Any]:
        """The scope as a plain dict (for logs and the audit trail)."""
        return {
            "role": self.role,
            "account_id": self.account_id,
            "units": list(self.units),
            "kind": self.kind,
        }


def _inside(code: str, unit: str) -> bool:
    """Is unit ``code`` inside (or equal to) ``unit`` — a prefix of a finer code?"""
    return len(unit) in CODE_LENGTH.values() and code.startswith(unit) and len(code) >= len(unit)
