"""The SQL of the registry's reads (issue 15): search, records, care lists, aggregates and
the map's address search. Rows in, rows out; the decisions (who sees what, masks, the
audit trail) are in :mod:`geogrid.services.registry`.

Every reader of people or households takes a REQUIRED ``scope`` and applies
:func:`geogrid.store.scope.scope_condition` with ``personal=True`` (an anonymous scope
reads nothing). Buildings are the one exception, for the map's address search only
(:func:`geocode_buildings`): a building's name, address and position are on its door,
not personal (see :mod:`geogrid.core.registry_access`).

Partial search uses the gram arrays REG-A writes (``name_grams``, ``addr_grams``: every
character and adjacent pair, GIN-indexed): ``grams @> :grams`` finds the candidates through
the index and ``LIKE '%q%'`` (wildcards escaped) confirms them. Exact ID and phone search
compares the keyed blind index (``id_blind``, ``phone_blind``), never a clear value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import Connection, text

from geogrid.core.hierarchy import CODE_LENGTH, LEVEL_COLUMN, check_level, level_of_code
from geogrid.core.scope import Scope
from geogrid.store.scope import scope_condition

__all__ = [
    "PERSON_COLUMNS",
    "like_pattern",
    "search_people",
    "person_row",
    "care_groups",
    "household_row",
    "household_members",
    "building_row",
    "building_households",
    "org_rows",
    "care_rows",
    "aggregate_rows",
    "geocode_buildings",
    "geocode_households",
    "export_people",
    "service_entry_exists",
]

#: the columns of a person row (the encrypted values only in :func:`person_row`)
PERSON_COLUMNS: Final[tuple[str, ...]] = (
    "id",
    "household_id",
    "building_id",
    "name",
    "sex",
    "birth_date",
    "id_mask",
    "phone_mask",
    "relation",
    "residence",
    "address",
    "grid_code",
    "community_code",
    "street_code",
    "district_code",
    "lon",
    "lat",
)

_PERSON_SELECT = (
    "p.id, p.household_id, p.building_id, p.name, p.sex, p.birth_date, p.id_mask, "
    "p.phone_mask, p.relation, p.residence, "
    "COALESCE(p.address, h.address, b.address) AS address, "
    "p.grid_code, p.community_code, p.street_code, p.district_code, "
    "ST_X(COALESCE(p.geom, b.geom)) AS lon, ST_Y(COALESCE(p.geom, b.geom)) AS lat"
)
_PERSON_FROM = (
    "reg_person p LEFT JOIN reg_household h ON h.id = p.household_id "
    "LEFT JOIN reg_building b ON b.id = p.building_id"
)


def like_pattern(q: str) -> str:
    """``%q%`` with LIKE's wildcards and escape character in ``q`` escaped.

    >>> print(like_pattern("50%_off"))
    %50\\%\\_off%
    """
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _rows(conn: Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def search_people(
    conn: Connection,
    *,
    scope: Scope,
    name: str | None = None,
    name_grams: Sequence[str] | None = None,
    id_blind: bytes | None = None,
    phone_blind: bytes | None = None,
    address: str | None = None,
    address_grams: Sequence[str] | None = None,
    unit_column: str | None = None,
    unit_code: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """People inside ``scope`` matching every criterion given, with their care groups
    (``care_groups``); ``limit`` rows from ``offset``. ``name``/``address`` are partial
    (with their query grams), ``id_blind`` and ``phone_blind`` exact. ``address`` matches
    the address of the person's household or building (or the building's name), the
    household or building inside ``scope`` too.

    Order: by id; with ``address``, by household (its id; people without one last), then
    id — the order in which a page of a common address is found without reading every
    match (see :func:`_address_hits`)."""
    cond, params = scope_condition(scope, "p", personal=True)
    where = [cond]
    if name is not None:
        where.append("p.name_grams @> CAST(:ng AS text[]) AND p.name LIKE :npat")
        params.update(ng=list(name_grams or []), npat=like_pattern(name))
    if id_blind is not None:
        where.append("p.id_blind = :idb")
        params["idb"] = id_blind
    if phone_blind is not None:
        where.append("p.phone_blind = :phb")
        params["phb"] = phone_blind
    if unit_column is not None:
        if unit_column not in LEVEL_COLUMN.values():
            raise ValueError(f"not a unit column: {unit_column!r}")
        where.append(f"p.{unit_column} = :unit")
        params["unit"] = unit_code
    params.update(lim=int(limit), off=int(offset))
    if address is not None:
        params.update(ag=list(address_grams or []), apat=like_pattern(address))
        params["k"] = int(limit) + int(offset)
        hit = _address_hits(
            scope,
            where,
            exact=id_blind is not None or phone_blind is not None,
            narrowed=name is not None or unit_column is not None,
        )
        order = "k.household_id NULLS LAST, k.id"
    else:
        # The matching ids first (a MATERIALIZED CTE without ORDER BY/LIMIT: the planner
        # scans the scoped GIN index instead of walking the primary key until a page of
        # rare matches is found, seconds at millions of rows)
        hit = (
            "hit AS MATERIALIZED (SELECT NULL::bigint AS household_id, p.id "
            f"FROM reg_person p WHERE {' AND '.join(where)})"
        )
        order = "k.id"
    # then one page of them is joined to households and buildings, with each person's
    # care groups (``care_groups``: codes; the caller needs no second query). One
    # statement: on a busy machine every round trip costs a wake-up of both processes.
    sql = (
        f"WITH {hit} "
        f"SELECT {_PERSON_SELECT}, ARRAY(SELECT c.group_code FROM reg_care c "
        "WHERE c.person_id = p.id ORDER BY c.group_code) AS care_groups "
        f"FROM {_PERSON_FROM} "
        "JOIN (SELECT household_id, id FROM hit k "
        f"ORDER BY {order} LIMIT :lim OFFSET :off) k ON k.id = p.id "
        f"ORDER BY {order}"
    )
    return _rows(conn, sql, params)


def _address_hits(scope: Scope, where: list[str], *, exact: bool, narrowed: bool) -> str:
    """The CTEs ending in ``hit (household_id, id)`` of an address search: at least the
    first ``:k`` (limit + offset) people in (household, id) order of the people inside
    the scope (``where``, on alias ``p``) whose household's address or building's address
    or name contains ``:apat`` (``:ag`` its grams), household and building inside the
    scope too.

    ``exact`` (an ID number or phone given: a person or two): those people, filtered by
    the address. ``narrowed`` (a name or a unit too): every person of the matching
    households and buildings (found first, one scoped GIN scan each) checked against the
    other criteria, which most of them fail. Otherwise (the address alone) the matching
    households and buildings are found first (a common text — a room number, a
    community's name — matches thousands of households of a street) and:

    * households: in id order, each one's people fetched until ``:k`` of them are inside
      the scope — a page reads about 20 households, not the ≈ 9,000 people of 2,600
      matching households a person-id order needed (all of them read and sorted);
    * buildings: their people's (household, id) from the index-only ``reg_person_building``
      (``INCLUDE (household_id, id)``: one descent per building, no heap), sorted, the
      scope and the other criteria checked on the first ones only.

    The union's first ``:k`` are the first ``:k`` of all (each branch gives its own)."""
    pcond = " AND ".join(where)
    hcond, _ = scope_condition(scope, "h2", personal=True)
    bcond, _ = scope_condition(scope, "b2", personal=True)
    h_match = f"h2.addr_grams @> CAST(:ag AS text[]) AND h2.address LIKE :apat AND {hcond}"
    b_match = (
        "b2.addr_grams @> CAST(:ag AS text[]) AND "
        f"(b2.address LIKE :apat OR b2.name LIKE :apat) AND {bcond}"
    )
    if exact:
        return (
            "hit AS MATERIALIZED (SELECT p.household_id, p.id FROM reg_person p "
            f"WHERE {pcond} AND (EXISTS (SELECT 1 FROM reg_household h2 "
            f"WHERE h2.id = p.household_id AND {h_match}) OR EXISTS (SELECT 1 "
            f"FROM reg_building b2 WHERE b2.id = p.building_id AND {b_match})))"
        )
    if narrowed:
        # = ANY(ARRAY(subquery)): the matching households and buildings first (init
        # plans), their people through the household/building indexes; OFFSET 0 keeps
        # the people's other conditions out of that scan (they filter the candidates
        # instead of ANDing a bitmap of the whole scope)
        return (
            "hit AS MATERIALIZED (SELECT p.household_id, p.id FROM (SELECT * FROM reg_person p "
            "WHERE p.household_id = ANY(ARRAY(SELECT h2.id FROM reg_household h2 "
            f"WHERE {h_match})) OR p.building_id = ANY(ARRAY(SELECT b2.id FROM reg_building "
            f"b2 WHERE {b_match})) OFFSET 0) p WHERE {pcond})"
        )
    return (
        f"hh AS MATERIALIZED (SELECT h2.id FROM reg_household h2 WHERE {h_match}), "
        f"bb AS MATERIALIZED (SELECT b2.id FROM reg_building b2 WHERE {b_match}), "
        "by_h AS (SELECT x.id AS household_id, q.id FROM "
        "(SELECT id FROM hh ORDER BY id) x CROSS JOIN LATERAL "
        "(SELECT p.id FROM reg_person p "
        f"WHERE p.household_id = x.id AND {pcond} ORDER BY p.id) q LIMIT :k), "
        # OFFSET 0: the check stays above the sort (on the first rows only)
        "by_b AS (SELECT s.household_id, s.id FROM (SELECT p.household_id, p.id "
        "FROM reg_person p WHERE p.building_id = ANY(ARRAY(SELECT id FROM bb)) "
        "ORDER BY p.household_id NULLS LAST, p.id OFFSET 0) s "
        f"WHERE (SELECT {pcond} FROM reg_person p WHERE p.id = s.id) LIMIT :k), "
        "hit AS (SELECT household_id, id FROM by_h UNION SELECT household_id, id FROM by_b)"
    )


def person_row(conn: Connection, person_id: int, *, scope: Scope) -> dict[str, Any] | None:
    """One person inside ``scope`` with the encrypted ``id_enc`` and ``phone_enc`` (None
    when there is none, or it is outside the scope)."""
    cond, params = scope_condition(scope, "p", personal=True)
    params["pid"] = int(person_id)
    rows = _rows(
        conn,
        f"SELECT {_PERSON_SELECT}, p.id_enc, p.phone_enc FROM {_PERSON_FROM} "
        f"WHERE p.id = :pid AND {cond}",
        params,
    )
    return rows[0] if rows else None


def care_groups(
    conn: Connection, person_ids: Sequence[int], *, scope: Scope
) -> dict[int, list[dict[str, Any]]]:
    """The care groups of people inside ``scope``: person id → [{group, visit_every_days,
    since, note}] (by group)."""
    if not person_ids:
        return {}
    cond, params = scope_condition(scope, "p", personal=True)
    params["ids"] = [int(i) for i in person_ids]
    out: dict[int, list[dict[str, Any]]] = {}
    for r in conn.execute(
        text(
            "SELECT c.person_id, c.group_code AS group, c.visit_every_days, c.since, c.note "
            "FROM reg_care c JOIN reg_person p ON p.id = c.person_id "
            f"WHERE c.person_id = ANY(CAST(:ids AS bigint[])) AND {cond} "
            "ORDER BY c.person_id, c.group_code"
        ),
        params,
    ).mappings():
        d = dict(r)
        out.setdefault(int(d.pop("person_id")), []).append(d)
    return out


_HOUSEHOLD_SELECT = (
    "h.id, h.ref, h.building_id, h.dwelling_id, d.room, h.address, "
    "h.grid_code, h.community_code, h.street_code, h.district_code, "
    "ST_X(b.geom) AS lon, ST_Y(b.geom) AS lat"
)
_HOUSEHOLD_FROM = (
    "reg_household h LEFT JOIN reg_building b ON b.id = h.building_id "
    "LEFT JOIN reg_dwelling d ON d.id = h.dwelling_id"
)


def household_row(conn: Connection, household_id: int, *, scope: Scope) -> dict[str, Any] | None:
    """One household inside ``scope`` (None when none or outside)."""
    cond, params = scope_condition(scope, "h", personal=True)
    params["hid"] = int(household_id)
    rows = _rows(
        conn,
        f"SELECT {_HOUSEHOLD_SELECT} FROM {_HOUSEHOLD_FROM} WHERE h.id = :hid AND {cond}",
        params,
    )
    return rows[0] if rows else None


def household_members(conn: Connection, household_id: int, *, scope: Scope) -> list[dict[str, Any]]:
    """The people of a household inside ``scope``, by id."""
    cond, params = scope_condition(scope, "p", personal=True)
    params["hid"] = int(household_id)
    return _rows(
        conn,
        f"SELECT {_PERSON_SELECT} FROM {_PERSON_FROM} WHERE p.household_id = :hid AND {cond} "
        "ORDER BY p.id",
        params,
    )


_BUILDING_SELECT = (
    "b.id, b.ref, b.name, b.address, b.floors, b.use, "
    "b.grid_code, b.community_code, b.street_code, b.district_code, "
    "ST_X(b.geom) AS lon, ST_Y(b.geom) AS lat"
)


def building_row(conn: Connection, building_id: int, *, scope: Scope) -> dict[str, Any] | None:
    """One building inside ``scope`` with its counts of households and people (None when
    none or outside)."""
    cond, params = scope_condition(scope, "b", personal=True)
    params["bid"] = int(building_id)
    rows = _rows(
        conn,
        f"SELECT {_BUILDING_SELECT}, "
        "(SELECT count(*) FROM reg_household h WHERE h.building_id = b.id) AS households, "
        "(SELECT count(*) FROM reg_person p WHERE p.building_id = b.id) AS people, "
        "(SELECT count(*) FROM reg_org o WHERE o.building_id = b.id) AS orgs "
        f"FROM reg_building b WHERE b.id = :bid AND {cond}",
        params,
    )
    return rows[0] if rows else None


def building_households(
    conn: Connection, building_id: int, *, scope: Scope, limit: int = 500
) -> list[dict[str, Any]]:
    """The households of a building inside ``scope`` with their member counts, by id."""
    cond, params = scope_condition(scope, "h", personal=True)
    params.update(bid=int(building_id), lim=int(limit))
    return _rows(
        conn,
        f"SELECT {_HOUSEHOLD_SELECT}, "
        "(SELECT count(*) FROM reg_person p WHERE p.household_id = h.id) AS members "
        f"FROM {_HOUSEHOLD_FROM} WHERE h.building_id = :bid AND {cond} ORDER BY h.id LIMIT :lim",
        params,
    )


def org_rows(
    conn: Connection,
    *,
    scope: Scope,
    name: str | None = None,
    name_grams: Sequence[str] | None = None,
    uscc: str | None = None,
    kind: str | None = None,
    unit_column: str | None = None,
    unit_code: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Organisations inside ``scope`` matching every criterion (``name`` partial, in the
    name or the address; ``uscc`` exact), by id."""
    cond, params = scope_condition(scope, "o", personal=True)
    where = [cond]
    if name is not None:
        where.append(
            "o.addr_grams @> CAST(:ng AS text[]) AND (o.name LIKE :npat OR o.address LIKE :npat)"
        )
        params.update(ng=list(name_grams or []), npat=like_pattern(name))
    if uscc is not None:
        where.append("o.uscc = :uscc")
        params["uscc"] = uscc
    if kind is not None:
        where.append("o.kind = :kind")
        params["kind"] = kind
    if unit_column is not None:
        if unit_column not in LEVEL_COLUMN.values():
            raise ValueError(f"not a unit column: {unit_column!r}")
        where.append(f"o.{unit_column} = :unit")
        params["unit"] = unit_code
    params.update(lim=int(limit), off=int(offset))
    return _rows(
        conn,
        "SELECT o.id, o.uscc, o.name, o.kind, o.address, o.building_id, "
        "o.grid_code, o.community_code, o.street_code, o.district_code, "
        "ST_X(COALESCE(o.geom, b.geom)) AS lon, ST_Y(COALESCE(o.geom, b.geom)) AS lat "
        "FROM reg_org o LEFT JOIN reg_building b ON b.id = o.building_id "
        f"WHERE {' AND '.join(where)} ORDER BY o.id LIMIT :lim OFFSET :off",
        params,
    )


def service_entry_exists(conn: Connection) -> bool:
    """Is TERM-B's ``service_entry`` table (migration 0011) there?"""
    return bool(conn.execute(text("SELECT to_regclass('service_entry') IS NOT NULL")).scalar())


def care_rows(
    conn: Connection, grid_codes: Sequence[str], *, scope: Scope, with_visits: bool = True
) -> list[dict[str, Any]]:
    """People in care groups in ``grid_codes`` inside ``scope``, by grid and id, with their
    groups (``groups``: codes), the strictest ``visit_every_days``, the earliest ``since``
    and ``last_visit``: the latest ``day`` of a service entry naming the person
    (``person_ids``) or their household (``household_id``); None without one (or without
    the ``service_entry`` table when ``with_visits`` is False)."""
    cond, params = scope_condition(scope, "p", personal=True)
    params["grids"] = [str(g) for g in grid_codes]
    visit = (
        "GREATEST("
        "(SELECT max(e.day) FROM service_entry e "
        "WHERE e.person_ids @> ARRAY[cp.id]::bigint[]), "
        "(SELECT max(e.day) FROM service_entry e "
        "WHERE cp.household_id IS NOT NULL AND e.household_id = cp.household_id))"
        if with_visits
        else "CAST(NULL AS date)"
    )
    return _rows(
        conn,
        f"WITH cp AS (SELECT {_PERSON_SELECT} FROM {_PERSON_FROM} "
        f"WHERE p.grid_code = ANY(CAST(:grids AS text[])) AND {cond} "
        "AND EXISTS (SELECT 1 FROM reg_care c WHERE c.person_id = p.id)) "
        "SELECT cp.*, c.groups, c.visit_every_days, c.since, "
        f"{visit} AS last_visit "
        "FROM cp CROSS JOIN LATERAL (SELECT array_agg(c.group_code ORDER BY c.group_code) "
        "AS groups, min(c.visit_every_days) AS visit_every_days, min(c.since) AS since "
        "FROM reg_care c WHERE c.person_id = cp.id) c "
        "ORDER BY cp.grid_code, cp.id",
        params,
    )


def aggregate_rows(
    conn: Connection, level: str, *, scope: Scope, unit_code: str | None = None
) -> list[dict[str, Any]]:
    """Counts per unit of ``level`` (inside ``unit_code`` when given): ``population``,
    ``households`` and ``floating`` from the published version's units — the registry's
    counts, refreshed by every import and publish (``unit.attrs.counts_source =
    'registry'``; units without registry records count 0) — and ``care`` (people in any
    care group) and ``care_groups`` (group code → people) from the care rows of the people
    inside ``scope``, by code. The caller keeps only the units inside the scope."""
    col = LEVEL_COLUMN[check_level(level)]
    ccond, params = scope_condition(scope, "p", personal=True)
    params["n"] = CODE_LENGTH[level]
    uw = ["u.version_id = (SELECT id FROM boundary_version WHERE status = 'published')"]
    pw = [ccond, f"p.{col} IS NOT NULL"]
    if unit_code is not None:
        ucol = LEVEL_COLUMN[_level_of(unit_code)]
        uw.append("left(u.code, length(:unit)) = :unit")
        pw.append(f"p.{ucol} = :unit")
        params["unit"] = unit_code
    units = _rows(
        conn,
        "SELECT u.code, "
        "CASE WHEN u.attrs->>'counts_source' = 'registry' THEN u.population ELSE 0 END "
        "AS population, "
        "CASE WHEN u.attrs->>'counts_source' = 'registry' THEN u.households ELSE 0 END "
        "AS households, "
        "CASE WHEN u.attrs->>'counts_source' = 'registry' "
        "THEN COALESCE((u.attrs->>'floating')::bigint, 0) ELSE 0 END AS floating "
        f"FROM unit u WHERE length(u.code) = :n AND {' AND '.join(uw)} ORDER BY u.code",
        params,
    )
    care: dict[str, dict[str, Any]] = {}
    for r in conn.execute(
        text(
            f"SELECT p.{col} AS code, c.group_code, count(DISTINCT p.id) AS n "
            "FROM reg_care c JOIN reg_person p ON p.id = c.person_id "
            f"WHERE {' AND '.join(pw)} GROUP BY GROUPING SETS ((1, 2), (1))"
        ),
        params,
    ).mappings():
        d = care.setdefault(str(r["code"]), {"care": 0, "care_groups": {}})
        if r["group_code"] is None:
            d["care"] = int(r["n"])
        else:
            d["care_groups"][str(r["group_code"])] = int(r["n"])
    out = []
    for u in units:
        c = care.get(str(u["code"]), {"care": 0, "care_groups": {}})
        out.append({**u, "care": c["care"], "care_groups": c["care_groups"]})
    return out


def _level_of(code: str) -> str:
    return level_of_code(code, "unit")


def geocode_buildings(
    conn: Connection, q: str, grams: Sequence[str], *, limit: int = 10
) -> list[dict[str, Any]]:
    """Buildings whose name or address contains ``q``: the name first when it matches
    exactly, then shorter names and addresses. Public data (no scope: see the module
    notes); no household or person is read."""
    return _rows(
        conn,
        "SELECT b.id, b.ref, b.name, b.address, b.grid_code, "
        "ST_X(b.geom) AS lon, ST_Y(b.geom) AS lat, "
        "CASE WHEN b.footprint IS NULL THEN NULL ELSE ARRAY[ST_XMin(b.footprint), "
        "ST_YMin(b.footprint), ST_XMax(b.footprint), ST_YMax(b.footprint)] END AS bbox "
        "FROM reg_building b WHERE b.addr_grams @> CAST(:g AS text[]) "
        "AND (b.name LIKE :pat OR b.address LIKE :pat) "
        "ORDER BY (b.name = :q) DESC, (b.address = :q) DESC, "
        "length(COALESCE(b.name, '') || COALESCE(b.address, '')), b.id LIMIT :lim",
        {"g": list(grams), "pat": like_pattern(q), "q": q, "lim": int(limit)},
    )


def geocode_households(
    conn: Connection, q: str, grams: Sequence[str], *, scope: Scope, limit: int = 10
) -> list[dict[str, Any]]:
    """Households inside ``scope`` whose address contains ``q``, with their building's
    position (personal: scoped)."""
    cond, params = scope_condition(scope, "h", personal=True)
    params.update(g=list(grams), pat=like_pattern(q), q=q, lim=int(limit))
    return _rows(
        conn,
        "SELECT h.id, h.ref, h.address, h.building_id, h.grid_code, h.community_code, "
        "h.street_code, h.district_code, ST_X(b.geom) AS lon, ST_Y(b.geom) AS lat "
        "FROM reg_household h JOIN reg_building b ON b.id = h.building_id "
        f"WHERE h.addr_grams @> CAST(:g AS text[]) AND h.address LIKE :pat AND {cond} "
        "ORDER BY (h.address = :q) DESC, length(h.address), h.id LIMIT :lim",
        params,
    )


def export_people(
    conn: Connection,
    *,
    scope: Scope,
    unit_column: str | None = None,
    unit_code: str | None = None,
    limit: int,
) -> list[dict[str, Any]]:
    """People inside ``scope`` (and the unit) with their encrypted ID and phone, by id,
    at most ``limit``."""
    cond, params = scope_condition(scope, "p", personal=True)
    where = [cond]
    if unit_column is not None:
        if unit_column not in LEVEL_COLUMN.values():
            raise ValueError(f"not a unit column: {unit_column!r}")
        where.append(f"p.{unit_column} = :unit")
        params["unit"] = unit_code
    params["lim"] = int(limit)
    return _rows(
        conn,
        f"SELECT {_PERSON_SELECT}, h.ref AS household_ref, p.id_enc, p.phone_enc "
        f"FROM {_PERSON_FROM} WHERE {' AND '.join(where)} ORDER BY p.id LIMIT :lim",
        params,
    )
