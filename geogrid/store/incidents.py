"""Incident rows in PostGIS: the category catalogue, bulk ``COPY`` and the lookups bulk
loading needs. SQL only (rows in, rows out); the rows to load are built by
:func:`geogrid.core.incident_files.prepare_rows`.

Points are stored in EPSG:4326 together with the coordinate system and coordinates they
arrived in (``src_crs``, ``src_lon``, ``src_lat``).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pgpq import ArrowToPostgresBinaryEncoder
from sqlalchemy import Connection, Engine, text

from geogrid.core.accounts import UNIT_ROLES
from geogrid.core.hierarchy import LEVELS_UP
from geogrid.core.incident_files import INCIDENT_COPY_COLUMNS, INCIDENT_COPY_SCHEMA
from geogrid.store.engine import connection

__all__ = [
    "CATEGORY_COLUMNS",
    "category_table",
    "category_rows",
    "category_row",
    "upsert_categories",
    "grid_workers",
    "existing_source_ids",
    "copy_incidents",
    "encode_rows",
    "copy_encoded",
    "INCIDENT_COPY_COLUMNS",
    "analyze_incidents",
    "COPY_SCHEMA",
    "to_arrow",
    "ewkb_points",
    "default_months",
    "create_stage",
    "insert_keys",
    "insert_from",
    "build_indexes",
    "partition_index_sql",
    "notify_loaded",
    "attached_hook",
    "detached_hook",
    "read_table",
    "copy_table",
]

#: columns of the ``category`` table read by :func:`category_rows`
CATEGORY_COLUMNS = (
    "code",
    "name_zh",
    "name_en",
    "limit_hours",
    "effort",
    "escalate_level",
    "share",
    "active",
)
_CATEGORY_SELECT = f"SELECT {', '.join(CATEGORY_COLUMNS)} FROM category "


def category_table(conn: Connection) -> pd.DataFrame:
    """The active categories, indexed by code (columns ``name_zh`` … ``share``)."""
    rows = conn.execute(text(_CATEGORY_SELECT + "WHERE active ORDER BY code")).mappings().all()
    frame = pd.DataFrame([dict(r) for r in rows], columns=list(CATEGORY_COLUMNS))
    return frame.drop(columns="active").set_index("code")


def category_rows(bind: Engine | Connection, *, active_only: bool = True) -> list[dict[str, Any]]:
    """The category catalogue as rows (:data:`CATEGORY_COLUMNS`), ordered by code."""
    with connection(bind) as c:
        rows = (
            c.execute(
                text(_CATEGORY_SELECT + "WHERE active OR NOT :only ORDER BY code"),
                {"only": active_only},
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def category_row(bind: Engine | Connection, code: str) -> dict[str, Any] | None:
    """One category (active or not) as a row, None when there is none with this code."""
    with connection(bind) as c:
        row = c.execute(text(_CATEGORY_SELECT + "WHERE code = :c"), {"c": code}).mappings().first()
    return None if row is None else dict(row)


def set_category_verify(conn: Connection, code: str, verify: str) -> bool:
    """Set how a category's resolutions are verified (issue 13); False: no such code."""
    result = conn.execute(
        text("UPDATE category SET verify = :v WHERE code = :c"), {"v": verify, "c": code}
    )
    return bool(result.rowcount)


def upsert_categories(conn: Connection, cats: pd.DataFrame) -> None:
    """Insert or update categories (frame indexed by code)."""
    for code, r in cats.iterrows():
        conn.execute(
            text(
                "INSERT INTO category (code, name_zh, name_en, limit_hours, effort, "
                "escalate_level, share) VALUES (:code, :zh, :en, :lim, :eff, :esc, :share) "
                "ON CONFLICT (code) DO UPDATE SET name_zh = EXCLUDED.name_zh, "
                "name_en = EXCLUDED.name_en, limit_hours = EXCLUDED.limit_hours, "
                "effort = EXCLUDED.effort, escalate_level = EXCLUDED.escalate_level, "
                "share = EXCLUDED.share"
            ),
            {
                "code": code,
                "zh": r["name_zh"],
                "en": r["name_en"],
                "lim": float(r["limit_hours"]),
                "eff": float(r.get("effort", 1.0)),
                "esc": r.get("escalate_level", LEVELS_UP[0]),
                "share": float(r["share"]) if "share" in r and pd.notna(r["share"]) else None,
            },
        )


def grid_workers(conn: Connection) -> dict[tuple[str, str], int]:
    """(level, unit code) → id of the (first) active account responsible there: the grid
    worker for grids, the admin of the level for the other levels
    (:data:`geogrid.core.accounts.UNIT_ROLES`)."""
    rows = conn.execute(
        text(
            "SELECT a.role, au.unit_code, min(a.id) FROM account_unit au "
            "JOIN account a ON a.id = au.account_id WHERE a.active AND a.role = ANY(:roles) "
            "GROUP BY 1, 2"
        ),
        {"roles": list(UNIT_ROLES)},
    ).all()
    return {(UNIT_ROLES[role], str(code)): int(aid) for role, code, aid in rows}


def existing_source_ids(conn: Connection, ids: list[str]) -> set[str]:
    """The ``source_id`` values among ``ids`` that are already stored (``incident_key``
    holds every incident's, one index for all months)."""
    if not ids:
        return set()
    rows = conn.execute(
        text("SELECT source_id FROM incident_key WHERE source_id = ANY(:ids)"), {"ids": ids}
    ).scalars()
    return {str(r) for r in rows}


#: the Arrow type of each COPY column (pgpq encodes by Arrow type; ``geom`` is EWKB, which
#: PostGIS's binary input reads): the core's schema of an incident file's rows
COPY_SCHEMA = INCIDENT_COPY_SCHEMA
COPY_TYPES: dict[str, pa.DataType] = {f.name: f.type for f in COPY_SCHEMA}
_TS = COPY_TYPES["reported_at"]
#: EWKB of a 2D point with SRID 4326: little-endian, type 0x20000001, srid, x, y
_EWKB_POINT = np.dtype([("o", "u1"), ("t", "<u4"), ("s", "<u4"), ("x", "<f8"), ("y", "<f8")])


def ewkb_points(lon: np.ndarray, lat: np.ndarray) -> pa.Array:
    """EWKB points (SRID 4326) as an Arrow binary array, built with NumPy in one pass
    (shapely would make a GEOS object per point first: ~20x slower)."""
    n = len(lon)
    rec = np.empty(n, dtype=_EWKB_POINT)
    rec["o"], rec["t"], rec["s"] = 1, 0x20000001, 4326
    rec["x"], rec["y"] = lon, lat
    offsets = np.arange(0, 25 * (n + 1), 25, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(rec.tobytes())]
    )


def to_arrow(
    frame: pd.DataFrame, lon: np.ndarray | None = None, lat: np.ndarray | None = None
) -> pa.Table:
    """Prepared rows (:func:`geogrid.core.incident_files.prepare_rows`) as an Arrow table of
    :data:`COPY_SCHEMA`; the points from WGS84 ``lon``/``lat`` when given, else from the
    frame's EWKB hex ``geom``."""
    cols = []
    n = len(frame)
    for c in INCIDENT_COPY_COLUMNS:
        t = COPY_TYPES[c]
        if c == "geom":
            if lon is not None and lat is not None:
                cols.append(ewkb_points(np.asarray(lon, "f8"), np.asarray(lat, "f8")))
            else:
                raw = bytes.fromhex("".join(frame["geom"].tolist()))
                cols.append(pa.array([raw[i * 25 : i * 25 + 25] for i in range(n)], pa.binary()))
            continue
        v = frame[c]
        if pa.types.is_timestamp(t):
            arr = pa.array(pd.to_datetime(v, utc=True).dt.as_unit("us"), type=_TS)
        elif pa.types.is_integer(t):
            arr = pa.array(v.astype("Int64"), type=pa.int64()).cast(t)
        else:
            arr = pa.array(
                v.to_numpy(dtype=object) if t == pa.string() else v, type=t, from_pandas=True
            )
        cols.append(arr)
    return pa.Table.from_arrays(cols, schema=COPY_SCHEMA)


def encode_rows(table: pa.Table) -> bytes:
    """An Arrow table of :data:`COPY_SCHEMA` as one binary ``COPY`` body (pgpq; no value is
    formatted as text)."""
    encoder = ArrowToPostgresBinaryEncoder(table.schema)
    parts = [encoder.write_header()]
    for batch in table.to_batches(max_chunksize=100_000):
        parts.append(encoder.write_batch(batch))
    parts.append(encoder.finish())
    return b"".join(parts)


def _raw(conn: Connection) -> Any:
    return conn.connection.driver_connection  # a psycopg 3 connection


def copy_encoded(conn: Connection, body: bytes, table: str = "incident") -> None:
    """COPY an :func:`encode_rows` body into ``table`` (``incident``, one of its months'
    tables or a staging table) inside the caller's transaction."""
    if not _TABLE.fullmatch(table):
        raise ValueError(f"not an incident table: {table!r}")
    with _raw(conn).cursor() as cur:
        with cur.copy(
            f"COPY {table} ({', '.join(INCIDENT_COPY_COLUMNS)}) FROM STDIN WITH (FORMAT BINARY)"
        ) as cp:
            cp.write(body)


_TABLE = re.compile(r"(incident|incident_p\d{4}_\d{2}(_\d+)?|incident_stage|incident_bulk_\w+)")


def copy_incidents(conn: Connection, frame: pd.DataFrame) -> int:
    """COPY prepared rows into ``incident`` inside the caller's transaction."""
    if len(frame) == 0:
        return 0
    copy_encoded(conn, encode_rows(to_arrow(frame)))
    return len(frame)


def analyze_incidents(conn: Connection, table: str = "incident") -> None:
    """Refresh the planner statistics of ``incident`` (after a bulk write)."""
    if not _TABLE.fullmatch(table):
        raise ValueError(f"not an incident table: {table!r}")
    conn.execute(text(f"ANALYZE {table}"))


# ------------------------------------------------------------------ bulk loads by month
def default_months(conn: Connection, zone: str) -> list[str]:
    """The months (``YYYY-MM`` in ``zone``) of rows waiting in the DEFAULT partition."""
    rows = conn.execute(
        text(
            "SELECT DISTINCT to_char(reported_at AT TIME ZONE :z, 'YYYY-MM') FROM incident_default"
        ),
        {"z": zone},
    ).scalars()
    return sorted(str(r) for r in rows)


def create_stage(conn: Connection) -> str:
    """A temporary table shaped like ``incident`` without indexes (dropped at commit): the
    rows of months that already hold rows wait there, then go in with one sorted INSERT."""
    conn.exec_driver_sql(
        "CREATE TEMP TABLE incident_stage (LIKE incident INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    return "incident_stage"


def insert_keys(conn: Connection, table: str, *, restored: bool = False) -> int:
    """Write the ``incident_key`` rows of ``table``'s rows (a bulk load's own table, whose
    rows the key trigger did not see) in one statement. ``restored``: ids already keyed
    are skipped (a restored month's keys were kept); otherwise the ids are fresh from the
    sequence and the statement skips ``ON CONFLICT``'s per-row speculative insertion. A ``source_id`` stored under another id fails with
    ``incident_source_id_key``, as the unique constraint did before partitioning."""
    if not _TABLE.fullmatch(table):
        raise ValueError(f"not an incident table: {table!r}")
    tail = " ORDER BY id ON CONFLICT (id) DO NOTHING" if restored else ""
    res = conn.execute(
        text(
            f"INSERT INTO incident_key (id, source_id, reported_at) "
            f"SELECT id, source_id, reported_at FROM {table}{tail}"
        )
    )
    return int(res.rowcount or 0)


def insert_from(conn: Connection, table: str) -> int:
    """Move ``table``'s rows into ``incident`` through the parent (indexes, triggers), sorted
    by ``reported_at`` so that each month's index pages are visited in order. Keys are
    written first, set-based (the row trigger is switched off for this statement)."""
    if not _TABLE.fullmatch(table):
        raise ValueError(f"not an incident table: {table!r}")
    insert_keys(conn, table)
    conn.execute(text("SELECT set_config('geogrid.keys', 'off', true)"))
    res = conn.execute(text(f"INSERT INTO incident SELECT * FROM {table} ORDER BY reported_at"))
    conn.execute(text("SELECT set_config('geogrid.keys', '', true)"))
    return int(res.rowcount or 0)


def build_indexes(conn: Connection, table: str) -> list[str]:
    """Build on ``table`` (a month loaded standalone) the indexes of ``incident``'s
    partitions — its primary key and every partitioned index — so that attaching it
    adopts them instead of building them under the attach's lock. Returns the statements
    run (for the phase breakdown)."""
    if not _TABLE.fullmatch(table):
        raise ValueError(f"not an incident table: {table!r}")
    # the sorts of the builds in memory (the default 64 MB spills a million rows to disk)
    conn.execute(text("SELECT set_config('maintenance_work_mem', '256MB', true)"))
    done = partition_index_sql(conn, table, primary_key=True)
    for sql in done:
        conn.exec_driver_sql(sql)
    return done


def partition_index_sql(conn: Connection, table: str, *, primary_key: bool) -> list[str]:
    """The statements that build on ``table`` the indexes of ``incident``'s partitions,
    named as a partition's are: the primary key (as a constraint, or with ``primary_key``
    False as a unique index that can become it later) and every partitioned index.
    ``table`` must be a checked identifier."""
    defs = conn.execute(
        text(
            "SELECT i.relname, pg_get_indexdef(i.oid), x.indisprimary FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = 'incident'::regclass ORDER BY x.indisprimary DESC, i.relname"
        )
    ).all()
    out = []
    for name, definition, primary in defs:
        if primary:
            cols = definition.split("(", 1)[1].rsplit(")", 1)[0]
            out.append(
                f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({cols})"
                if primary_key
                else f"CREATE UNIQUE INDEX {table}_pkey ON {table} USING btree ({cols})"
            )
        else:
            out.append(
                definition.replace(" ON ONLY public.incident ", f" ON {table} ", 1).replace(
                    f"INDEX {name} ", f"INDEX {table}_{name.removeprefix('incident_')} ", 1
                )
            )
    return out


def notify_loaded(conn: Connection, count: int, bbox: tuple[float, float, float, float]) -> None:
    """The live map's message for rows that reached ``incident`` without its INSERT
    trigger (a month attached whole): 0014's payload with ``truncated`` (no events)."""
    conn.execute(
        text(
            "SELECT pg_notify('geogrid_changes', json_build_object('v', 1, 'kind', 'new', "
            "'count', CAST(:n AS bigint), 'truncated', true, "
            "'bbox', json_build_array(:w, :s, :e, :nn), 'events', '[]'::json)::text)"
        ),
        {"n": count, "w": bbox[0], "s": bbox[1], "e": bbox[2], "nn": bbox[3]},
    )


def attached_hook(conn: Connection, table: str) -> None:
    """Tell the database that ``table``'s rows joined ``incident`` without passing its
    INSERT triggers: ``geogrid_incidents_attached(regclass)`` (revision 0015, a no-op there;
    later revisions that maintain something from those triggers — the daily rollup —
    replace it to fold the table's rows in)."""
    if not _TABLE.fullmatch(table):
        raise ValueError(f"not an incident table: {table!r}")
    conn.execute(text("SELECT geogrid_incidents_attached(CAST(:t AS regclass))"), {"t": table})


def detached_hook(conn: Connection, table: str) -> None:
    """The counterpart of :func:`attached_hook` before a detached month is dropped
    (``geogrid_incidents_detached(regclass)``)."""
    if not _TABLE.fullmatch(table):
        raise ValueError(f"not an incident table: {table!r}")
    conn.execute(text("SELECT geogrid_incidents_detached(CAST(:t AS regclass))"), {"t": table})


#: PostgreSQL type → Arrow type of the columns read back by :func:`read_table`
_PG_ARROW = {
    "int8": pa.int64(),
    "int4": pa.int32(),
    "float8": pa.float64(),
    "text": pa.string(),
    "timestamptz": _TS,
    "bool": pa.bool_(),
}


def read_table(conn: Connection, table: str) -> pa.Table:
    """Every row of ``table`` (an incident month), every column with its exact type
    (``geom`` as ISO WKB, SRID 4326 implied), ordered by id — what an archive file holds."""
    if not _TABLE.fullmatch(table):
        raise ValueError(f"not an incident table: {table!r}")
    cols = conn.execute(
        text(
            "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE a.attrelid = CAST(:t AS regclass) AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum"
        ),
        {"t": table},
    ).all()
    select = ", ".join("ST_AsBinary(geom) AS geom" if n == "geom" else f'"{n}"' for n, _ in cols)
    with _raw(conn).cursor() as cur:
        cur.execute(f"SELECT {select} FROM {table} ORDER BY id")
        rows = cur.fetchall()
    arrays = []
    for i, (name, typ) in enumerate(cols):
        t = pa.binary() if name == "geom" else _PG_ARROW[str(typ)]
        arrays.append(pa.array([r[i] for r in rows], type=t))
    return pa.Table.from_arrays(arrays, names=[str(n) for n, _ in cols])


def copy_table(conn: Connection, table: str, data: pa.Table) -> int:
    """Binary-COPY an Arrow table (column names of ``incident``, ``geom`` as EWKB) into
    ``table``. Returns the rows written."""
    if not _TABLE.fullmatch(table):
        raise ValueError(f"not an incident table: {table!r}")
    encoder = ArrowToPostgresBinaryEncoder(data.schema)
    names = ", ".join(f'"{f.name}"' for f in data.schema)
    with _raw(conn).cursor() as cur:
        with cur.copy(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT BINARY)") as cp:
            cp.write(encoder.write_header())
            for batch in data.to_batches(max_chunksize=100_000):
                cp.write(encoder.write_batch(batch))
            cp.write(encoder.finish())
    return int(data.num_rows)
