"""The SQL behind the grid worker's terminal: an account's tasks (open incidents assigned
to them, to their units or to their teams' grids), the grids and buildings of the
offline cache.

Rows in, rows out, bound parameters; the open statuses are the vocabulary of
:mod:`geogrid.core.lifecycle` (checked identifiers, matching the partial indexes of
revision 0012).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, text

from geogrid.core.hierarchy import ATTRIBUTION_COLUMNS
from geogrid.core.lifecycle import OPEN_STATUSES
from geogrid.store.engine import connection

__all__ = [
    "OPEN_CONDITION",
    "my_units_sql",
    "task_rows",
    "grid_codes_under",
    "grid_features",
    "building_features",
]

Bind = Engine | Connection


def _open_condition(alias: str) -> str:
    for s in OPEN_STATUSES:
        if not re.fullmatch(r"[a-z_]+", s):  # vocabulary constants, never user input
            raise ValueError(f"not a plain status: {s!r}")
    return f"{alias}.status IN (" + ", ".join(f"'{s}'" for s in OPEN_STATUSES) + ")"


#: ``i.status`` is open (not resolved/closed/rejected/duplicate), as a literal list so
#: that the partial indexes of revision 0012 apply
OPEN_CONDITION: Final[str] = _open_condition("i")


def my_units_sql(me_param: str = "me") -> str:
    """The unit codes an account answers for: its own units and its teams' grids."""
    return (
        f"SELECT au.unit_code AS code FROM account_unit au WHERE au.account_id = :{me_param} "
        "UNION SELECT tg.grid_code FROM team_member tm JOIN team_grid tg ON "
        f"tg.team_id = tm.team_id WHERE tm.account_id = :{me_param}"
    )


_UNITS = ", ".join(f"i.{c}" for c in ATTRIBUTION_COLUMNS)


def task_rows(
    bind: Bind, account_id: int, *, now: datetime, limit: int, offset: int
) -> list[dict[str, Any]]:
    """Open incidents assigned to the account, to one of its units (a worker's grids, an
    admin's unit) or to a grid of one of its teams: overdue first, then by due time.

    Each row: the incident's id, category (+ names), description, status, times,
    assignment, unit codes, WGS84 lon/lat, ``via`` (``me``, ``unit`` or ``team``) and
    ``total`` (the number of tasks on every page).
    """
    sql = (
        f"WITH mine AS ({my_units_sql()}), own AS (SELECT au.unit_code AS code FROM "
        "account_unit au WHERE au.account_id = :me), "
        # two index lookups (revision 0012's partial indexes), not one OR over every row
        f"task_ids AS (SELECT i.id FROM incident i WHERE {OPEN_CONDITION} AND "
        "i.assignee_id = :me UNION SELECT i.id FROM mine m JOIN incident i ON "
        f"i.assigned_unit = m.code AND {OPEN_CONDITION}) "
        "SELECT i.id, i.category, c.name_zh AS category_name_zh, c.name_en AS "
        "category_name_en, i.description, i.status, i.reported_at, i.updated_at, i.due_at, "
        f"i.assigned_level, i.assigned_unit, i.assignee_id, {_UNITS}, ST_X(i.geom) AS lon, "
        "ST_Y(i.geom) AS lat, CASE WHEN i.assignee_id = :me THEN 'me' WHEN i.assigned_unit "
        "IN (SELECT code FROM own) THEN 'unit' ELSE 'team' END AS via, "
        "count(*) OVER () AS total FROM task_ids t JOIN incident i ON i.id = t.id "
        "JOIN category c ON c.code = i.category "
        "ORDER BY (i.due_at IS NOT NULL AND i.due_at < :now) DESC, "
        "i.due_at ASC NULLS LAST, i.id LIMIT :limit OFFSET :offset"
    )
    with connection(bind) as c:
        rows = (
            c.execute(
                text(sql),
                {"me": int(account_id), "now": now, "limit": int(limit), "offset": int(offset)},
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def grid_codes_under(bind: Bind, units: Sequence[str]) -> list[str]:
    """The published grids inside (or equal to) any of ``units``."""
    if not units:
        return []
    with connection(bind) as c:
        rows = c.execute(
            text(
                "SELECT u.code FROM unit u JOIN boundary_version v ON v.id = u.version_id AND "
                "v.status = 'published' WHERE u.level = 'grid' AND EXISTS (SELECT 1 FROM "
                "unnest(CAST(:units AS text[])) s(code) WHERE left(u.code, length(s.code)) = "
                "s.code) ORDER BY u.code"
            ),
            {"units": list(units)},
        ).all()
    return [str(r[0]) for r in rows]


def grid_features(bind: Bind, codes: Sequence[str]) -> list[dict[str, Any]]:
    """The published grids ``codes``: code, name, parent_code, population, households,
    area_m2 and ``geometry`` (GeoJSON text, WGS84, 6 decimals)."""
    if not codes:
        return []
    with connection(bind) as c:
        rows = (
            c.execute(
                text(
                    "SELECT u.code, u.name, u.parent_code, u.population, u.households, "
                    "u.area_m2, ST_AsGeoJSON(u.geom, 6) AS geometry FROM unit u JOIN "
                    "boundary_version v ON v.id = u.version_id AND v.status = 'published' "
                    "WHERE u.level = 'grid' AND u.code = ANY(:codes) ORDER BY u.code"
                ),
                {"codes": list(codes)},
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def building_features(
    bind: Bind, codes: Sequence[str], *, limit: int
) -> tuple[str, list[dict[str, Any]]]:
    """Buildings in the grids ``codes`` as (source, rows): the registry's buildings
    (``reg_building``: id, ref, name, address, floors, grid_code) when it has rows, else
    the building points (``building``: id, households, population, grid_code); each with
    ``geometry`` (GeoJSON text). At most ``limit`` rows."""
    if not codes:
        return "building", []
    with connection(bind) as c:
        has_reg = c.execute(text("SELECT to_regclass('reg_building') IS NOT NULL")).scalar()
        if has_reg and c.execute(text("SELECT EXISTS (SELECT 1 FROM reg_building)")).scalar():
            rows = (
                c.execute(
                    text(
                        "SELECT b.id, b.ref, b.name, b.address, b.floors, b.grid_code, "
                        "ST_AsGeoJSON(b.geom, 6) AS geometry FROM reg_building b "
                        "WHERE b.grid_code = ANY(:codes) ORDER BY b.grid_code, b.id LIMIT :limit"
                    ),
                    {"codes": list(codes), "limit": int(limit)},
                )
                .mappings()
                .all()
            )
            return "reg_building", [dict(r) for r in rows]
        rows = (
            c.execute(
                text(
                    "SELECT b.id, b.households, b.population, u.code AS grid_code, "
                    "ST_AsGeoJSON(b.geom, 6) AS geometry FROM unit u JOIN boundary_version v "
                    "ON v.id = u.version_id AND v.status = 'published' JOIN building b ON "
                    "ST_Intersects(u.geom, b.geom) WHERE u.level = 'grid' AND "
                    "u.code = ANY(:codes) ORDER BY u.code, b.id LIMIT :limit"
                ),
                {"codes": list(codes), "limit": int(limit)},
            )
            .mappings()
            .all()
        )
    return "building", [dict(r) for r in rows]
