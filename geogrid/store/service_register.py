"""The SQL of the daily service register (revision 0011): ``service_entry`` rows in and out,
and the units and registry rows an entry is attributed by.

SQL only, with bound parameters; the rules are in :mod:`geogrid.core.service_register`,
the workflow in :mod:`geogrid.services.service_register`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from geogrid.core.hierarchy import ATTRIBUTION_COLUMNS
from geogrid.core.scope import Scope
from geogrid.core.service_register import SERVICE_KIND_CODES
from geogrid.store.engine import connection
from geogrid.store.scope import scope_condition
from geogrid.store.tables import metadata

__all__ = [
    "service_entry",
    "ENTRY_COLUMNS",
    "units_at",
    "registry_table_exists",
    "registry_codes",
    "existing_ids",
    "insert_entry",
    "entry_rows",
]

service_entry = Table(
    "service_entry",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("account_id", Integer, ForeignKey("account.id", ondelete="CASCADE"), nullable=False),
    Column("day", Date, nullable=False),
    Column("kind", Text, nullable=False),
    Column("household_id", BigInteger),
    Column("building_id", BigInteger),
    Column("person_ids", ARRAY(BigInteger)),
    Column("people_count", Integer, nullable=False, server_default="1"),
    Column("result", Text, nullable=False),
    Column("note", Text),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
    Column("src_crs", Text),
    Column("src_lon", Float),
    Column("src_lat", Float),
    Column("accuracy_m", Float),
    Column("media", ARRAY(Text)),
    *[Column(c, Text) for c in ATTRIBUTION_COLUMNS],
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(f"kind IN {SERVICE_KIND_CODES!r}", name="service_entry_kind"),
    CheckConstraint("people_count >= 0", name="service_entry_people"),
)
Index("service_entry_account_day", service_entry.c.account_id, service_entry.c.day)
Index("service_entry_day", service_entry.c.day)
Index("service_entry_household", service_entry.c.household_id)
Index("service_entry_person_ids", service_entry.c.person_ids, postgresql_using="gin")

#: the columns :func:`insert_entry` writes (plus ``geom`` from lon/lat)
ENTRY_COLUMNS = tuple(
    c.name for c in service_entry.columns if c.name not in {"id", "geom", "created_at"}
)
_REGISTRY = frozenset({"reg_household", "reg_building", "reg_person", "building"})


def units_at(bind: Engine | Connection, lon: float, lat: float) -> dict[str, str | None] | None:
    """The attribution codes of the published grid covering a WGS84 point (lowest code
    first on a shared edge), from the published parent links; None outside every grid."""
    with connection(bind) as c:
        row = (
            c.execute(
                text(
                    "SELECT g.code AS grid_code, cm.code AS community_code, s.code AS street_code, "
                    "d.code AS district_code FROM unit g JOIN boundary_version v "
                    "ON v.id = g.version_id AND v.status = 'published' "
                    "LEFT JOIN unit cm ON cm.version_id = g.version_id AND cm.code = g.parent_code "
                    "LEFT JOIN unit s ON s.version_id = g.version_id AND s.code = cm.parent_code "
                    "LEFT JOIN unit d ON d.version_id = g.version_id AND d.code = s.parent_code "
                    "WHERE g.level = 'grid' AND "
                    "ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) "
                    "ORDER BY g.code LIMIT 1"
                ),
                {"x": float(lon), "y": float(lat)},
            )
            .mappings()
            .first()
        )
    return None if row is None else dict(row)


def registry_table_exists(bind: Engine | Connection, table: str) -> bool:
    """Does a registry table (revision 0009) exist in this database?"""
    if table not in _REGISTRY:
        raise ValueError(f"not a registry table: {table!r}")
    with connection(bind) as c:
        return bool(c.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table}).scalar())


def existing_ids(bind: Engine | Connection, table: str, ids: Sequence[int]) -> set[int]:
    """Those of ``ids`` that are rows of a registry table."""
    if table not in _REGISTRY:
        raise ValueError(f"not a registry table: {table!r}")
    if not ids:
        return set()
    with connection(bind) as c:
        found = c.execute(
            text(f"SELECT id FROM {table} WHERE id = ANY(:ids)"), {"ids": [int(i) for i in ids]}
        ).scalars()
        return {int(i) for i in found}


def registry_codes(
    bind: Engine | Connection, table: str, row_id: int
) -> dict[str, str | None] | None:
    """The attribution codes of a ``reg_building`` or ``reg_household`` row (None: no row)."""
    if table not in {"reg_building", "reg_household"}:
        raise ValueError(f"not a registry table with unit codes: {table!r}")
    cols = ", ".join(ATTRIBUTION_COLUMNS)
    with connection(bind) as c:
        row = (
            c.execute(text(f"SELECT {cols} FROM {table} WHERE id = :i"), {"i": int(row_id)})
            .mappings()
            .first()
        )
    return None if row is None else dict(row)


def insert_entry(
    conn: Connection, values: Mapping[str, Any], lon: float | None, lat: float | None
) -> dict[str, Any]:
    """Insert one entry (``values`` has every column of :data:`ENTRY_COLUMNS`; the point is
    the WGS84 ``lon``/``lat`` or none); returns its ``id`` and ``created_at``."""
    cols = ", ".join(ENTRY_COLUMNS)
    params = ", ".join(f":{c}" for c in ENTRY_COLUMNS)
    row = (
        conn.execute(
            text(
                f"INSERT INTO service_entry ({cols}, geom) VALUES ({params}, "
                "CASE WHEN CAST(:_lon AS float8) IS NULL THEN NULL "
                "ELSE ST_SetSRID(ST_MakePoint(:_lon, :_lat), 4326) END) "
                "RETURNING id, created_at"
            ),
            {**{c: values[c] for c in ENTRY_COLUMNS}, "_lon": lon, "_lat": lat},
        )
        .mappings()
        .one()
    )
    return dict(row)


def entry_rows(
    bind: Engine | Connection,
    *,
    start: date,
    end: date,
    scope: Scope,
    own_only: bool = False,
    account_id: int | None = None,
    ids: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """Entries with ``start <= day < end`` inside ``scope`` (the caller's own only with
    ``own_only``; of one account; with these ids), with the account's name and the WGS84
    ``lon``/``lat``, by day and id."""
    # one's own records are one's own wherever they were made; others' by the scope
    params: dict[str, Any]
    cond, params = (
        ("s.account_id = :own", {"own": scope.account_id})
        if own_only
        else (scope_condition(scope, "s", personal=True))
    )
    parts = [cond, "s.day >= :d0", "s.day < :d1"]
    params = {**params, "d0": start, "d1": end}
    if account_id is not None:
        parts.append("s.account_id = :acc")
        params["acc"] = int(account_id)
    if ids is not None:
        parts.append("s.id = ANY(:ids)")
        params["ids"] = [int(i) for i in ids]
    cols = ", ".join(f"s.{c}" for c in ENTRY_COLUMNS)
    with connection(bind) as c:
        rows = (
            c.execute(
                text(
                    f"SELECT s.id, {cols}, s.created_at, a.name AS account_name, "
                    "ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat FROM service_entry s "
                    "JOIN account a ON a.id = s.account_id "
                    f"WHERE {' AND '.join(parts)} ORDER BY s.day, s.id"
                ),
                params,
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]
