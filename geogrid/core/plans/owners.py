"""Who may change a plan: its owner, a lead planner or an admin; anyone may read it.

A plan is owned by the account that created it (``plan.owner_id``). Plans made before
owners existed (no owner) may be changed by any planner.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from geogrid.core.accounts import Account
from geogrid.errors import Forbidden

__all__ = ["PLAN_LEADS", "PLAN_ROLES", "may_change_plan", "require_plan_owner"]

#: roles that may change any plan
PLAN_LEADS = frozenset({"admin", "lead_planner"})
#: roles that may create plans (and change their own)
PLAN_ROLES = ("planner", "lead_planner", "admin")


def may_change_plan(account: Account, plan: Mapping[str, Any]) -> bool:
    """True when ``account`` may edit or publish ``plan`` (a row with ``owner_id``).

    >>> p = {"id": 1, "owner_id": 5, "owner": "T-planner"}
    >>> may_change_plan(Account(5, "a", "planner"), p), may_change_plan(Account(6, "b", "planner"), p)
    (True, False)
    >>> may_change_plan(Account(7, "c", "lead_planner"), p)
    True
    """
    if account.role in PLAN_LEADS:
        return True
    if account.role not in PLAN_ROLES:
        return False
    owner = plan.get("owner_id")
    return owner is None or int(owner) == int(account.id)


def require_plan_owner(account: Account | None, plan: Mapping[str, Any]) -> None:
    """Raise :class:`~geogrid.errors.Forbidden` (naming the owner) unless ``account`` may
    change ``plan``; ``None`` (the command line, a trusted operator) may.

    >>> require_plan_owner(Account(6, "b", "planner"), {"id": 1, "owner_id": 5, "owner": "li"})
    Traceback (most recent call last):
    ...
    geogrid.errors.Forbidden: plan 1 belongs to li: only its owner or a lead planner may change it
    """
    if account is None or may_change_plan(account, plan):
        return
    owner = plan.get("owner") or f"account {plan.get('owner_id')}"
    raise Forbidden(
        f"plan {plan['id']} belongs to {owner}: only its owner or a lead planner may change it"
    )
