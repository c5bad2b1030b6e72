"""The registry's reads (issue 15): search, one person / household / building, organisations,
aggregates, export and the map's address search — the one place that decides what a
caller reads in clear, masked or not at all.

The rule is :mod:`geogrid.core.registry_access` (read it first); in short:

* the SQL reads only rows inside the caller's scope
  (:func:`geogrid.store.scope.scope_condition`, ``personal=True``); a record outside it is
  :class:`~geogrid.errors.NotFound` (404), never Forbidden — it does not exist for them;
* workers, community/street/district admins and admin read records (their scope's) in
  clear; lists carry the ID number and phone as their stored masks (nothing decrypted),
  one person's record decrypts them (:meth:`Vault.open`);
* leaders, analysts and planners read aggregates only, counts below ``settings.registry_k``
  suppressed; anonymous callers read nothing but the address search's buildings and units;
* every clear read is ONE audit row (:func:`geogrid.services.audit.record_read`) in the
  read's transaction, naming the records' ids, the fields read and the optional reason —
  never a value (a searched name or number is not written either: only which criteria
  were used).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from geogrid.core.hierarchy import CODE_LENGTH, LEVEL_COLUMN, check_level, level_of_code
from geogrid.core.registry.grams import normalise_text, query_grams
from geogrid.core.registry_access import (
    EXPORT_ROLES,
    HOUSEHOLD_FIELDS,
    MAX_EXPORT_ROWS,
    MAX_PAGE,
    PERSON_LIST_FIELDS,
    PERSON_RECORD_FIELDS,
    age_on,
    check_reason,
    reads_aggregates,
    reads_records,
    suppress_row,
    suppressed,
    suppressed_count,
)
from geogrid.core.scope import Scope
from geogrid.errors import Forbidden, InvalidInput, NotFound
from geogrid.services import audit
from geogrid.services.registry_keys import vault
from geogrid.services.units import search_units
from geogrid.settings import Settings, get_settings
from geogrid.store import registry_read as store
from geogrid.store.engine import transaction

__all__ = [
    "require_records",
    "search_people",
    "get_person",
    "get_household",
    "get_building",
    "search_orgs",
    "aggregates",
    "geocode",
    "export_people_csv",
    "EXPORT_COLUMNS",
]

Bind = Engine | Connection

#: the columns of an export (CSV), in order
EXPORT_COLUMNS: tuple[str, ...] = (
    "id",
    "household_ref",
    "name",
    "sex",
    "birth_date",
    "id_number",
    "phone",
    "relation",
    "residence",
    "address",
    "grid_code",
    "community_code",
    "street_code",
    "district_code",
)
_MAX_QUERY = 100


def require_records(scope: Scope) -> None:
    """Forbidden unless the caller reads registry records (see the module notes)."""
    if not reads_records(scope.role):
        who = "an anonymous caller" if scope.is_public else f"role {scope.role!r}"
        raise Forbidden(
            f"{who} may not read registry records (workers, community/street/district "
            "admins and admin read those of their units; leaders, analysts and planners "
            "read aggregates only: GET /registry/aggregates/{level})"
        )


def _text(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    v = value.strip()
    if not v or len(v) > _MAX_QUERY:
        raise InvalidInput(name, value, f"1 to {_MAX_QUERY} characters")
    if not query_grams(v) or not normalise_text(v):
        raise InvalidInput(name, value, "some characters besides spaces")
    return v


def _unit(unit: str | None) -> tuple[str | None, str | None]:
    if unit is None or not unit.strip():
        return None, None
    code = unit.strip()
    level = level_of_code(code, "unit")
    if not code.isdigit():
        raise InvalidInput("unit", unit, "a unit code of digits (6, 9, 12 or 15)")
    return LEVEL_COLUMN[level], code


def _page(limit: int, offset: int) -> None:
    if not 1 <= int(limit) <= MAX_PAGE:
        raise InvalidInput("limit", limit, f"1 to {MAX_PAGE}")
    if not 0 <= int(offset) <= 10_000_000:
        raise InvalidInput("offset", offset, "0 to 10,000,000")


def _today(settings: Settings) -> Any:
    return datetime.now(ZoneInfo(settings.city.timezone)).date()


def _person_out(
    row: Mapping[str, Any], today: Any, groups: list[str] | None = None
) -> dict[str, Any]:
    d = {k: row.get(k) for k in store.PERSON_COLUMNS}
    d["age"] = age_on(row.get("birth_date"), today)
    d["id_number"] = None
    d["phone"] = None
    d["care_groups"] = groups or []
    return d


def search_people(
    bind: Bind,
    *,
    scope: Scope,
    name: str | None = None,
    id_number: str | None = None,
    phone: str | None = None,
    address: str | None = None,
    unit: str | None = None,
    limit: int = 50,
    offset: int = 0,
    reason: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """People inside the caller's scope matching every criterion given: ``name`` and
    ``address`` partial (Chinese or not), ``id_number`` and ``phone`` exact (through the
    keyed blind index), ``unit`` a unit code of any level. No criterion: every person of
    the caller's scope, page by page. Pages are in id order; with ``address``, in
    household order (the household's id, then the person's; people without one last).

    Returns ``{"items": [...], "limit", "offset", "more"}``: people with names, birth
    dates, addresses in clear and the ID number and phone as masks (``id_number`` and
    ``phone`` None); ``more`` is True when a next page exists. The clear read is one
    audit row (ids, fields, which criteria were used, the reason)."""
    require_records(scope)
    s = settings or get_settings()
    name_q, addr_q = _text("name", name), _text("address", address)
    id_q = _text("id_number", id_number)
    phone_q = _text("phone", phone)
    if phone_q is not None and not any(ch.isdigit() for ch in phone_q):
        raise InvalidInput("phone", phone, "a phone number (digits)")
    unit_column, unit_code = _unit(unit)
    _page(limit, offset)
    why = check_reason(reason, required=False)
    v = vault(s) if (id_q or phone_q) else None
    with transaction(bind) as c:
        rows = store.search_people(
            c,
            scope=scope,
            name=name_q,
            name_grams=query_grams(name_q) if name_q else None,
            id_blind=v.blind("id", id_q) if v and id_q else None,
            phone_blind=v.blind("phone", phone_q) if v and phone_q else None,
            address=addr_q,
            address_grams=query_grams(addr_q) if addr_q else None,
            unit_column=unit_column,
            unit_code=unit_code,
            limit=int(limit) + 1,
            offset=int(offset),
        )
        more = len(rows) > int(limit)
        rows = rows[: int(limit)]
        today = _today(s)
        items = [_person_out(r, today, list(r["care_groups"] or [])) for r in rows]
        used = [
            k
            for k, val in (
                ("name", name_q),
                ("id_number", id_q),
                ("phone", phone_q),
                ("address", addr_q),
                ("unit", unit_code),
            )
            if val is not None
        ]
        audit.record_read(
            c,
            scope,
            "person",
            [r["id"] for r in items],
            list(PERSON_LIST_FIELDS),
            {"via": "search", "by": used, "reason": why},
        )
    return {"items": items, "limit": int(limit), "offset": int(offset), "more": more}


def get_person(
    bind: Bind,
    person_id: int,
    *,
    scope: Scope,
    reason: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """One person's record in clear — the ID number and phone decrypted — with their care
    groups; NotFound when none or outside the caller's scope. Audited (with ``reason``)."""
    require_records(scope)
    s = settings or get_settings()
    why = check_reason(reason, required=False)
    with transaction(bind) as c:
        row = store.person_row(c, int(person_id), scope=scope)
        if row is None:
            raise NotFound(f"person {person_id} does not exist (or is outside your units)")
        groups = store.care_groups(c, [int(person_id)], scope=scope).get(int(person_id), [])
        out = _person_out(row, _today(s), [g["group"] for g in groups])
        v = vault(s)
        out["id_number"] = v.open(bytes(row["id_enc"])) if row.get("id_enc") else None
        out["phone"] = v.open(bytes(row["phone_enc"])) if row.get("phone_enc") else None
        out["care"] = groups
        fields = [f for f in PERSON_RECORD_FIELDS if f != "phone" or out["phone"] is not None]
        audit.record_read(c, scope, "person", [person_id], fields, {"via": "get", "reason": why})
    return out


def get_household(
    bind: Bind,
    household_id: int,
    *,
    scope: Scope,
    reason: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """One household with its members (as in a list: ID number and phone masked);
    NotFound when none or outside the caller's scope. Audited."""
    require_records(scope)
    s = settings or get_settings()
    why = check_reason(reason, required=False)
    with transaction(bind) as c:
        row = store.household_row(c, int(household_id), scope=scope)
        if row is None:
            raise NotFound(f"household {household_id} does not exist (or is outside your units)")
        members = store.household_members(c, int(household_id), scope=scope)
        groups = store.care_groups(c, [m["id"] for m in members], scope=scope)
        today = _today(s)
        out = dict(row)
        out["members"] = [
            _person_out(m, today, [g["group"] for g in groups.get(int(m["id"]), [])])
            for m in members
        ]
        audit.record_read(
            c, scope, "household", [household_id], list(HOUSEHOLD_FIELDS), {"reason": why}
        )
        audit.record_read(
            c,
            scope,
            "person",
            [m["id"] for m in members],
            list(PERSON_LIST_FIELDS),
            {"via": "household", "household_id": int(household_id), "reason": why},
        )
    return out


def get_building(bind: Bind, building_id: int, *, scope: Scope) -> dict[str, Any]:
    """One building with its counts and its households (ref, room, address, members);
    NotFound when none or outside the caller's scope. The households' addresses are a
    clear read (audited)."""
    require_records(scope)
    with transaction(bind) as c:
        row = store.building_row(c, int(building_id), scope=scope)
        if row is None:
            raise NotFound(f"building {building_id} does not exist (or is outside your units)")
        households = store.building_households(c, int(building_id), scope=scope)
        out = dict(row)
        out["household_list"] = households
        audit.record_read(
            c,
            scope,
            "household",
            [h["id"] for h in households],
            list(HOUSEHOLD_FIELDS),
            {"via": "building", "building_id": int(building_id)},
        )
    return out


def search_orgs(
    bind: Bind,
    *,
    scope: Scope,
    name: str | None = None,
    uscc: str | None = None,
    kind: str | None = None,
    unit: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """Organisations inside the caller's scope: ``name`` partial (name or address),
    ``uscc`` exact, ``kind``, ``unit``; paged like :func:`search_people`. Organisations
    hold no personal fields (no audit row)."""
    require_records(scope)
    name_q = _text("name", name)
    uscc_q = _text("uscc", uscc)
    kind_q = _text("kind", kind)
    unit_column, unit_code = _unit(unit)
    _page(limit, offset)
    with transaction(bind) as c:
        rows = store.org_rows(
            c,
            scope=scope,
            name=name_q,
            name_grams=query_grams(name_q) if name_q else None,
            uscc=uscc_q.upper() if uscc_q else None,
            kind=kind_q,
            unit_column=unit_column,
            unit_code=unit_code,
            limit=int(limit) + 1,
            offset=int(offset),
        )
    more = len(rows) > int(limit)
    return {"items": rows[: int(limit)], "limit": int(limit), "offset": int(offset), "more": more}


def _inside(scope: Scope, code: str) -> bool:
    """Is a unit ``code`` inside one of the units of a ``units`` scope?"""
    if scope.kind != "units":
        return True
    return any(code.startswith(u) and len(code) >= len(u) for u in scope.units)


def aggregates(
    bind: Bind,
    level: str,
    *,
    scope: Scope,
    unit: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Counts per unit of ``level`` from the registry — ``population``, ``households``,
    ``floating``, ``care`` (people in any care group) and ``care_groups`` (group → people)
    — inside the caller's scope (units at or inside the caller's units; the city for
    city-wide roles), optionally inside ``unit``. Population, households and floating
    population are the registry's counts kept on the published units (refreshed by every
    import and publish); care counts are counted from the care rows.

    For leaders, analysts and planners counts from 1 to k − 1 are None and listed in the
    row's ``suppressed`` (k = ``settings.registry_k``). Anonymous callers: Forbidden."""
    if not reads_aggregates(scope.role):
        raise Forbidden("registry aggregates are for signed-in staff")
    s = settings or get_settings()
    check_level(level)
    unit_column, unit_code = _unit(unit)
    if unit_code is not None and CODE_LENGTH[level] < len(unit_code):
        raise InvalidInput(
            "unit",
            unit,
            f"a unit at or above the {level} level (its code at most {CODE_LENGTH[level]} digits)",
        )
    with transaction(bind) as c:
        rows = store.aggregate_rows(c, level, scope=scope, unit_code=unit_code)
    rows = [r for r in rows if _inside(scope, str(r["code"]))]
    k = int(s.registry_k)
    out = []
    for r in rows:
        groups = dict(r.get("care_groups") or {})
        if suppressed(scope.role):
            row = suppress_row(r, ("population", "households", "floating", "care"), k)
            hidden = [
                f"care_groups.{g}" for g, n in groups.items() if suppressed_count(n, k) is None
            ]
            row["care_groups"] = {g: suppressed_count(n, k) for g, n in groups.items()}
            row["suppressed"] = [*row["suppressed"], *hidden]
        else:
            row = {**r, "care_groups": groups, "suppressed": []}
        out.append(row)
    return {
        "level": level,
        "unit": unit_code,
        "k": k if suppressed(scope.role) else None,
        "rows": out,
    }


def geocode(engine: Engine, q: str, *, scope: Scope, limit: int = 10) -> list[dict[str, Any]]:
    """The map's address search, offline: units (by name or code), buildings (by name or
    address) and — for callers who read records — households inside their scope (by
    address; audited). Exact names first, then buildings, households, units; at most
    ``limit``. Each match: ``kind`` (unit, building, household), ``id`` (building,
    household) or ``code`` (unit), ``name``, ``address``, ``lon``/``lat`` (WGS84) and
    ``bbox`` (min lon, min lat, max lon, max lat) where known.

    Anonymous callers, leaders, analysts and planners get units and buildings only: a
    building's name and address are not personal; a household's address is."""
    text = _text("q", q) or ""
    if not 1 <= int(limit) <= 50:
        raise InvalidInput("limit", limit, "1 to 50")
    grams = query_grams(text)
    out: list[dict[str, Any]] = []
    with transaction(engine) as c:
        for b in store.geocode_buildings(c, text, grams, limit=limit):
            out.append(
                {
                    "kind": "building",
                    "id": b["id"],
                    "code": b["grid_code"],
                    "name": b["name"],
                    "address": b["address"],
                    "lon": b["lon"],
                    "lat": b["lat"],
                    "bbox": list(b["bbox"]) if b["bbox"] else None,
                    "exact": text in (b["name"], b["address"]),
                }
            )
        if reads_records(scope.role):
            households = store.geocode_households(c, text, grams, scope=scope, limit=limit)
            for h in households:
                out.append(
                    {
                        "kind": "household",
                        "id": h["id"],
                        "code": h["grid_code"],
                        "name": h["ref"],
                        "address": h["address"],
                        "lon": h["lon"],
                        "lat": h["lat"],
                        "bbox": None,
                        "exact": h["address"] == text,
                    }
                )
            audit.record_read(
                c,
                scope,
                "household",
                [h["id"] for h in households],
                list(HOUSEHOLD_FIELDS),
                {"via": "geocode"},
            )
    try:
        units = search_units(engine, text, min(int(limit), 20))
    except InvalidInput:
        units = []
    for u in units:
        bbox = u.get("bbox")
        out.append(
            {
                "kind": "unit",
                "id": None,
                "code": u["code"],
                "name": u["name"],
                "address": " · ".join(u.get("parent_names") or []) or None,
                "lon": (bbox[0] + bbox[2]) / 2 if bbox else None,
                "lat": (bbox[1] + bbox[3]) / 2 if bbox else None,
                "bbox": list(bbox) if bbox else None,
                "exact": u["name"] == text or u["code"] == text,
                "level": u["level"],
            }
        )
    rank = {"building": 0, "household": 1, "unit": 2}
    out.sort(key=lambda m: (not m["exact"], rank[m["kind"]]))
    return out[: int(limit)]


def export_people_csv(
    bind: Bind,
    *,
    scope: Scope,
    reason: str,
    unit: str | None = None,
    settings: Settings | None = None,
) -> str:
    """The people inside the caller's scope (and ``unit``) as CSV (:data:`EXPORT_COLUMNS`,
    UTF-8 with a BOM for spreadsheets), ID numbers and phones decrypted: community/street/
    district admins and admin only, with a ``reason``; one audit row lists every id.
    At most :data:`MAX_EXPORT_ROWS` rows (InvalidInput beyond: narrow by ``unit``)."""
    require_records(scope)
    if scope.role not in EXPORT_ROLES:
        raise Forbidden(
            f"role {scope.role!r} may not export personal data (community/street/district "
            "admins and admin, with a reason)"
        )
    why = check_reason(reason, required=True)
    s = settings or get_settings()
    unit_column, unit_code = _unit(unit)
    v = vault(s)
    with transaction(bind) as c:
        rows = store.export_people(
            c,
            scope=scope,
            unit_column=unit_column,
            unit_code=unit_code,
            limit=MAX_EXPORT_ROWS + 1,
        )
        if len(rows) > MAX_EXPORT_ROWS:
            raise InvalidInput(
                "unit", unit, f"a unit with at most {MAX_EXPORT_ROWS:,} people to export"
            )
        buf = io.StringIO()
        buf.write("\ufeff")
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(EXPORT_COLUMNS)
        for r in rows:
            d = dict(r)
            d["id_number"] = v.open(bytes(r["id_enc"])) if r.get("id_enc") else None
            d["phone"] = v.open(bytes(r["phone_enc"])) if r.get("phone_enc") else None
            w.writerow(["" if d.get(col) is None else d.get(col) for col in EXPORT_COLUMNS])
        audit.record(
            c,
            actor=scope,
            action="person.export",
            resource="person",
            ids=[r["id"] for r in rows],
            fields=list(PERSON_RECORD_FIELDS),
            detail={"reason": why, "unit": unit_code, "rows": len(rows)},
        )
    return buf.getvalue()
