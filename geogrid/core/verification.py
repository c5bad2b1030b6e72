"""Verified resolution (核查结案): who may close a resolved incident, who may send it back,
and the optimistic check that an incident did not change meanwhile (pure).

A category's ``verify`` column says how its resolutions are closed:

* ``other`` (the default) — by someone other than the worker who resolved it: the
  reporter, for a resident's report (through the resident's link), or a community admin or
  above over the incident's units (an admin anywhere). The resolver is refused with 403
  naming the rule.
* ``none`` — whoever may act on the incident may close it, the resolver too.

Sending a resolution back (``resolved → in_progress``) needs a reason (the note). Every
change may carry ``expected_updated_at``: when the incident changed since, the change is
refused (409 with the current incident), never applied over the other change.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from geogrid.core.accounts import RESIDENT, UNIT_ROLES, Account, can_act_on
from geogrid.core.hierarchy import LEVELS_UP
from geogrid.errors import Conflict, Forbidden, InvalidInput

__all__ = [
    "VERIFY_MODES",
    "DEFAULT_VERIFY",
    "VERIFY_RULE",
    "SEND_BACK",
    "StaleIncident",
    "check_verify_mode",
    "is_verifier",
    "check_close",
    "check_send_back",
    "check_unchanged",
]

#: the values of ``category.verify``
VERIFY_MODES = ("other", "none")
DEFAULT_VERIFY = "other"
#: the name of the rule in refusals
VERIFY_RULE = "verified resolution (核查结案)"
#: the move that sends a resolution back
SEND_BACK = ("resolved", "in_progress")

#: roles that verify: a community admin or above (over the incident's units), admin
_VERIFIER_ROLES = frozenset(
    {r for r, lv in UNIT_ROLES.items() if LEVELS_UP.index(lv) >= 1} | {"admin"}
)


class StaleIncident(Conflict):
    """The incident changed after the caller read it (409 with ``current``)."""

    code = "conflict"

    def __init__(self, incident_id: int, expected: datetime, current: Mapping[str, Any]):
        self.current = dict(current)
        updated = current.get("updated_at")
        when = updated.isoformat() if isinstance(updated, datetime) else str(updated)
        super().__init__(
            f"incident {incident_id} changed at {when}, after the version you saw "
            f"({expected.isoformat()}): nothing was changed; look at the current incident "
            "and try again"
        )

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(code=self.code, current=self.current)
        return d


def check_verify_mode(value: Any) -> str:
    """One of :data:`VERIFY_MODES`.

    >>> check_verify_mode("none")
    'none'
    """
    if value not in VERIFY_MODES:
        raise InvalidInput("verify", value, "one of " + ", ".join(VERIFY_MODES))
    return str(value)


def is_verifier(account: Account, incident: Mapping[str, Any]) -> bool:
    """A community admin or above whose units cover the incident, or an admin.

    >>> row = {"grid_code": "450902001001001", "community_code": "450902001001"}
    >>> is_verifier(Account(1, "江", "community_admin", ("450902001001",)), row)
    True
    >>> is_verifier(Account(2, "李", "worker", ("450902001001001",)), row)
    False
    """
    return account.role in _VERIFIER_ROLES and can_act_on(account, incident)


def check_close(
    incident: Mapping[str, Any],
    actor: Account | int | None,
    *,
    as_reporter: bool = False,
) -> None:
    """May ``actor`` close this resolved incident (``verify``, ``resolved_by``,
    ``reporter_kind`` and the unit codes of its row)?

    ``actor`` None is the system (or the reporter, with ``as_reporter``: the resident's
    link, for a resident's report). Raises Forbidden naming :data:`VERIFY_RULE`.
    """
    if (incident.get("verify") or DEFAULT_VERIFY) == "none":
        return
    if as_reporter:
        if incident.get("reporter_kind") == RESIDENT:
            return
        raise Forbidden(
            f"{VERIFY_RULE}: only a resident's report is closed by its reporter; incident "
            f"{incident.get('id')} was reported by a {incident.get('reporter_kind')}"
        )
    if actor is None:
        return
    actor_id = actor.id if isinstance(actor, Account) else int(actor)
    resolver = incident.get("resolved_by")
    if resolver is not None and int(resolver) == actor_id:
        raise Forbidden(
            f"{VERIFY_RULE}: you resolved incident {incident.get('id')}, so you may not "
            "close it; the reporter (for a resident's report) or a community admin or above "
            "over its units verifies and closes it"
        )
    if isinstance(actor, Account) and not is_verifier(actor, incident):
        raise Forbidden(
            f"{VERIFY_RULE}: {actor.role} {actor.name!r} may not close incident "
            f"{incident.get('id')}; the reporter (for a resident's report) or a community "
            "admin or above over its units verifies and closes it"
        )


def check_send_back(note: str | None) -> str:
    """The reason of a send-back (``resolved → in_progress``), required.

    >>> check_send_back("  照片不清楚  ")
    '照片不清楚'
    """
    reason = (note or "").strip()
    if not reason:
        raise InvalidInput(
            "note",
            note,
            "a reason for sending the resolution back (what is still to be done)",
        )
    return reason


def check_unchanged(
    incident_id: int,
    expected: datetime | None,
    updated_at: datetime,
    current: Any,
) -> None:
    """Raise :class:`StaleIncident` when ``expected`` (the ``updated_at`` the caller saw)
    is given and differs from ``updated_at``. ``current`` is a callable giving the
    incident as the caller may see it (only called on a conflict)."""
    if expected is None or expected == updated_at:
        return
    raise StaleIncident(incident_id, expected, current())
