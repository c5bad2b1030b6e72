"""The registry's tables (revision 0009) and its write side: bulk load through binary
``COPY`` into a staging table and an idempotent upsert on each natural key, attribution
to grids, re-attribution after a publish, and per-unit counts.

Natural keys: a person's ``id_blind`` (HMAC of the ID number), a household's or a
building's ``ref``, an organisation's ``uscc``. An upsert changes a stored row only when a
value differs (a re-import of the same file changes nothing: ``updated`` stays 0); an ID
number is never re-encrypted for an unchanged person, a phone only when its blind index
changes.

Staging: :func:`copy_stage` creates ``TEMP … ON COMMIT DROP`` tables from an Arrow table
(column types from the Arrow types) and fills them with pgpq's binary ``COPY`` encoder, so
no value is ever formatted as text by Python. Everything runs inside the caller's
transaction (all or nothing).
"""

from __future__ import annotations

import mmap
from collections.abc import Iterable, Sequence
from typing import Any, Final

import pandas as pd
import pyarrow as pa
from geoalchemy2 import Geometry
from pgpq import ArrowToPostgresBinaryEncoder
from sqlalchemy import (
    CHAR,
    BigInteger,
    Column,
    Connection,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from geogrid.core.hierarchy import ATTRIBUTION_COLUMNS, CODE_LENGTH
from geogrid.core.scope import Scope
from geogrid.store.scope import scope_condition
from geogrid.store.tables import metadata

__all__ = [
    "reg_building",
    "reg_dwelling",
    "reg_household",
    "reg_person",
    "reg_org",
    "reg_care",
    "REGISTRY_TABLES",
    "copy_stage",
    "stage_rows",
    "stage_conflicts",
    "delete_stage_rows",
    "upsert_buildings",
    "upsert_households",
    "upsert_people",
    "upsert_orgs",
    "upsert_care",
    "known_refs",
    "known_blinds",
    "reattribute",
    "unit_counts",
    "update_unit_counts",
    "registry_counts",
    "analyze_registry",
    "drop_secondary_indexes",
    "create_secondary_indexes",
    "create_unique_blind_index",
    "SECONDARY_INDEXES",
    "drop_constraints",
    "add_constraints",
    "truncate_registry",
    "export_rows",
    "copy_into",
    "is_empty",
    "reset_identities",
]


#: a search gram: compared for equality only, byte for byte (migration 0020)
_GRAM = Text(collation="C")


def _units() -> list[Column[Any]]:
    return [Column(c, Text) for c in ATTRIBUTION_COLUMNS] + [Column("version_id", Integer)]


reg_building = Table(
    "reg_building",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("ref", Text, nullable=False, unique=True),
    Column("name", Text),
    Column("address", Text),
    Column("floors", Integer),
    Column("use", Text),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
    Column("footprint", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False)),
    *_units(),
    Column("addr_grams", ARRAY(_GRAM), nullable=False, server_default=text("'{}'")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
reg_dwelling = Table(
    "reg_dwelling",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column(
        "building_id", BigInteger, ForeignKey("reg_building.id", ondelete="CASCADE"), nullable=False
    ),
    Column("room", Text, nullable=False),
    UniqueConstraint("building_id", "room", name="reg_dwelling_room"),
)
reg_household = Table(
    "reg_household",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("ref", Text, nullable=False, unique=True),
    Column("building_id", BigInteger),
    Column("dwelling_id", BigInteger),
    Column("address", Text),
    *_units(),
    Column("addr_grams", ARRAY(_GRAM), nullable=False, server_default=text("'{}'")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
reg_person = Table(
    "reg_person",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("household_id", BigInteger),
    Column("building_id", BigInteger),
    Column("name", Text, nullable=False),
    Column("sex", CHAR(1)),
    Column("birth_date", Date),
    Column("id_enc", LargeBinary, nullable=False),
    Column("id_blind", LargeBinary, nullable=False, unique=True),
    Column("id_mask", Text, nullable=False),
    Column("phone_enc", LargeBinary),
    Column("phone_blind", LargeBinary),
    Column("phone_mask", Text),
    Column("relation", Text),
    Column("residence", Text, nullable=False, server_default="registered"),
    Column("address", Text),
    *_units(),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
    Column("name_grams", ARRAY(_GRAM), nullable=False, server_default=text("'{}'")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
reg_org = Table(
    "reg_org",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("uscc", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("kind", Text),
    Column("address", Text),
    Column("building_id", BigInteger),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
    *_units(),
    Column("addr_grams", ARRAY(_GRAM), nullable=False, server_default=text("'{}'")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
reg_care = Table(
    "reg_care",
    metadata,
    Column(
        "person_id", BigInteger, ForeignKey("reg_person.id", ondelete="CASCADE"), nullable=False
    ),
    Column("group_code", Text, nullable=False),
    Column("visit_every_days", Integer, nullable=False),
    Column("since", Date),
    Column("note", Text),
    PrimaryKeyConstraint("person_id", "group_code"),
)

REGISTRY_TABLES: Final[tuple[str, ...]] = (
    "reg_care",
    "reg_person",
    "reg_household",
    "reg_dwelling",
    "reg_org",
    "reg_building",
)

#: the secondary indexes (as in migrations 0009 and 0017): the bulk loader of an empty
#: registry drops them and builds them once after the COPY. ``*_search``: one GIN index
#: per table over the four unit codes (``btree_gin``) and the search grams, so a scoped
#: partial search is one index scan (see migration 0017); ``reg_person_building`` covers
#: ``(household_id, id)`` for the address search (migration 0019)
_SEARCH_COLUMNS: Final[str] = ", ".join(ATTRIBUTION_COLUMNS)
SECONDARY_INDEXES: Final[list[tuple[str, str, str]]] = [
    ("reg_building_geom", "reg_building", "USING gist (geom)"),
    ("reg_building_search", "reg_building", f"USING gin ({_SEARCH_COLUMNS}, addr_grams)"),
    ("reg_household_building", "reg_household", "(building_id)"),
    ("reg_household_search", "reg_household", f"USING gin ({_SEARCH_COLUMNS}, addr_grams)"),
    ("reg_person_phone_blind", "reg_person", "(phone_blind)"),
    ("reg_person_household", "reg_person", "(household_id)"),
    ("reg_person_building", "reg_person", "(building_id) INCLUDE (household_id, id)"),
    ("reg_person_search", "reg_person", f"USING gin ({_SEARCH_COLUMNS}, name_grams)"),
    ("reg_org_geom", "reg_org", "USING gist (geom)"),
    ("reg_org_search", "reg_org", f"USING gin ({_SEARCH_COLUMNS}, addr_grams)"),
    ("reg_care_group", "reg_care", "(group_code)"),
]

_PG_TYPES: Final[dict[str, str]] = {
    "int64": "int8",
    "int32": "int4",
    "double": "float8",
    "string": "text",
    "large_string": "text",
    "binary": "bytea",
    "large_binary": "bytea",
    "date32[day]": "date",
    "bool": "bool",
    "list<item: string>": "text[]",
    "large_list<item: string>": "text[]",
}


def _raw(conn: Connection) -> Any:
    raw = conn.connection.driver_connection
    if raw is None:  # pragma: no cover - a pooled psycopg connection always has one
        raise RuntimeError("COPY needs a psycopg connection")
    return raw


def copy_stage(conn: Connection, name: str, table: pa.Table, *, create: bool = True) -> int:
    """Create (``create``) the temp staging table ``name`` from the Arrow table's schema and
    binary-COPY its rows into it (inside the caller's transaction); returns the row count.
    ``name`` and the column names are identifiers of this module's callers, never input."""
    if create:
        cols = ", ".join(f'"{f.name}" {_PG_TYPES[str(f.type)]}' for f in table.schema)
        conn.exec_driver_sql(f"CREATE TEMP TABLE {name} ({cols}) ON COMMIT DROP")
    if not table.num_rows:
        return 0
    encoder = ArrowToPostgresBinaryEncoder(table.schema)
    names = ", ".join(f'"{f.name}"' for f in table.schema)
    with _raw(conn).cursor() as cur:
        with cur.copy(f"COPY {name} ({names}) FROM STDIN WITH (FORMAT BINARY)") as cp:
            cp.write(encoder.write_header())
            for batch in table.to_batches(max_chunksize=100_000):
                cp.write(encoder.write_batch(batch))
            cp.write(encoder.finish())
    return int(table.num_rows)


def stage_rows(conn: Connection, stage: str) -> int:
    """Rows in a staging table."""
    return int(conn.exec_driver_sql(f"SELECT count(*) FROM {stage}").scalar_one())


def delete_stage_rows(conn: Connection, stage: str, rows: Sequence[int]) -> None:
    """Drop the given file rows from a staging table (the rejected ones)."""
    if rows:
        conn.execute(
            text(f"DELETE FROM {stage} WHERE row = ANY(:rows)"), {"rows": [int(r) for r in rows]}
        )


def stage_conflicts(conn: Connection, stage: str, kind: str) -> pd.DataFrame:
    """Rows of a staging table that conflict with the stored registry: a person already
    registered in another household (people), a reference to a building that is neither
    stored nor in the file. Columns ``row``, ``field``, ``message`` (no personal value)."""
    parts: list[str] = []
    if kind == "people":
        parts.append(
            f"""SELECT s.row, 'id_number' AS field,
                   'duplicate person: already registered in household ' || h.ref AS message
            FROM {stage} s JOIN reg_person p ON p.id_blind = s.id_blind
            JOIN reg_household h ON h.id = p.household_id
            WHERE s.household_ref IS NOT NULL AND h.ref <> s.household_ref"""
        )
    if kind in ("people", "households", "orgs"):
        parts.append(
            f"""SELECT s.row, 'building_ref' AS field,
                   'unknown building ' || s.building_ref || ': import buildings first' AS message
            FROM {stage} s WHERE s.building_ref IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM reg_building b WHERE b.ref = s.building_ref)"""
        )
    if kind == "care":
        parts.append(
            f"""SELECT s.row, 'id_number' AS field,
                   'unknown person: import people first' AS message
            FROM {stage} s
            WHERE NOT EXISTS (SELECT 1 FROM reg_person p WHERE p.id_blind = s.id_blind)"""
        )
    if not parts:
        return pd.DataFrame(columns=["row", "field", "message"])
    rows = conn.exec_driver_sql(" UNION ALL ".join(parts) + " ORDER BY 1").all()
    return pd.DataFrame([tuple(r) for r in rows], columns=["row", "field", "message"])


def _counts(conn: Connection, sql: str, params: dict[str, Any] | None = None) -> dict[str, int]:
    row = conn.execute(
        text(
            f"WITH w AS ({sql} RETURNING (xmax = 0) AS inserted) "
            "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM w"
        ),
        params or {},
    ).one()
    return {"inserted": int(row[0]), "updated": int(row[1])}


_CODES = ", ".join(ATTRIBUTION_COLUMNS)


def _pick_codes(*sources: str) -> str:
    """The four codes from the first source alias whose grid code is set."""
    out = []
    for c in [*ATTRIBUTION_COLUMNS, "version_id"]:
        whens = " ".join(f"WHEN {a}.grid_code IS NOT NULL THEN {a}.{c}" for a in sources)
        out.append(f"CASE {whens} END")
    return ", ".join(out)


def _changed(table_alias: str, cols: Sequence[str]) -> str:
    a = ", ".join(f"{table_alias}.{c}" for c in cols)
    b = ", ".join(f"EXCLUDED.{c}" for c in cols)
    return f"({a}) IS DISTINCT FROM ({b})"


def _update_set(cols: Sequence[str]) -> str:
    return ", ".join(f"{c} = EXCLUDED.{c}" for c in cols) + ", updated_at = now()"


def upsert_buildings(conn: Connection, stage: str) -> dict[str, int]:
    """Buildings from a staging table (``ref, name, address, floors, use, lon, lat``, the
    four codes, ``version_id``, ``addr_grams``)."""
    cols = ["name", "address", "floors", "use", "geom", *ATTRIBUTION_COLUMNS, "version_id",
            "addr_grams"]  # fmt: skip
    sql = f"""INSERT INTO reg_building AS t (ref, {", ".join(cols)})
        SELECT s.ref, s.name, s.address, s.floors, s.use,
               ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326), {_CODES}, s.version_id,
               s.addr_grams
        FROM {stage} s
        ON CONFLICT (ref) DO UPDATE SET {_update_set(cols)}
        WHERE {_changed("t", cols)}"""
    return _counts(conn, sql)


def _dwellings(conn: Connection, stage: str) -> None:
    conn.exec_driver_sql(
        f"""INSERT INTO reg_dwelling (building_id, room)
        SELECT DISTINCT b.id, s.room FROM {stage} s JOIN reg_building b ON b.ref = s.building_ref
        WHERE s.room IS NOT NULL
        ON CONFLICT ON CONSTRAINT reg_dwelling_room DO NOTHING"""
    )


def upsert_households(conn: Connection, stage: str, *, only_new: bool = False) -> dict[str, int]:
    """Households from a staging table (``household_ref, address, building_ref, room``,
    own codes from a position or NULL, ``addr_grams``): attributed through their building
    when they have one, else through their own position. ``only_new``: insert the
    households not yet stored and leave the others (the households a people file implies).
    """
    _dwellings(conn, stage)
    cols = ["building_id", "dwelling_id", "address", *ATTRIBUTION_COLUMNS, "version_id",
            "addr_grams"]  # fmt: skip
    conflict = (
        "DO NOTHING"
        if only_new
        else f"DO UPDATE SET {_update_set(cols)} WHERE {_changed('t', cols)}"
    )
    sql = f"""INSERT INTO reg_household AS t (ref, {", ".join(cols)})
        SELECT DISTINCT ON (s.household_ref) s.household_ref, b.id, d.id, s.address,
               {_pick_codes("b", "s")}, s.addr_grams
        FROM {stage} s
        LEFT JOIN reg_building b ON b.ref = s.building_ref
        LEFT JOIN reg_dwelling d ON d.building_id = b.id AND d.room = s.room
        WHERE s.household_ref IS NOT NULL
        ORDER BY s.household_ref, s.row
        ON CONFLICT (ref) {conflict}"""
    return _counts(conn, sql)


def upsert_people(conn: Connection, stage: str) -> dict[str, int]:
    """People from a staging table (sealed and blinded values, masks, ``household_ref``,
    ``building_ref``, own codes from a position or NULL, ``name_grams``). A person is
    attributed through their own position, else their building, else their household's.
    """
    cols = ["household_id", "building_id", "name", "sex", "birth_date", "id_mask",
            "phone_blind", "phone_mask", "relation", "residence", "address",
            *ATTRIBUTION_COLUMNS, "version_id", "geom", "name_grams"]  # fmt: skip
    sets = (
        _update_set(cols)
        + ", phone_enc = CASE WHEN t.phone_blind IS DISTINCT FROM EXCLUDED.phone_blind "
        "THEN EXCLUDED.phone_enc ELSE t.phone_enc END"
    )
    sql = f"""INSERT INTO reg_person AS t (id_enc, id_blind, phone_enc, {", ".join(cols)})
        SELECT s.id_enc, s.id_blind, s.phone_enc, h.id, coalesce(b.id, h.building_id), s.name,
               s.sex, s.birth_date, s.id_mask, s.phone_blind, s.phone_mask, s.relation,
               s.residence, s.address, {_pick_codes("s", "b", "h")},
               CASE WHEN s.lon IS NOT NULL THEN ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326) END,
               s.name_grams
        FROM {stage} s
        LEFT JOIN reg_household h ON h.ref = s.household_ref
        LEFT JOIN reg_building b ON b.ref = s.building_ref
        ON CONFLICT (id_blind) DO UPDATE SET {sets}
        WHERE {_changed("t", cols)}"""
    return _counts(conn, sql)


def upsert_orgs(conn: Connection, stage: str) -> dict[str, int]:
    """Organisations from a staging table (``uscc, name, kind, address, building_ref,
    lon, lat``, own codes, ``addr_grams``)."""
    cols = ["name", "kind", "address", "building_id", "geom", *ATTRIBUTION_COLUMNS,
            "version_id", "addr_grams"]  # fmt: skip
    sql = f"""INSERT INTO reg_org AS t (uscc, {", ".join(cols)})
        SELECT s.uscc, s.name, s.kind, s.address, b.id,
               CASE WHEN s.lon IS NOT NULL THEN ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326)
                    ELSE b.geom END,
               {_pick_codes("s", "b")}, s.addr_grams
        FROM {stage} s LEFT JOIN reg_building b ON b.ref = s.building_ref
        ON CONFLICT (uscc) DO UPDATE SET {_update_set(cols)}
        WHERE {_changed("t", cols)}"""
    return _counts(conn, sql)


def upsert_care(conn: Connection, stage: str) -> dict[str, int]:
    """Care-group memberships from a staging table (``id_blind, group_code,
    visit_every_days, since, note``) of stored people."""
    cols = ["visit_every_days", "since", "note"]
    sql = f"""INSERT INTO reg_care AS t (person_id, group_code, {", ".join(cols)})
        SELECT DISTINCT ON (p.id, s.group_code) p.id, s.group_code, s.visit_every_days,
               s.since, s.note
        FROM {stage} s JOIN reg_person p ON p.id_blind = s.id_blind
        ORDER BY p.id, s.group_code, s.row
        ON CONFLICT (person_id, group_code) DO UPDATE SET
            {", ".join(f"{c} = EXCLUDED.{c}" for c in cols)}
        WHERE {_changed("t", cols)}"""
    return _counts(conn, sql)


def known_refs(conn: Connection, table: str, refs: Sequence[str]) -> set[str]:
    """Which of ``refs`` are stored in ``reg_building`` or ``reg_household``."""
    t = {"reg_building": reg_building, "reg_household": reg_household}[table]
    if not refs:
        return set()
    rows = conn.execute(t.select().with_only_columns(t.c.ref).where(t.c.ref.in_(list(refs))))
    return {r[0] for r in rows}


def known_blinds(conn: Connection, blinds: Sequence[bytes]) -> set[bytes]:
    """Which of the ID blind indexes are stored."""
    if not blinds:
        return set()
    rows = conn.execute(
        text("SELECT id_blind FROM reg_person WHERE id_blind = ANY(:b)"), {"b": list(blinds)}
    )
    return {bytes(r[0]) for r in rows}


def _level_codes(grid: str) -> str:
    """SET list of the four codes from a grid-code expression (codes are hierarchical)."""
    return ", ".join(
        f"{lv}_code = left({grid}, {CODE_LENGTH[lv]})" for lv in ("community", "street", "district")
    )


def reattribute(
    conn: Connection, version_id: int, grid_codes: Sequence[str] | None = None
) -> dict[str, int]:
    """Re-attribute registry records to the grids of ``version_id`` (inside the caller's
    transaction, e.g. a publish): buildings, people and organisations with their own point
    by ``ST_Intersects`` with the version's grids (only the grids in ``grid_codes`` when
    given: those a plan changed), then households, people and organisations of the
    buildings that moved. Returns the rows moved per table."""
    only = "" if grid_codes is None else "AND u.code = ANY(:codes)"
    params: dict[str, Any] = {"v": int(version_id)}
    if grid_codes is not None:
        params["codes"] = list(grid_codes)
    out: dict[str, int] = {}
    moved = (
        conn.execute(
            text(
                f"""UPDATE reg_building t SET grid_code = u.code, {_level_codes("u.code")},
                version_id = :v, updated_at = now()
            FROM unit u
            WHERE u.version_id = :v AND u.level = 'grid' {only}
              AND ST_Intersects(u.geom, t.geom) AND t.grid_code IS DISTINCT FROM u.code
            RETURNING t.id"""
            ),
            params,
        )
        .scalars()
        .all()
    )
    out["buildings"] = len(moved)
    for key, table in (("people", "reg_person"), ("orgs", "reg_org")):
        n = conn.execute(
            text(
                f"""UPDATE {table} t SET grid_code = u.code, {_level_codes("u.code")},
                    version_id = :v, updated_at = now()
                FROM unit u
                WHERE u.version_id = :v AND u.level = 'grid' {only}
                  AND t.geom IS NOT NULL
                  AND ST_Intersects(u.geom, t.geom) AND t.grid_code IS DISTINCT FROM u.code"""
            ),
            params,
        ).rowcount
        out[key] = int(n or 0)
    if moved:
        # households, and people without a point of their own, follow their building
        codes = ", ".join(f"{c} = b.{c}" for c in ATTRIBUTION_COLUMNS)
        for key, table, own in (
            ("households", "reg_household", ""),
            ("people", "reg_person", "AND t.geom IS NULL"),
        ):
            n = conn.execute(
                text(
                    f"""UPDATE {table} t SET {codes}, version_id = b.version_id,
                        updated_at = now()
                    FROM reg_building b
                    WHERE t.building_id = b.id AND b.id = ANY(:ids) {own}
                      AND t.grid_code IS DISTINCT FROM b.grid_code"""
                ),
                {"ids": list(moved)},
            ).rowcount
            out[key] = out.get(key, 0) + int(n or 0)
    return out


def unit_counts(conn: Connection) -> pd.DataFrame:
    """Per grid code of the registry: ``population`` (people), ``households`` and
    ``floating`` (people whose residence is ``floating``)."""
    rows = conn.exec_driver_sql(
        """WITH p AS (SELECT grid_code AS g, count(*) AS n,
                             count(*) FILTER (WHERE residence = 'floating') AS f
                      FROM reg_person WHERE grid_code IS NOT NULL GROUP BY 1),
                h AS (SELECT grid_code AS g, count(*) AS n FROM reg_household
                      WHERE grid_code IS NOT NULL GROUP BY 1)
        SELECT coalesce(p.g, h.g), coalesce(p.n, 0), coalesce(h.n, 0), coalesce(p.f, 0)
        FROM p FULL JOIN h ON h.g = p.g ORDER BY 1"""
    ).all()
    return pd.DataFrame(
        [tuple(r) for r in rows], columns=["grid_code", "population", "households", "floating"]
    )


def update_unit_counts(conn: Connection, version_id: int, *, complete: bool = False) -> int:
    """Set ``population``, ``households`` and ``attrs.floating`` (and
    ``attrs.counts_source = 'registry'``) of every unit of ``version_id`` that holds
    registry records, summed over its grids; with ``complete`` (the registry covers the
    whole city, e.g. after a bulk load) the other units get zeros. Returns the units
    updated."""
    lens = sorted(CODE_LENGTH.values())
    sql = f"""WITH p AS (SELECT grid_code AS g, count(*) AS n,
                             count(*) FILTER (WHERE residence = 'floating') AS f
                      FROM reg_person WHERE grid_code IS NOT NULL GROUP BY 1),
            h AS (SELECT grid_code AS g, count(*) AS n FROM reg_household
                  WHERE grid_code IS NOT NULL GROUP BY 1),
            c AS (SELECT coalesce(p.g, h.g) AS g, coalesce(p.n, 0) AS pop,
                         coalesce(h.n, 0) AS hh, coalesce(p.f, 0) AS fl
                  FROM p FULL JOIN h ON h.g = p.g),
            s AS (SELECT left(c.g, l) AS code, sum(pop) AS pop, sum(hh) AS hh, sum(fl) AS fl
                  FROM c CROSS JOIN unnest(ARRAY{lens}) AS l GROUP BY 1)
        UPDATE unit u SET population = s.pop, households = s.hh,
            attrs = u.attrs || jsonb_build_object('floating', s.fl, 'counts_source', 'registry')
        FROM s WHERE u.version_id = :v AND u.code = s.code"""
    n = int(conn.execute(text(sql), {"v": int(version_id)}).rowcount or 0)
    if complete:
        n += int(
            conn.execute(
                text(
                    """UPDATE unit u SET population = 0, households = 0,
                        attrs = u.attrs || '{"floating": 0, "counts_source": "registry"}'
                    WHERE u.version_id = :v
                      AND u.attrs->>'counts_source' IS DISTINCT FROM 'registry'"""
                ),
                {"v": int(version_id)},
            ).rowcount
            or 0
        )
    return n


def registry_counts(conn: Connection) -> dict[str, int]:
    """Rows per registry table."""
    out = {}
    for t in REGISTRY_TABLES:
        out[t] = int(conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one())
    return out


def analyze_registry(conn: Connection, tables: Sequence[str] | None = None) -> None:
    """ANALYZE the registry's tables (after a bulk load; only ``tables`` when given)."""
    for t in REGISTRY_TABLES:
        if tables is None or t in tables:
            conn.exec_driver_sql(f"ANALYZE {t}")


def drop_secondary_indexes(conn: Connection) -> None:
    """Drop the secondary indexes (bulk load of an empty registry; in its transaction),
    and the unique index of the people's blind index: random 32-byte keys inserted one by
    one cost the COPY more than building the index once (which still checks uniqueness
    before the transaction commits)."""
    for name, _, _ in SECONDARY_INDEXES:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
    conn.exec_driver_sql("DROP INDEX IF EXISTS reg_person_id_blind")


def create_unique_blind_index(conn: Connection) -> None:
    """The people's unique ID blind index (dropped by :func:`drop_secondary_indexes`): in
    the bulk load's transaction, since it refuses a duplicate person."""
    conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '1GB'")
    conn.exec_driver_sql("SET LOCAL max_parallel_maintenance_workers = 2")
    conn.exec_driver_sql(
        "CREATE UNIQUE INDEX IF NOT EXISTS reg_person_id_blind ON reg_person (id_blind)"
    )


def create_secondary_indexes(
    conn: Connection, names: Sequence[str] | None = None, *, parallel_workers: int = 2
) -> None:
    """(Re)create the secondary indexes dropped by :func:`drop_secondary_indexes` (only
    ``names`` when given; the unique blind index too when ``names`` is None). A btree build
    sorts with up to ``parallel_workers`` parallel workers (0: in this backend alone — what
    a caller building indexes on several connections at once wants on a small machine:
    each parallel sort costs more CPU in all than one sort)."""
    # sorts and GIN builds in memory (this transaction only): a GIN build that overflows
    # maintenance_work_mem writes and merges its runs again (the people's GIN holds
    # ≈ 43 M entries at 6.62 M records)
    conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '1GB'")
    conn.exec_driver_sql(f"SET LOCAL max_parallel_maintenance_workers = {int(parallel_workers)}")
    if names is None:
        create_unique_blind_index(conn)
    for name, table, definition in SECONDARY_INDEXES:
        if names is None or name in names:
            conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {table} {definition}")


#: a saved constraint: (table, name, kind p/u/f, definition)
Constraint = tuple[str, str, str, str]


def drop_constraints(conn: Connection) -> list[Constraint]:
    """Drop the primary keys, unique constraints and foreign keys of the registry's tables
    (and foreign keys pointing at them), in the caller's transaction, for a bulk COPY;
    returns them for :func:`add_constraints`. A foreign key checks every copied row with
    a query of its own and a unique index takes the keys one by one: adding them back
    after the COPY checks and builds each once."""
    rows = conn.execute(
        text(
            """SELECT c.conrelid::regclass::text, c.conname, c.contype::text,
                      pg_get_constraintdef(c.oid)
               FROM pg_constraint c
               WHERE c.contype IN ('p', 'u', 'f')
                 AND (c.conrelid = ANY(CAST(:t AS regclass[]))
                      OR c.confrelid = ANY(CAST(:t AS regclass[])))
               ORDER BY c.contype = 'f' DESC, c.conname"""
        ),
        {"t": list(REGISTRY_TABLES)},
    ).all()
    saved = [(str(t), str(n), str(k), str(d)) for t, n, k, d in rows]
    for table, name, _, _ in saved:
        conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    return saved


def add_constraints(conn: Connection, saved: Sequence[Constraint]) -> None:
    """Add back the constraints of :func:`drop_constraints` (keys first, then the foreign
    keys, each validated by one query)."""
    conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '1GB'")
    conn.exec_driver_sql("SET LOCAL max_parallel_maintenance_workers = 2")
    for table, name, _, definition in sorted(saved, key=lambda c: c[2] == "f"):
        conn.exec_driver_sql(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def truncate_registry(conn: Connection) -> None:
    """Empty every registry table (the demo loader's fresh start)."""
    conn.exec_driver_sql(f"TRUNCATE {', '.join(REGISTRY_TABLES)} RESTART IDENTITY")


_EXPORT_SQL: Final[dict[str, str]] = {
    "people": """SELECT p.id, p.name, p.sex, p.birth_date, p.id_enc, p.id_mask, p.phone_enc,
            p.phone_mask, p.relation, p.residence, h.ref AS household_ref, p.address,
            b.ref AS building_ref, p.grid_code, p.community_code, p.street_code, p.district_code
        FROM reg_person p LEFT JOIN reg_household h ON h.id = p.household_id
        LEFT JOIN reg_building b ON b.id = p.building_id""",
    "households": """SELECT p.id, p.ref AS household_ref, p.address, b.ref AS building_ref,
            p.grid_code, p.community_code, p.street_code, p.district_code
        FROM reg_household p LEFT JOIN reg_building b ON b.id = p.building_id""",
    "buildings": """SELECT p.id, p.ref AS building_ref, p.name, p.address, p.floors, p.use,
            ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat,
            p.grid_code, p.community_code, p.street_code, p.district_code
        FROM reg_building p""",
    "orgs": """SELECT p.id, p.uscc, p.name, p.kind, p.address, b.ref AS building_ref,
            ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat,
            p.grid_code, p.community_code, p.street_code, p.district_code
        FROM reg_org p LEFT JOIN reg_building b ON b.id = p.building_id""",
}


def export_rows(conn: Connection, kind: str, scope: Scope, unit: str | None = None) -> pd.DataFrame:
    """Every stored record of ``kind`` within ``scope`` (and inside ``unit`` when given),
    ordered by id; people with their sealed ID numbers and phones (the service opens or
    masks them)."""
    where, params = scope_condition(scope, "p", personal=True)
    sql = f"{_EXPORT_SQL[kind]} WHERE {where}"
    if unit is not None:
        sql += " AND (" + " OR ".join(f"p.{c} = :unit" for c in ATTRIBUTION_COLUMNS) + ")"
        params["unit"] = unit
    res = conn.execute(text(sql + " ORDER BY p.id"), params)
    return pd.DataFrame(res.all(), columns=list(res.keys()))


def copy_into(
    conn: Connection,
    table: str,
    schema: pa.Schema,
    chunks: Iterable[pa.Table | bytes | mmap.mmap],
    *,
    freeze: bool = False,
) -> int:
    """Binary-COPY rows straight into a registry table (the bulk load of an empty
    registry): ``chunks`` are Arrow tables of ``schema`` or bodies already encoded with
    pgpq for that schema (by worker processes). ``freeze``: ``COPY … FREEZE`` (the table
    was truncated in this transaction): rows written frozen and all-visible, so the first
    reads after the load do not dirty and write every page again to set hint bits, and
    index-only scans work at once. Returns the rows written."""
    if table not in REGISTRY_TABLES:
        raise ValueError(f"not a registry table: {table!r}")
    encoder = ArrowToPostgresBinaryEncoder(schema)
    names = ", ".join(f'"{f.name}"' for f in schema)
    options = "FORMAT BINARY, FREEZE" if freeze else "FORMAT BINARY"
    n = 0
    with _raw(conn).cursor() as cur:
        with cur.copy(f"COPY {table} ({names}) FROM STDIN WITH ({options})") as cp:
            cp.write(encoder.write_header())
            for chunk in chunks:
                if not isinstance(chunk, pa.Table):  # an encoded body (bytes or a mapping)
                    cp.write(chunk)
                    continue
                n += chunk.num_rows
                for batch in chunk.to_batches(max_chunksize=100_000):
                    cp.write(encoder.write_batch(batch))
            cp.write(encoder.finish())
    return n


def is_empty(conn: Connection) -> bool:
    """Whether the registry holds no building, household, person or organisation."""
    return not conn.exec_driver_sql(
        "SELECT EXISTS (SELECT 1 FROM reg_building) OR EXISTS (SELECT 1 FROM reg_household) "
        "OR EXISTS (SELECT 1 FROM reg_person) OR EXISTS (SELECT 1 FROM reg_org)"
    ).scalar_one()


def reset_identities(conn: Connection) -> None:
    """Move each registry table's identity past its largest id (after a COPY with ids)."""
    for t in ("reg_building", "reg_dwelling", "reg_household", "reg_person", "reg_org"):
        conn.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "
            f"coalesce((SELECT max(id) FROM {t}), 0) + 1, false)"
        )
