"""The SQL of patrols (revision 0011): ``patrol``, ``patrol_grid``, ``patrol_checkin``; the
published grids and the buildings near a track.

SQL only, with bound parameters; the measures are computed in :mod:`geogrid.core.patrol`
and the workflow is :mod:`geogrid.services.patrols`. Geometries are EPSG:4326.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
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
from geogrid.store.engine import connection
from geogrid.store.scope import scope_condition
from geogrid.store.tables import metadata

__all__ = [
    "patrol",
    "patrol_grid",
    "patrol_checkin",
    "grids_near",
    "building_table",
    "buildings_near",
    "building_exists",
    "insert_patrol",
    "insert_patrol_grids",
    "insert_checkins",
    "patrol_rows",
    "patrol_grid_rows",
]


def _units() -> list[Column[Any]]:
    return [Column(c, Text) for c in ATTRIBUTION_COLUMNS]


patrol = Table(
    "patrol",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("account_id", Integer, ForeignKey("account.id", ondelete="CASCADE"), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=False),
    Column("track", Geometry("MULTILINESTRING", srid=4326, spatial_index=False)),
    Column("point_times", ARRAY(DateTime(timezone=True))),
    Column("accuracy_m", ARRAY(Float)),
    Column("points_received", Integer, nullable=False, server_default="0"),
    Column("distance_m", Float, nullable=False, server_default="0"),
    Column("duration_s", Float, nullable=False, server_default="0"),
    Column("buildings_visited", Integer, nullable=False, server_default="0"),
    Column("src_crs", Text, nullable=False, server_default="wgs84"),
    Column("metric_crs", Text),
    Column("client_key", Text),
    Column("media", ARRAY(Text)),
    *_units(),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("ended_at >= started_at", name="patrol_times"),
)
Index("patrol_account_started", patrol.c.account_id, patrol.c.started_at)
Index("patrol_started", patrol.c.started_at)
Index("patrol_track", patrol.c.track, postgresql_using="gist")

patrol_grid = Table(
    "patrol_grid",
    metadata,
    Column("patrol_id", BigInteger, ForeignKey("patrol.id", ondelete="CASCADE"), primary_key=True),
    Column("grid_code", Text, primary_key=True),
    Column("seconds_in_grid", Float, nullable=False),
    Column("length_m", Float, nullable=False),
    Column("coverage", Float, nullable=False),
    Column("buildings_visited", Integer, nullable=False, server_default="0"),
    CheckConstraint("coverage >= 0 AND coverage <= 1", name="patrol_grid_coverage"),
)
Index("patrol_grid_code", patrol_grid.c.grid_code)

patrol_checkin = Table(
    "patrol_checkin",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("patrol_id", BigInteger, ForeignKey("patrol.id", ondelete="CASCADE")),
    Column("account_id", Integer, ForeignKey("account.id", ondelete="CASCADE"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
    Column("accuracy_m", Float),
    Column("building_id", BigInteger),
    Column("building_source", Text),
    Column("place", Text),
    *_units(),
    CheckConstraint(
        "building_source IS NULL OR building_source IN ('reg_building', 'building')",
        name="patrol_checkin_building_source",
    ),
)
Index("patrol_checkin_patrol", patrol_checkin.c.patrol_id)
Index("patrol_checkin_account_at", patrol_checkin.c.account_id, patrol_checkin.c.at)


# --------------------------------------------------------------------------- context
def grids_near(
    bind: Engine | Connection, bbox: tuple[float, float, float, float]
) -> list[dict[str, Any]]:
    """The published grids intersecting a WGS84 box: ``code``, the codes of their
    community, street and district (the published parent links) and ``geom`` (shapely,
    EPSG:4326), by code."""
    with connection(bind) as c:
        rows = (
            c.execute(
                text(
                    "SELECT g.code, c.code AS community_code, s.code AS street_code, "
                    "d.code AS district_code, ST_AsBinary(g.geom) AS wkb "
                    "FROM unit g JOIN boundary_version v ON v.id = g.version_id "
                    "AND v.status = 'published' "
                    "LEFT JOIN unit c ON c.version_id = g.version_id AND c.code = g.parent_code "
                    "LEFT JOIN unit s ON s.version_id = g.version_id AND s.code = c.parent_code "
                    "LEFT JOIN unit d ON d.version_id = g.version_id AND d.code = s.parent_code "
                    "WHERE g.level = 'grid' AND g.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326) "
                    "ORDER BY g.code"
                ),
                dict(zip(("x0", "y0", "x1", "y1"), (float(v) for v in bbox), strict=True)),
            )
            .mappings()
            .all()
        )
    return [
        {
            "code": r["code"],
            "community_code": r["community_code"],
            "street_code": r["street_code"],
            "district_code": r["district_code"],
            "geom": shapely.from_wkb(bytes(r["wkb"])),
        }
        for r in rows
    ]


def building_table(bind: Engine | Connection) -> str:
    """The buildings the city uses: ``reg_building`` (the registry, revision 0009) when it
    exists and has rows, else ``building``."""
    with connection(bind) as c:
        reg = c.execute(text("SELECT to_regclass('reg_building') IS NOT NULL")).scalar_one()
        if reg and c.execute(text("SELECT EXISTS (SELECT 1 FROM reg_building)")).scalar_one():
            return "reg_building"
    return "building"


_BUILDING_TABLES = frozenset({"reg_building", "building"})


def buildings_near(
    bind: Engine | Connection, table: str, bbox: tuple[float, float, float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ids, WGS84 lon and lat of the buildings of ``table`` inside a box."""
    if table not in _BUILDING_TABLES:
        raise ValueError(f"not a building table: {table!r}")
    with connection(bind) as c:
        rows = c.execute(
            text(
                f"SELECT id, ST_X(geom), ST_Y(geom) FROM {table} "
                "WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326) ORDER BY id"
            ),
            dict(zip(("x0", "y0", "x1", "y1"), (float(v) for v in bbox), strict=True)),
        ).all()
    arr = np.asarray(rows, dtype=float).reshape(-1, 3)
    return arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2]


def building_exists(bind: Engine | Connection, table: str, ids: Sequence[int]) -> set[int]:
    """Those of ``ids`` that are rows of ``table``."""
    if table not in _BUILDING_TABLES:
        raise ValueError(f"not a building table: {table!r}")
    if not ids:
        return set()
    with connection(bind) as c:
        found = c.execute(
            text(f"SELECT id FROM {table} WHERE id = ANY(:ids)"), {"ids": [int(i) for i in ids]}
        ).scalars()
        return {int(i) for i in found}


# --------------------------------------------------------------------------- writes
def insert_patrol(conn: Connection, values: Mapping[str, Any], track_wkt: str | None) -> int:
    """Insert one patrol (``track_wkt``: a WGS84 MultiLineString, None without a track)."""
    cols = [c.name for c in patrol.columns if c.name not in {"id", "track", "created_at"}]
    missing = set(cols) - set(values)
    if missing:
        raise ValueError(f"patrol values missing: {sorted(missing)}")
    return int(
        conn.execute(
            text(
                f"INSERT INTO patrol ({', '.join(cols)}, track) VALUES "
                f"({', '.join(':' + c for c in cols)}, "
                "CASE WHEN CAST(:_track AS text) IS NULL THEN NULL "
                "ELSE ST_Multi(ST_GeomFromText(:_track, 4326)) END) RETURNING id"
            ),
            {**{c: values[c] for c in cols}, "_track": track_wkt},
        ).scalar_one()
    )


def insert_patrol_grids(
    conn: Connection, patrol_id: int, rows: Sequence[Mapping[str, Any]]
) -> None:
    """The per-grid measures of a patrol."""
    if not rows:
        return
    conn.execute(
        patrol_grid.insert(),
        [
            {
                "patrol_id": int(patrol_id),
                "grid_code": r["grid_code"],
                "seconds_in_grid": float(r["seconds_in_grid"]),
                "length_m": float(r["length_m"]),
                "coverage": float(r["coverage"]),
                "buildings_visited": int(r.get("buildings_visited", 0)),
            }
            for r in rows
        ],
    )


def insert_checkins(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Check-ins (``lon``/``lat`` WGS84 plus the columns of ``patrol_checkin``); their ids."""
    ids = []
    cols = [
        "patrol_id",
        "account_id",
        "at",
        "accuracy_m",
        "building_id",
        "building_source",
        "place",
        *ATTRIBUTION_COLUMNS,
    ]
    for r in rows:
        ids.append(
            int(
                conn.execute(
                    text(
                        f"INSERT INTO patrol_checkin ({', '.join(cols)}, geom) VALUES "
                        f"({', '.join(':' + c for c in cols)}, "
                        "ST_SetSRID(ST_MakePoint(:_lon, :_lat), 4326)) RETURNING id"
                    ),
                    {**{c: r.get(c) for c in cols}, "_lon": r["lon"], "_lat": r["lat"]},
                ).scalar_one()
            )
        )
    return ids


# --------------------------------------------------------------------------- reads
def _where(
    scope: Scope,
    start: datetime,
    end: datetime,
    account_id: int | None,
    unit: str | None,
    own_only: bool,
) -> tuple[str, dict[str, Any]]:
    # one's own patrols are one's own wherever they went; others' by the scope
    params: dict[str, Any]
    cond, params = (
        ("p.account_id = :own", {"own": scope.account_id})
        if own_only
        else (scope_condition(scope, "p", personal=True))
    )
    parts = [cond, "p.started_at >= :s", "p.started_at < :e"]
    params = {**params, "s": start, "e": end}
    if account_id is not None:
        parts.append("p.account_id = :acc")
        params["acc"] = int(account_id)
    if unit is not None:
        ors = " OR ".join(f"p.{c} = :unit" for c in ATTRIBUTION_COLUMNS)
        parts.append(
            f"(({ors}) OR EXISTS (SELECT 1 FROM patrol_grid pg WHERE pg.patrol_id = p.id "
            "AND left(pg.grid_code, length(:unit)) = :unit))"
        )
        params["unit"] = unit
    return " AND ".join(parts), params


def patrol_rows(
    bind: Engine | Connection,
    *,
    start: datetime,
    end: datetime,
    scope: Scope,
    own_only: bool = False,
    account_id: int | None = None,
    unit: str | None = None,
    with_wkb: bool = False,
) -> list[dict[str, Any]]:
    """Patrols started in ``[start, end)`` inside ``scope`` (only the caller's own with
    ``own_only``; of one account; touching a unit), with the account's name, the track as
    GeoJSON (``track``, a dict) or WKB (``wkb``) and the per-grid measures (``grids``)."""
    where, params = _where(scope, start, end, account_id, unit, own_only)
    geo = "ST_AsBinary(p.track) AS wkb" if with_wkb else "ST_AsGeoJSON(p.track, 7)::json AS track"
    units = ", ".join(f"p.{c}" for c in ATTRIBUTION_COLUMNS)
    with connection(bind) as c:
        rows = (
            c.execute(
                text(
                    "SELECT p.id, p.account_id, a.name AS account_name, p.started_at, "
                    "p.ended_at, p.distance_m, p.duration_s, p.buildings_visited, "
                    f"p.points_received, cardinality(p.point_times) AS points_kept, {units}, {geo}, "
                    "(SELECT coalesce(json_agg(json_build_object('grid_code', g.grid_code, "
                    "'seconds_in_grid', g.seconds_in_grid, 'length_m', g.length_m, "
                    "'coverage', g.coverage, 'buildings_visited', g.buildings_visited) "
                    "ORDER BY g.grid_code), '[]') FROM patrol_grid g WHERE g.patrol_id = p.id) "
                    "AS grids, (SELECT count(*) FROM patrol_checkin k WHERE k.patrol_id = p.id) "
                    "AS checkins FROM patrol p JOIN account a ON a.id = p.account_id "
                    f"WHERE {where} ORDER BY p.started_at, p.id"
                ),
                params,
            )
            .mappings()
            .all()
        )
    out = []
    for r in rows:
        d = dict(r)
        if with_wkb:
            d["wkb"] = None if d["wkb"] is None else bytes(d["wkb"])
        out.append(d)
    return out


def patrol_grid_rows(
    bind: Engine | Connection,
    *,
    start: datetime,
    end: datetime,
    scope: Scope,
    own_only: bool = False,
    unit: str | None = None,
) -> list[dict[str, Any]]:
    """Per account × grid sums over the patrols started in ``[start, end)`` inside
    ``scope``: patrols, seconds_in_grid, length_m, buildings_visited, and the account's
    name (grid codes inside ``unit`` when given)."""
    where, params = _where(scope, start, end, None, None, own_only)
    grid_cond = ""
    if unit is not None:
        grid_cond = "AND left(g.grid_code, length(:unit)) = :unit "
        params["unit"] = unit
    with connection(bind) as c:
        rows = (
            c.execute(
                text(
                    "SELECT p.account_id, a.name AS account_name, g.grid_code, "
                    "count(DISTINCT p.id) AS patrols, sum(g.seconds_in_grid) AS seconds_in_grid, "
                    "sum(g.length_m) AS length_m, sum(g.buildings_visited) AS buildings_visited "
                    "FROM patrol p JOIN account a ON a.id = p.account_id "
                    "JOIN patrol_grid g ON g.patrol_id = p.id "
                    f"WHERE {where} {grid_cond}"
                    "GROUP BY p.account_id, a.name, g.grid_code ORDER BY p.account_id, g.grid_code"
                ),
                params,
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]
