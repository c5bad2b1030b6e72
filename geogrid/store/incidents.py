"""Incident rows in PostGIS: bulk ``COPY`` and the lookups bulk loading needs.

Points are stored in EPSG:4326 together with the coordinate system and coordinates they
arrived in (``src_crs``, ``src_lon``, ``src_lat``).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Engine, text

from geogrid.core.geometry import points_ewkb_hex
from geogrid.core.hierarchy import LEVEL_COLUMN as _LEVEL_COLUMN
from geogrid.core.lifecycle import STATUSES
from geogrid.errors import InvalidInput

__all__ = [
    "category_table",
    "grid_workers",
    "existing_source_ids",
    "prepare_rows",
    "copy_incidents",
    "encode_rows",
    "copy_encoded",
    "check_categories",
    "check_statuses",
    "INCIDENT_COPY_COLUMNS",
    "upsert_categories",
]

INCIDENT_COPY_COLUMNS = [
    "source_id",
    "category",
    "description",
    "src_crs",
    "src_lon",
    "src_lat",
    "reported_at",
    "reporter_kind",
    "reporter_id",
    "status",
    "updated_at",
    "accepted_at",
    "dispatched_at",
    "resolved_at",
    "closed_at",
    "due_at",
    "assigned_level",
    "assigned_unit",
    "assignee_id",
    "version_id",
    "grid_code",
    "community_code",
    "street_code",
    "district_code",
    "geom",
]


def category_table(conn: Connection) -> pd.DataFrame:
    """The category catalogue, indexed by code."""
    rows = conn.execute(
        text(
            "SELECT code, name_zh, name_en, limit_hours, effort, "
            "escalate_level, share FROM category WHERE active"
        )
    ).mappings()
    return pd.DataFrame(list(rows)).set_index("code") if rows else pd.DataFrame()


def check_categories(conn: Connection | Engine, values, parameter: str = "category") -> list[str]:
    """The category codes given, or InvalidInput naming ``parameter`` and the known codes."""
    from geogrid.store.engine import connection

    values = [str(v) for v in values]
    with connection(conn) as c:
        known = set(category_table(c).index)
    bad = [v for v in values if v not in known]
    if bad:
        raise InvalidInput(parameter, ",".join(bad), "one of " + ", ".join(sorted(known)))
    return values


def check_statuses(values, parameter: str = "status") -> list[str]:
    """The statuses given, or InvalidInput naming ``parameter`` and the statuses."""

    values = [str(v) for v in values]
    bad = [v for v in values if v not in STATUSES]
    if bad:
        raise InvalidInput(parameter, ",".join(bad), "one of " + ", ".join(STATUSES))
    return values


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
                "esc": r.get("escalate_level", "grid"),
                "share": float(r["share"]) if "share" in r and pd.notna(r["share"]) else None,
            },
        )


def grid_workers(conn: Connection) -> dict[tuple[str, str], int]:
    """(level, unit code) → id of the (first) account responsible there: the grid worker
    for grids, the ``<level>_admin`` for the other levels (see
    :func:`geogrid.core.lifecycle.admin_role_for`)."""
    rows = conn.execute(
        text(
            "SELECT CASE a.role WHEN 'worker' THEN 'grid' ELSE replace(a.role, '_admin', '') END,"
            " au.unit_code, min(a.id) FROM account_unit au JOIN account a ON a.id = au.account_id"
            " WHERE a.active AND a.role IN ('worker', 'community_admin', 'street_admin', "
            "'district_admin') GROUP BY 1, 2"
        )
    ).all()
    return {(level, code): int(aid) for level, code, aid in rows}


def existing_source_ids(conn: Connection, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    rows = conn.execute(
        text("SELECT source_id FROM incident WHERE source_id = ANY(:ids)"), {"ids": ids}
    ).scalars()
    return set(rows)


def prepare_rows(
    batch: pd.DataFrame,
    codes: pd.DataFrame,
    cats: pd.DataFrame,
    workers: dict[tuple[str, str], int],
    version_id: int | None,
) -> pd.DataFrame:
    """Build the rows to COPY: due date from the category's limit, the responsible unit
    (the category's level, as :func:`geogrid.core.lifecycle.route` does for one incident: the
    nearest level above that the point has, else below) and that unit's account as
    assignee."""
    n = len(batch)
    limit_h = batch["category"].map(cats["limit_hours"]).astype(float).to_numpy()
    due = batch["reported_at"] + pd.to_timedelta(limit_h, unit="h")
    level = batch["category"].map(cats["escalate_level"]).fillna("grid").to_numpy(dtype=object)
    codes = codes.reset_index(drop=True)
    assigned_unit = np.full(n, None, dtype=object)
    assigned_level = np.full(n, None, dtype=object)
    unassigned = np.ones(n, dtype=bool)
    order = list(_LEVEL_COLUMN)
    values = {lv: codes[col].to_numpy(dtype=object) for lv, col in _LEVEL_COLUMN.items()}
    present = {lv: pd.notna(v) for lv, v in values.items()}
    for lv in order:
        wanted = level == lv
        r = order.index(lv)
        for cand in order[r:] + order[:r][::-1]:
            take = wanted & unassigned & present[cand]
            assigned_unit[take] = values[cand][take]
            assigned_level[take] = cand
            unassigned &= ~take
    level = assigned_level
    grid = values["grid"]
    assignee = np.full(n, None, dtype=object)
    if workers:
        keys = pd.MultiIndex.from_tuples(list(workers), names=["level", "unit"])
        pos = keys.get_indexer(pd.MultiIndex.from_arrays([level, assigned_unit]))
        ids = np.array(list(workers.values()), dtype=object)
        assignee[pos >= 0] = ids[pos[pos >= 0]]
    reporter_id = batch["reporter_id"] if "reporter_id" in batch else pd.Series([None] * n)
    # the latest lifecycle time (NaT is the smallest int64, so it never wins)
    times = np.stack(
        [
            batch[c].to_numpy(dtype="datetime64[us]").view("int64")
            for c in ("reported_at", "accepted_at", "dispatched_at", "resolved_at", "closed_at")
        ]
    )
    last = pd.Series(pd.to_datetime(times.max(axis=0).view("datetime64[us]"), utc=True))
    frame = pd.DataFrame(
        {
            "source_id": batch["source_id"].to_numpy(),
            "category": batch["category"].to_numpy(),
            "description": batch["description"].to_numpy(),
            "src_crs": batch["src_crs"].to_numpy(),
            "src_lon": batch["src_lon"].to_numpy(),
            "src_lat": batch["src_lat"].to_numpy(),
            "reported_at": batch["reported_at"].reset_index(drop=True),
            "reporter_kind": batch["reporter_kind"].to_numpy(),
            "reporter_id": pd.array(reporter_id, dtype="Int64"),
            "status": batch["status"].to_numpy(),
            "updated_at": last.reset_index(drop=True),
            "accepted_at": batch["accepted_at"].reset_index(drop=True),
            "dispatched_at": batch["dispatched_at"].reset_index(drop=True),
            "resolved_at": batch["resolved_at"].reset_index(drop=True),
            "closed_at": batch["closed_at"].reset_index(drop=True),
            "due_at": due.reset_index(drop=True),
            "assigned_level": level,
            "assigned_unit": assigned_unit,
            "assignee_id": pd.array(assignee, dtype="Int64"),
            "version_id": version_id,
            "grid_code": grid,
            "community_code": codes["community_code"].to_numpy(dtype=object),
            "street_code": codes["street_code"].to_numpy(dtype=object),
            "district_code": codes["district_code"].to_numpy(dtype=object),
            "geom": points_ewkb_hex(batch["lon"].to_numpy(), batch["lat"].to_numpy()),
        }
    )
    return frame


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
    raw = conn.connection.driver_connection
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
