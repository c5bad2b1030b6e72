"""The daily service register (为民服务事项登记表): record a worker's service items and read
them back inside the caller's scope.

An entry is attributed (its four unit codes, which scope its reads) by, in order: the grid
covering its position when one is given; the registry's building, else household, when
one is named (``reg_building``/``reg_household`` of revision 0009, when loaded); else the
recorder's own first unit. Workers read their own entries; community/street/district
admins the entries attributed to their subtree; city-wide roles all. The recorder's name,
the result, the note and the people's ids are personal: clear for the recorder, the admins
of the entry's units and ``admin``; masked for planners, leaders and analysts. Clear
reads are written to the audit trail.

Photos: the entry keeps the sha256s it was sent in ``service_entry.media``; when TERM-A's
media service (:mod:`geogrid.services.media`) is installed they are also attached to the
entry there (``owner_kind='service_entry'``), which is what lets ``GET /media/{sha256}``
serve them to the entry's readers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from geogrid.core import crs as gcrs
from geogrid.core.accounts import Account
from geogrid.core.hierarchy import ATTRIBUTION_COLUMNS
from geogrid.core.masking import MASKED, mask_name
from geogrid.core.patrol import parse_day
from geogrid.core.scope import Scope
from geogrid.core.service_register import (
    ENTRY_PERSONAL,
    check_day,
    check_entry_fields,
    service_kind,
)
from geogrid.core.timewindow import month_bounds
from geogrid.errors import Forbidden, InvalidInput
from geogrid.services import audit, idempotency
from geogrid.services.patrols import FIELD_ROLES, attach_media, codes_of_account
from geogrid.settings import get_settings
from geogrid.store import patrols as store_patrols
from geogrid.store import service_register as store
from geogrid.store.engine import transaction

__all__ = ["MAX_RESULT", "MAX_NOTE", "record_entry", "list_entries", "entry_view"]

Bind = Engine | Connection

#: the longest result and note (characters)
MAX_RESULT = 2000
MAX_NOTE = 4000
_SHA256 = frozenset("0123456789abcdef")


def _text(value: Any, parameter: str, limit: int, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(parameter, value, f"a non-empty text of at most {limit} characters")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(parameter, value, f"a text of at most {limit} characters")
    return value.strip()


def _media_list(media: Sequence[str] | None) -> list[str]:
    out = []
    for i, m in enumerate(media or []):
        s = str(m).lower()
        if len(s) != 64 or not set(s) <= _SHA256:
            raise InvalidInput(f"media[{i}]", m, "a sha256 (64 hexadecimal characters)")
        out.append(s)
    return out


def _month_days(month: str, tz: str) -> tuple[date, date]:
    s, e = month_bounds(month, tz)
    return s.date(), e.date()


def entry_view(row: dict[str, Any], *, clear: bool) -> dict[str, Any]:
    """An entry as answered: the kind's names, and its personal fields masked unless
    ``clear``."""
    k = service_kind(row["kind"])
    out = {**row, "kind_zh": k.name_zh, "kind_en": k.name_en, "media": list(row.get("media") or [])}
    if not clear:
        out["account_name"] = mask_name(row.get("account_name"))
        out["result"] = MASKED if row.get("result") is not None else None
        out["note"] = MASKED if row.get("note") is not None else None
        out["person_ids"] = None
    else:
        out["person_ids"] = [int(i) for i in row.get("person_ids") or []]
    return out


def _attribution(
    conn: Connection,
    actor: Account,
    lon: float | None,
    lat: float | None,
    building_id: int | None,
    household_id: int | None,
) -> dict[str, str | None]:
    if lon is not None and lat is not None:
        codes = store.units_at(conn, lon, lat)
        if codes is not None:
            return codes
    for table, rid in (("reg_building", building_id), ("reg_household", household_id)):
        if rid is not None and store.registry_table_exists(conn, table):
            codes = store.registry_codes(conn, table, rid)
            if codes is not None and codes.get(ATTRIBUTION_COLUMNS[-1]):
                return codes
    return codes_of_account(actor)


def _check_refs(
    conn: Connection,
    household_id: int | None,
    building_id: int | None,
    person_ids: list[int],
) -> None:
    if household_id is not None:
        if not store.registry_table_exists(conn, "reg_household") or not store.existing_ids(
            conn, "reg_household", [household_id]
        ):
            raise InvalidInput("household_id", household_id, "the id of a reg_household row")
    if building_id is not None:
        table = store_patrols.building_table(conn)
        if not store_patrols.building_exists(conn, table, [building_id]):
            raise InvalidInput("building_id", building_id, f"the id of a {table} row")
    if person_ids:
        found = (
            store.existing_ids(conn, "reg_person", person_ids)
            if store.registry_table_exists(conn, "reg_person")
            else set()
        )
        missing = [i for i in person_ids if i not in found]
        if missing:
            raise InvalidInput("person_ids", missing[0], "ids of reg_person rows")


def record_entry(
    bind: Bind,
    *,
    actor: Account,
    day: Any,
    kind: str,
    result: str,
    household_id: int | None = None,
    building_id: int | None = None,
    person_ids: Sequence[int] | None = None,
    people_count: int | None = None,
    note: str | None = None,
    lon: float | None = None,
    lat: float | None = None,
    crs: str = "wgs84",
    accuracy_m: float | None = None,
    media: Sequence[str] | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Store one service item of ``actor``'s day (one transaction; a retry with the same
    ``idempotency_key`` returns the first answer).

    ``day`` is a calendar day in the city's zone, from 400 days ago to today; ``kind`` one
    of :data:`geogrid.core.service_register.SERVICE_KINDS`; ``people_count`` defaults to
    the number of ``person_ids`` (at least 1).

    Returns the entry as :func:`list_entries` gives it (clear: it is the caller's own).
    """
    if not actor.active or actor.role not in FIELD_ROLES:
        raise Forbidden(
            f"role {actor.role!r} may not record service entries: workers, community/street/"
            "district admins and admin do (planners, leaders and analysts read)"
        )
    tz = get_settings().city.timezone
    d = check_day(parse_day(day), datetime.now(ZoneInfo(tz)).date())
    k, people = check_entry_fields(kind, people_count=people_count, person_ids=person_ids)
    res = _text(result, "result", MAX_RESULT, True)
    nt = _text(note, "note", MAX_NOTE, False)
    ids = [int(i) for i in person_ids or []]
    media_list = _media_list(media)
    wlon = wlat = None
    crs_name = gcrs.normalize_crs(crs)
    if (lon is None) != (lat is None):
        raise InvalidInput("lon/lat", (lon, lat), "both lon and lat, or neither")
    if lon is not None and lat is not None:
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise InvalidInput("lon/lat", (lon, lat), "finite numbers")
        x, y = gcrs.to_wgs84(float(lon), float(lat), crs_name)
        if not (abs(x) <= 180 and abs(y) <= 90):
            raise InvalidInput("lon/lat", (lon, lat), f"a coordinate on the earth in {crs_name}")
        wlon, wlat = float(x), float(y)
    principal = idempotency.principal_of(actor.id)
    with transaction(bind) as c:
        first = idempotency.replay_or_claim(
            c,
            idempotency_key,
            principal=principal,
            operation="record_service_entry",
            request={
                "day": d,
                "kind": k,
                "household_id": household_id,
                "building_id": building_id,
                "person_ids": ids,
                "people_count": people,
                "result": res,
                "note": nt,
                "lon": lon,
                "lat": lat,
                "crs": crs_name,
                "accuracy_m": accuracy_m,
                "media": media_list,
            },
        )
        if first is not None:
            return first
        _check_refs(c, household_id, building_id, ids)
        codes = _attribution(c, actor, wlon, wlat, building_id, household_id)
        row = store.insert_entry(
            c,
            {
                "account_id": actor.id,
                "day": d,
                "kind": k,
                "household_id": household_id,
                "building_id": building_id,
                "person_ids": ids or None,
                "people_count": people,
                "result": res,
                "note": nt,
                "src_crs": crs_name if lon is not None else None,
                "src_lon": lon,
                "src_lat": lat,
                "accuracy_m": accuracy_m,
                "media": media_list or None,
                **{col: codes.get(col) for col in ATTRIBUTION_COLUMNS},
            },
            wlon,
            wlat,
        )
        eid = int(row["id"])
        attach_media(c, media_list, "service_entry", eid, actor)
        audit.record(
            c,
            actor=actor,
            action="service_entry.create",
            resource="service_entry",
            ids=[eid],
            fields=list(ENTRY_PERSONAL),
        )
        (stored,) = store.entry_rows(
            c, start=d, end=d + timedelta(days=1), scope=Scope.system(), ids=[eid]
        )
        out = entry_view(stored, clear=True)
        idempotency.remember(c, idempotency_key, principal=principal, answer=out, resource_id=eid)
    return out


def list_entries(
    bind: Bind,
    *,
    scope: Scope,
    month: str,
    account_id: int | None = None,
    tz: str | None = None,
) -> list[dict[str, Any]]:
    """A month's entries (days in the city's zone) inside the caller's scope (see the module
    notes), of one account when given, by day."""
    d0, d1 = _month_days(month, tz or get_settings().city.timezone)
    rows = store.entry_rows(
        bind,
        start=d0,
        end=d1,
        scope=scope,
        own_only=scope.role == "worker",
        account_id=account_id,
    )
    out, clear_ids = [], []
    for r in rows:
        clear = scope.personal_clear(r) or (
            scope.account_id is not None and r["account_id"] == scope.account_id
        )
        if clear:
            clear_ids.append(r["id"])
        out.append(entry_view(r, clear=clear))
    audit.record_read(
        bind, scope, "service_entry", clear_ids, list(ENTRY_PERSONAL), {"month": month}
    )
    return out
