"""Incident rows in PostGIS: the category catalogue, bulk ``COPY`` and the lookups bulk
loading needs. SQL only (rows in, rows out); the rows to load are built by
:func:`geogrid.core.incident_files.prepare_rows`.

Points are stored in EPSG:4326 together with the coordinate system and coordinates they
arrived in (``src_crs``, ``src_lon``, ``src_lat``).
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Engine, text

from geogrid.core.accounts import UNIT_ROLES
from geogrid.core.hierarchy import LEVELS_UP
from geogrid.core.incident_files import INCIDENT_COPY_COLUMNS
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
    """The ``source_id`` values among ``ids`` that are already stored."""
    if not ids:
        return set()
    rows = conn.execute(
        text("SELECT source_id FROM incident WHERE source_id = ANY(:ids)"), {"ids": ids}
    ).scalars()
    return {str(r) for r in rows}


def encode_rows(frame: pd.DataFrame) -> bytes:
    """Prepared rows as the CSV body of a ``COPY incident`` (no database needed)."""
    # pyarrow's C++ CSV writer is ~10x faster than DataFrame.to_csv; it writes nulls
    # unquoted-empty, which COPY's csv format reads as NULL. Timestamps go as UTC text
    # with a Z (casting in Arrow is ~8x faster than the writer's own timestamp format).
    table = pa.Table.from_pandas(frame[INCIDENT_COPY_COLUMNS], preserve_index=False)
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            utc = pc.cast(table.column(i), pa.timestamp("us", tz="UTC"), safe=False)
            text_ = pc.cast(utc, pa.timestamp("us"))
            text_ = pc.binary_join_element_wise(pc.cast(text_, pa.string()), "Z", "")
            table = table.set_column(i, field.name, text_)
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, write_options=pacsv.WriteOptions(include_header=False))
    return buf.getvalue()


def copy_encoded(conn: Connection, body: bytes) -> None:
    """COPY an :func:`encode_rows` body into ``incident`` inside the caller's transaction."""
    raw: Any = conn.connection.driver_connection  # a psycopg 3 connection
    with raw.cursor() as cur:
        with cur.copy(
            f"COPY incident ({', '.join(INCIDENT_COPY_COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
        ) as cp:
            cp.write(body)


def copy_incidents(conn: Connection, frame: pd.DataFrame) -> int:
    """COPY prepared rows into ``incident`` inside the caller's transaction."""
    if len(frame) == 0:
        return 0
    copy_encoded(conn, encode_rows(frame))
    return len(frame)


def analyze_incidents(conn: Connection) -> None:
    """Refresh the planner statistics of ``incident`` (after a bulk write)."""
    conn.execute(text("ANALYZE incident"))
