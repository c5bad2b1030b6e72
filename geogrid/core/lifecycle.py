"""The incident lifecycle: statuses, the transition table, routing (流转) and escalation.

Pure functions and constants, no database. The incident service
(:mod:`geogrid.services.incidents`) applies them inside transactions; the SQL is in
``geogrid/store/workflow.py``.

Statuses
--------
``reported → accepted → dispatched → in_progress → resolved → closed``, plus the final
``rejected`` (not a matter for the grid) and ``duplicate`` (already reported). A resolved
incident can be reopened (``resolved → in_progress``) when the resident is not satisfied;
``closed``, ``rejected`` and ``duplicate`` are final.

Routing and escalation
----------------------
A new incident goes to its grid's worker (网格员). A category whose ``escalate_level`` is
above ``grid`` (illegal construction, say) goes straight to the unit of that level. Every
time limit (``limit_hours``) that passes without the incident being resolved raises the
required level by one above that starting level: the first when
``due_at = reported_at + limit_hours`` passes, the second at ``reported_at + 2 × limit_hours``
and so on, up to the district.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from geogrid.core.accounts import ROLE_FOR_LEVEL
from geogrid.core.hierarchy import LEVEL_COLUMN, LEVELS_UP
from geogrid.errors import Conflict, InvalidInput

__all__ = [
    "STATUSES",
    "FINAL",
    "DONE",
    "OPEN_STATUSES",
    "DONE_STATUSES",
    "HANDLED_STATUSES",
    "INITIAL_STATUS",
    "TOP_LEVEL",
    "TRANSITIONS",
    "TIMESTAMP_COLUMN",
    "OPEN311_CLOSED",
    "check_statuses",
    "check_transition",
    "transition_columns",
    "allowed_transitions",
    "open311_status",
    "statuses_for_open311",
    "level_rank",
    "next_level",
    "due_at",
    "is_overdue",
    "escalation_level",
    "route",
    "unit_at_or_above",
    "admin_role_for",
    "open311_window",
    "service_group",
]

STATUSES = (
    "reported",
    "accepted",
    "dispatched",
    "in_progress",
    "resolved",
    "closed",
    "rejected",
    "duplicate",
)
#: statuses nothing can leave
FINAL = frozenset({"closed", "rejected", "duplicate"})
#: statuses where the time limit no longer runs (never overdue)
DONE = frozenset({"resolved", "closed", "rejected", "duplicate"})
#: statuses of an open incident (the time limit runs), in lifecycle order
OPEN_STATUSES = tuple(s for s in STATUSES if s not in DONE)
#: :data:`DONE` in lifecycle order (for SQL ``IN`` lists)
DONE_STATUSES = tuple(s for s in STATUSES if s in DONE)

#: the status of a new incident
INITIAL_STATUS = STATUSES[0]
#: statuses of an incident whose problem was dealt with (counted as handled in the register)
HANDLED_STATUSES = ("resolved", "closed")
#: the highest level: nothing escalates beyond it
TOP_LEVEL = LEVELS_UP[-1]

#: from-status → statuses it may move to
TRANSITIONS: dict[str, frozenset[str]] = {
    "reported": frozenset({"accepted", "rejected", "duplicate"}),
    "accepted": frozenset({"dispatched", "in_progress", "rejected", "duplicate"}),
    "dispatched": frozenset({"in_progress", "accepted", "rejected"}),
    "in_progress": frozenset({"resolved", "dispatched"}),
    "resolved": frozenset({"closed", "in_progress"}),
    "closed": frozenset(),
    "rejected": frozenset(),
    "duplicate": frozenset(),
}

#: the timestamp column set when an incident enters a status (rejected and duplicate
#: leave the workflow: they set ``closed_at``)
TIMESTAMP_COLUMN = {
    "accepted": "accepted_at",
    "dispatched": "dispatched_at",
    "resolved": "resolved_at",
    "closed": "closed_at",
    "rejected": "closed_at",
    "duplicate": "closed_at",
}

#: statuses shown as ``closed`` in Open311 (the resident's problem is dealt with)
OPEN311_CLOSED = frozenset({"resolved", "closed", "rejected", "duplicate"})


def _check_status(value: Any, parameter: str = "status") -> str:
    if value not in STATUSES:
        raise InvalidInput(parameter, value, "one of " + ", ".join(STATUSES))
    return value


def check_statuses(values: Iterable[Any], parameter: str = "status") -> list[str]:
    """The statuses given, as strings, or InvalidInput naming ``parameter`` and the statuses.

    >>> check_statuses(["reported", "closed"])
    ['reported', 'closed']
    >>> check_statuses(["done"])
    Traceback (most recent call last):
    ...
    geogrid.errors.InvalidInput: status='done' is not valid: expected one of reported, \
accepted, dispatched, in_progress, resolved, closed, rejected, duplicate
    """
    out = [str(v) for v in values]
    bad = [v for v in out if v not in STATUSES]
    if bad:
        raise InvalidInput(parameter, ",".join(bad), "one of " + ", ".join(STATUSES))
    return out


def allowed_transitions(from_status: str) -> list[str]:
    """Statuses an incident in ``from_status`` may move to (table order)."""
    _check_status(from_status, "from_status")
    return [s for s in STATUSES if s in TRANSITIONS[from_status]]


def check_transition(from_status: str, to_status: str) -> None:
    """Raise unless ``from_status → to_status`` is in :data:`TRANSITIONS`.

    Raises
    ------
    InvalidInput
        ``to_status`` is not a status at all.
    Conflict
        The move is not allowed; the message names both statuses and what is allowed.

    Examples
    --------
    >>> check_transition("reported", "accepted")
    >>> check_transition("closed", "accepted")
    Traceback (most recent call last):
    ...
    geogrid.errors.Conflict: cannot move an incident from 'closed' to 'accepted': 'closed' is final
    """
    _check_status(to_status)
    allowed = allowed_transitions(from_status)
    if to_status in allowed:
        return
    if not allowed:
        raise Conflict(
            f"cannot move an incident from {from_status!r} to {to_status!r}: "
            f"{from_status!r} is final"
        )
    raise Conflict(
        f"cannot move an incident from {from_status!r} to {to_status!r}: allowed "
        f"from {from_status!r}: {', '.join(allowed)}"
    )


def transition_columns(from_status: str, to_status: str, at: datetime) -> dict[str, Any]:
    """The incident columns a move ``from_status → to_status`` at ``at`` sets.

    ``status`` and ``updated_at`` always; the status's timestamp column
    (:data:`TIMESTAMP_COLUMN`); reopening ``resolved → in_progress`` clears ``resolved_at``.
    The move itself is checked with :func:`check_transition`.

    >>> from datetime import UTC
    >>> t = datetime(2026, 5, 1, 8, tzinfo=UTC)
    >>> sorted(transition_columns("reported", "accepted", t))
    ['accepted_at', 'status', 'updated_at']
    >>> transition_columns("resolved", "in_progress", t)["resolved_at"] is None
    True
    """
    check_transition(from_status, to_status)
    sets: dict[str, Any] = {"status": to_status, "updated_at": at}
    col = TIMESTAMP_COLUMN.get(to_status)
    if col:
        sets[col] = at
    if from_status == "resolved" and to_status == "in_progress":
        sets["resolved_at"] = None
    return sets


def open311_status(status: str) -> str:
    """Open311 ``open``/``closed`` for a geogrid status.

    >>> open311_status("in_progress"), open311_status("resolved")
    ('open', 'closed')
    """
    _check_status(status)
    return "closed" if status in OPEN311_CLOSED else "open"


def statuses_for_open311(value: str) -> list[str]:
    """geogrid statuses matching an Open311 ``status`` filter (``open``, ``closed`` or
    ``open,closed``)."""
    wanted = {v.strip().lower() for v in str(value).split(",") if v.strip()}
    if not wanted or not wanted <= {"open", "closed"}:
        raise InvalidInput("status", value, "open, closed or open,closed")
    return [s for s in STATUSES if open311_status(s) in wanted]


def level_rank(level: str, parameter: str = "level") -> int:
    """0 for grid … 3 for district.

    >>> level_rank("grid"), level_rank("district")
    (0, 3)
    """
    if level not in LEVELS_UP:
        raise InvalidInput(parameter, level, "one of " + ", ".join(LEVELS_UP))
    return LEVELS_UP.index(level)


def next_level(level: str) -> str | None:
    """The level above (None above district).

    >>> next_level("grid"), next_level("district")
    ('community', None)
    """
    r = level_rank(level)
    return LEVELS_UP[r + 1] if r + 1 < len(LEVELS_UP) else None


def due_at(reported_at: datetime, limit_hours: float) -> datetime:
    """``reported_at + limit_hours`` (the time limit of the category)."""
    return reported_at + timedelta(hours=float(limit_hours))


def is_overdue(status: str, due: datetime | None, now: datetime) -> bool:
    """Overdue: not resolved/closed/rejected/duplicate and ``now > due``."""
    return due is not None and status not in DONE and now > due


def escalation_level(
    category: Mapping[str, Any],
    reported_at: datetime,
    now: datetime,
    current_level: str | None = None,
) -> str:
    """The level an unresolved incident should be handled at, ``now``.

    Parameters
    ----------
    category : mapping with ``limit_hours`` (float, hours) and ``escalate_level``
        (the lowest level that handles this category).
    reported_at, now : timezone-aware datetimes
    current_level : the level it is assigned to now (never lowered)

    Returns
    -------
    The higher of ``current_level`` and the category's ``escalate_level`` raised by one
    level per time limit passed since ``reported_at`` (capped at district). A limit has
    passed when ``now`` is strictly after it, so at ``now == due_at`` nothing is raised.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> t0 = datetime(2026, 5, 1, 8, tzinfo=timezone.utc)
    >>> cat = {"limit_hours": 24, "escalate_level": "grid"}
    >>> [escalation_level(cat, t0, t0 + timedelta(hours=h)) for h in (1, 24, 25, 49, 500)]
    ['grid', 'grid', 'community', 'street', 'district']
    >>> escalation_level({"limit_hours": 72, "escalate_level": "street"}, t0,
    ...                  t0 + timedelta(hours=73))
    'district'
    """
    base = level_rank(category.get("escalate_level") or "grid", "escalate_level")
    limit = float(category["limit_hours"])
    elapsed_h = (now - reported_at).total_seconds() / 3600.0
    periods = 0
    if limit > 0 and elapsed_h > limit:
        # past the k-th limit strictly: ceil(elapsed/limit) - 1 full limits are behind it
        periods = math.ceil(elapsed_h / limit) - 1
    rank = min(base + periods, len(LEVELS_UP) - 1)
    if current_level is not None:
        rank = max(rank, level_rank(current_level, "current_level"))
    return LEVELS_UP[rank]


def route(escalate_level: str, codes: Mapping[str, str | None]) -> tuple[str | None, str | None]:
    """The (level, unit code) a new incident is assigned to.

    ``codes`` maps level → the incident's unit code at that level (None outside). The
    incident goes to the unit at the category's ``escalate_level``; when the point has no
    unit at that level it goes to the nearest level above that it has, and failing that
    the nearest below. ``(None, None)`` when it is outside every unit.

    >>> route("grid", {"grid": "450902001001001", "community": "450902001001"})
    ('grid', '450902001001001')
    >>> route("street", {"grid": "g", "community": "c", "street": "s", "district": "d"})
    ('street', 's')
    """
    r = level_rank(escalate_level, "escalate_level")
    order = list(LEVELS_UP[r:]) + list(reversed(LEVELS_UP[:r]))
    for lv in order:
        code = codes.get(lv)
        if code:
            return lv, code
    return None, None


def unit_at_or_above(row: Mapping[str, Any], level: str) -> tuple[str | None, str | None]:
    """The first (level, code) at ``level`` or above that an incident row has a code for.

    ``row`` has the attribution columns (``grid_code`` … ``district_code``).

    >>> unit_at_or_above({"community_code": None, "street_code": "450902001"}, "community")
    ('street', '450902001')
    >>> unit_at_or_above({}, "street")
    (None, None)
    """
    for lv in LEVELS_UP[level_rank(level) :]:
        code = row.get(LEVEL_COLUMN[lv])
        if code:
            return lv, code
    return None, None


def admin_role_for(level: str) -> str:
    """The account role responsible at a level (``worker`` for grids).

    >>> admin_role_for("grid"), admin_role_for("street")
    ('worker', 'street_admin')
    """
    level_rank(level)
    return ROLE_FOR_LEVEL[level]


def open311_window(
    start: datetime | None,
    end: datetime | None,
    now: datetime,
    days: int = 90,
) -> tuple[datetime, datetime]:
    """The [start, end] window of an Open311 ``GET requests`` query.

    Without dates: the last ``days`` days up to ``now`` (the spec's default). Only
    ``start_date``: from it up to ``now``. Only ``end_date``: the ``days`` days before it.
    """
    if start is None:
        if end is None:
            return now - timedelta(days=days), now
        return end - timedelta(days=days), end
    if end is None:
        end = max(now, start)
    if start > end:
        raise InvalidInput(
            "start_date", start.isoformat(), f"a date before end_date ({end.isoformat()})"
        )
    return start, end


_GROUPS = (
    (
        ("garbage", "waste", "sanitation", "litter", "rubbish", "produce", "hygiene"),
        "sanitation 环境卫生",
    ),
    (("ad", "ads", "poster", "flyer"), "city appearance 市容"),
    (("construction", "building", "build"), "construction 违建"),
    (("vendor", "stall", "road", "occupation", "parking", "traffic"), "roads 道路占用"),
    (("dispute", "neighbour", "neighbor", "conflict", "mediation"), "disputes 矛盾纠纷"),
    (
        ("facility", "facilities", "lamp", "light", "manhole", "public"),
        "public facilities 公共设施",
    ),
    (("safety", "fire", "security", "hazard"), "safety 安全隐患"),
)


def service_group(code: str, name_en: str = "") -> str:
    """The Open311 ``group`` of a category, from words in its code or English name."""
    words: set[str] = set()
    for s in (code or "", name_en or ""):
        for w in s.lower().replace("-", "_").replace(" ", "_").replace(".", "_").split("_"):
            if w:
                words.add(w)
    for keys, group in _GROUPS:
        if words & set(keys):
            return group
    return "other 其他"
