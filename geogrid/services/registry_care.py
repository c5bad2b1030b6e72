"""The care list (关爱对象走访): per grid, the people in care groups with their last visit
and whether a visit is overdue (issue 15). It feeds the worker's tasks and the terminal's
sync (``GET /sync`` calls :func:`care_list`).

The last visit of a person is the latest ``day`` of a service-register entry
(``service_entry``, issue 13) naming the person (``person_ids``) or their household
(``household_id``), of any kind. The next visit is due ``visit_every_days`` after it (the
strictest of the person's groups), else after the day they joined a group (``since``); a
person never visited and without ``since`` is due now. A visit is overdue the day after
it was due, in the city's time zone (:func:`geogrid.core.registry_access.is_overdue`).

Access is the registry's (:mod:`geogrid.services.registry`): records in the caller's
scope only, names and addresses clear, phone as its mask; one audit row per list.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from geogrid.core.hierarchy import level_of_code
from geogrid.core.registry_access import age_on, is_overdue, visit_due
from geogrid.core.scope import Scope
from geogrid.errors import InvalidInput
from geogrid.services import audit
from geogrid.services.registry import require_records
from geogrid.settings import Settings, get_settings
from geogrid.store import registry_read as store
from geogrid.store.engine import transaction

__all__ = ["CARE_FIELDS", "care_list", "grid_care"]

#: personal fields of a care-list row read in clear
CARE_FIELDS: tuple[str, ...] = ("name", "sex", "birth_date", "address", "care_groups")
_MAX_GRIDS = 200


def care_list(
    conn: Engine | Connection,
    scope: Scope,
    grid_codes: Sequence[str],
    *,
    today: date | None = None,
    settings: Settings | None = None,
    via: str = "sync",
) -> list[dict[str, Any]]:
    """The people in care groups in ``grid_codes`` inside ``scope``: overdue first (longest
    overdue first), then by due day.

    Each row: ``person_id``, ``name``, ``sex``, ``age``, ``address``, ``phone_mask``,
    ``household_id``, ``building_id``, ``grid_code``, ``lon``/``lat``, ``groups`` (care-group
    codes), ``visit_every_days``, ``last_visit`` (date or None), ``due`` (date or None:
    due now) and ``overdue`` (bool), ``days_overdue`` (int or None).

    A caller who does not read registry records (leaders, anonymous …) gets Forbidden; rows
    outside the caller's scope are simply not there. ``today`` defaults to today in the
    city's zone."""
    require_records(scope)
    grids = sorted({str(g).strip() for g in grid_codes if str(g).strip()})
    if len(grids) > _MAX_GRIDS:
        raise InvalidInput("grid", f"{len(grids)} grids", f"at most {_MAX_GRIDS} grids at once")
    for g in grids:
        if level_of_code(g, "grid") != "grid" or not g.isdigit():
            raise InvalidInput("grid", g, "a grid code of 15 digits")
    if not grids:
        return []
    s = settings or get_settings()
    day = today or datetime.now(ZoneInfo(s.city.timezone)).date()
    with transaction(conn) as c:
        rows = store.care_rows(c, grids, scope=scope, with_visits=store.service_entry_exists(c))
        out = []
        for r in rows:
            due = visit_due(r["last_visit"], r["since"], int(r["visit_every_days"]))
            late = is_overdue(due, day)
            out.append(
                {
                    "person_id": r["id"],
                    "name": r["name"],
                    "sex": r["sex"],
                    "age": age_on(r["birth_date"], day),
                    "address": r["address"],
                    "phone_mask": r["phone_mask"],
                    "household_id": r["household_id"],
                    "building_id": r["building_id"],
                    "grid_code": r["grid_code"],
                    "lon": r["lon"],
                    "lat": r["lat"],
                    "groups": list(r["groups"] or []),
                    "visit_every_days": int(r["visit_every_days"]),
                    "last_visit": r["last_visit"],
                    "due": due,
                    "overdue": late,
                    "days_overdue": (day - due).days if late and due is not None else None,
                }
            )
        audit.record_read(
            c, scope, "person", [r["person_id"] for r in out], list(CARE_FIELDS), {"via": via}
        )
    out.sort(key=lambda r: (not r["overdue"], r["due"] or date.min, r["person_id"]))
    return out


def grid_care(
    bind: Engine | Connection,
    scope: Scope,
    grid: str,
    *,
    overdue_only: bool = False,
    today: date | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """The care list of one grid (``GET /registry/care``, ``geogrid registry care``):
    ``{"grid", "today", "people": [...], "overdue": n, "total": n}``."""
    s = settings or get_settings()
    day = today or datetime.now(ZoneInfo(s.city.timezone)).date()
    rows = care_list(bind, scope, [grid], today=day, settings=s, via="care")
    n_overdue = sum(1 for r in rows if r["overdue"])
    people = [r for r in rows if r["overdue"]] if overdue_only else rows
    return {"grid": grid, "today": day, "people": people, "overdue": n_overdue, "total": len(rows)}
