"""Accounts, roles, bearer tokens and unit scope (pure; the workflows are in
:mod:`geogrid.services.accounts`, the SQL in ``geogrid/store/accounts.py``).

Roles
-----
``worker`` (网格员, acts on incidents in their own grids), ``community_admin``,
``street_admin``, ``district_admin`` (act within their unit, judged by the incident's code
at that level), ``planner`` (boundary plans; no incident actions), ``leader`` and
``analyst`` (read only), ``admin`` (everything).

Tokens
------
A token is ``secrets.token_urlsafe(32)`` (256 random bits), shown once and stored only as
its SHA-256 hex digest. A plain fast hash is enough here because the token is random and
high-entropy: nobody can guess or brute-force a 2^256 preimage, so slow password hashes
(bcrypt, scrypt) add nothing; and an unsalted digest lets us find the account by an
indexed equality lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from geogrid.core.hierarchy import CODE_LENGTH, LEVEL_COLUMN
from geogrid.errors import Forbidden, InvalidInput

__all__ = [
    "ROLES",
    "UNIT_ROLES",
    "ROLE_FOR_LEVEL",
    "READ_ONLY_ROLES",
    "RESIDENT",
    "Account",
    "new_token",
    "hash_token",
    "tokens_match",
    "check_role",
    "check_units_for_role",
    "can_act_on",
    "require_can_act",
    "can_report_at",
    "require_can_report",
]

ROLES = (
    "worker",
    "community_admin",
    "street_admin",
    "district_admin",
    "planner",
    "leader",
    "analyst",
    "admin",
    "lead_planner",
)
#: role → the level of the units it is bound to
UNIT_ROLES = {
    "worker": "grid",
    "community_admin": "community",
    "street_admin": "street",
    "district_admin": "district",
}
#: level → the role responsible for the units of that level (``worker`` for grids)
ROLE_FOR_LEVEL = {level: role for role, level in UNIT_ROLES.items()}
READ_ONLY_ROLES = frozenset({"leader", "analyst"})
#: the reporter kind of a report made without an account (a resident)
RESIDENT = "resident"


@dataclass(frozen=True)
class Account:
    """An authenticated account. ``units`` are the unit codes it is bound to."""

    id: int
    name: str
    role: str
    units: tuple[str, ...] = field(default_factory=tuple)
    ref: str | None = None
    active: bool = True

    @property
    def level(self) -> str | None:
        """The level of the units the role is bound to (None for other roles)."""
        return UNIT_ROLES.get(self.role)

    def to_dict(self) -> dict[str, Any]:
        """The account as a plain dict (``units`` a list)."""
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "units": list(self.units),
            "ref": self.ref,
            "active": self.active,
        }


def new_token() -> str:
    """A fresh bearer token (43 URL-safe characters, 256 random bits)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a token (what the database stores; see the module notes)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_match(token: str, stored_hash: str) -> bool:
    """Constant-time comparison of a token with a stored hash."""
    return hmac.compare_digest(hash_token(token), stored_hash)


def check_role(role: str) -> str:
    """``role`` when it is one of :data:`ROLES`, else InvalidInput.

    >>> check_role("worker")
    'worker'
    """
    if role not in ROLES:
        raise InvalidInput("role", role, "one of " + ", ".join(ROLES))
    return role


def check_units_for_role(role: str, units: Iterable[str]) -> list[str]:
    """Validate the unit codes given to an account of ``role``.

    Unit-bound roles (worker, *_admin) need at least one code of their level (a grid code
    has 15 digits, a community 12, a street 9, a district 6); other roles take none.
    """
    check_role(role)
    codes = [str(u).strip() for u in units if str(u).strip()]
    level = UNIT_ROLES.get(role)
    if level is None:
        if codes:
            raise InvalidInput(
                "unit",
                codes,
                f"no units for role {role!r} (only worker and "
                "community/street/district admins are bound to units)",
            )
        return []
    if not codes:
        raise InvalidInput("unit", codes, f"at least one {level} code for role {role!r}")
    n = CODE_LENGTH[level]
    for c in codes:
        if not (c.isdigit() and len(c) == n):
            raise InvalidInput("unit", c, f"a {level} code of {n} digits for role {role!r}")
    return sorted(set(codes))


def _unit_code(incident_units: Mapping[str, Any], level: str) -> str | None:
    """The incident's code at ``level``; accepts ``grid_code`` keys or ``grid`` keys."""
    v = incident_units.get(LEVEL_COLUMN[level])
    if v is None:
        v = incident_units.get(level)
        if isinstance(v, Mapping):
            v = v.get("code")
    return v


def can_act_on(account: Account, incident_units: Mapping[str, Any]) -> bool:
    """May ``account`` change an incident with these unit codes?

    ``incident_units`` has ``grid_code``, ``community_code``, ``street_code`` and
    ``district_code`` (an incident row does). A worker acts only in their own grids, an
    admin of a community/street/district only when the incident's code at that level is
    theirs; ``admin`` acts everywhere; planners, leaders and analysts never.

    >>> w = Account(1, "李梅", "worker", ("450902001001001",))
    >>> can_act_on(w, {"grid_code": "450902001001001"}), can_act_on(w, {"grid_code": None})
    (True, False)
    """
    if not account.active:
        return False
    if account.role == "admin":
        return True
    level = UNIT_ROLES.get(account.role)
    if level is None:
        return False
    code = _unit_code(incident_units, level)
    return code is not None and code in account.units


def require_can_act(
    account: Account, incident_units: Mapping[str, Any], what: str = "this incident"
) -> None:
    """Raise Forbidden unless :func:`can_act_on`."""
    if can_act_on(account, incident_units):
        return
    raise Forbidden(_why_not(account, incident_units, f"act on {what}"))


def can_report_at(account: Account, incident_units: Mapping[str, Any]) -> bool:
    """May ``account`` report an incident at a place with these codes? Same scope as
    :func:`can_act_on`: a worker reports only inside their own grids."""
    return can_act_on(account, incident_units)


def require_can_report(account: Account, incident_units: Mapping[str, Any]) -> None:
    """Raise Forbidden unless :func:`can_report_at`."""
    if can_report_at(account, incident_units):
        return
    raise Forbidden(_why_not(account, incident_units, "report an incident at this point"))


def _why_not(account: Account, incident_units: Mapping[str, Any], action: str) -> str:
    if not account.active:
        return f"account {account.id} is inactive"
    level = UNIT_ROLES.get(account.role)
    if level is None:
        return f"role {account.role!r} may not {action} (read-only or planning role)"
    code = _unit_code(incident_units, level)
    where = f"{level} {code}" if code else f"outside every {level}"
    return (
        f"{account.role} {account.name!r} may not {action}: it is in {where}, not in "
        f"their {level}(s) {', '.join(account.units)}"
    )
