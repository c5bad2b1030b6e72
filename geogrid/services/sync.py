"""The sync bundle of the grid worker's terminal (``GET /sync``): everything the phone
caches for offline work, in one call and one transaction.

``server_time`` (send it back as ``since`` next time), the ``account`` (with its teams),
``grids`` (GeoJSON of the grids the account works in: its own grids and its teams';
a community admin's community's grids), ``buildings`` (GeoJSON points in those grids:
the registry's buildings when loaded, else the building points), ``tasks`` (as
:func:`geogrid.services.tasks.my_tasks`, first page), ``notifications`` created since
``since`` (derived first), ``categories`` (the incident catalogue), the dispute
vocabulary, and ``care`` (people due a visit in those grids, masked per scope).

Cheap by construction: a handful of indexed queries for one account, no city-wide
scans; the API adds an ``ETag`` over everything but ``server_time``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from geogrid.core import disputes as core_disputes
from geogrid.core.accounts import Account
from geogrid.core.notifications import KIND_LABELS
from geogrid.core.scope import Scope
from geogrid.core.teams import role_label
from geogrid.errors import Forbidden, InvalidInput
from geogrid.services import incidents, notifications, registry_care, tasks
from geogrid.settings import Settings, get_settings
from geogrid.store import sync as store
from geogrid.store import teams as store_teams
from geogrid.store.engine import transaction

__all__ = ["MAX_TASKS", "MAX_BUILDINGS", "sync_grids", "bundle"]

Bind = Engine | Connection

#: the first tasks sent (overdue first); more through ``GET /tasks``
MAX_TASKS = 500
#: at most this many buildings (a grid has a few hundred)
MAX_BUILDINGS = 5000


def sync_grids(conn: Bind, account: Account) -> list[str]:
    """The grids of an account's offline cache: a worker's grids, a community admin's
    community's grids, plus the grids of the account's teams."""
    own: list[str] = []
    if account.role == "worker":
        own = list(account.units)
    elif account.role == "community_admin":
        own = store.grid_codes_under(conn, list(account.units))
    return sorted({*own, *store_teams.team_grid_codes(conn, account.id)})


def _feature(row: dict[str, Any], id_key: str) -> dict[str, Any]:
    props = {k: v for k, v in row.items() if k not in ("geometry", id_key)}
    geom = row.get("geometry")
    return {
        "type": "Feature",
        "id": row[id_key],
        "geometry": json.loads(geom) if geom else None,
        "properties": props,
    }


def _care(
    conn: Connection, scope: Scope, grid_codes: list[str], settings: Settings
) -> list[dict[str, Any]]:
    """People due a visit in the grids (:func:`geogrid.services.registry_care.care_list`);
    none for a caller who does not read registry records or has too many grids for one
    list (a street's or district's admin: they use the registry's own reads)."""
    try:
        return registry_care.care_list(conn, scope, grid_codes, settings=settings, via="sync")
    except (Forbidden, InvalidInput):
        return []


def bundle(
    bind: Bind,
    account: Account,
    *,
    since: datetime | None = None,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """The sync bundle of ``account`` (see the module notes)."""
    s = settings or get_settings()
    when = now or datetime.now(UTC)
    with transaction(bind) as c:
        notifications.refresh_notifications(c, when, account_id=account.id, settings=s)
        scope = tasks.task_scope(c, account)
        grids = sync_grids(c, account)
        source, buildings = store.building_features(c, grids, limit=MAX_BUILDINGS)
        task_list, total = tasks.my_tasks(c, account, limit=MAX_TASKS, now=when)
        notes = notifications.list_notifications(c, account, since=since, refresh=False)
        cats = incidents.list_categories(c)
        care = _care(c, scope, grids, s)
        teams = [
            {**t, "role_label": role_label(t["role"])} for t in store_teams.teams_of(c, account.id)
        ]
        grid_rows = store.grid_features(c, grids)
    return {
        "server_time": when,
        "since": since,
        "account": {
            "id": account.id,
            "name": account.name,
            "role": account.role,
            "units": list(account.units),
            "teams": teams,
        },
        "grids": {
            "type": "FeatureCollection",
            "features": [_feature(r, "code") for r in grid_rows],
        },
        "buildings": {
            "type": "FeatureCollection",
            "source": source,
            "features": [_feature(r, "id") for r in buildings],
        },
        "tasks": task_list,
        "tasks_total": total,
        "notifications": notes,
        "categories": cats,
        "vocabulary": {
            "dispute_categories": {
                k: {"zh": zh, "en": en} for k, (zh, en) in core_disputes.DISPUTE_CATEGORIES.items()
            },
            "dispute_outcomes": {
                k: {"zh": zh, "en": en} for k, (zh, en) in core_disputes.OUTCOMES.items()
            },
            "notification_kinds": {k: {"zh": zh, "en": en} for k, (zh, en) in KIND_LABELS.items()},
        },
        "care": care,
    }
