"""Boundary versions and units in PostGIS (MapIt-style generations).

All geometry is EPSG:4326. A version is ``draft``, ``published`` (exactly one) or
``retired``; publishing is one transaction, so readers see the old or the new version,
never a mix.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import datetime

import geopandas as gpd
import pandas as pd
from sqlalchemy import Connection, Engine, select, text

from geogrid.core.geometry import as_multipolygons, to_ewkb_hex
from geogrid.core.hierarchy import CODE_LENGTH, LEVELS, check_level
from geogrid.errors import InvalidInput, NotFound
from geogrid.store.engine import connection
from geogrid.store.tables import boundary_version

__all__ = [
    "UNIT_COLUMNS",
    "create_version",
    "insert_units",
    "publish_version",
    "published_version_id",
    "resolve_version",
    "load_units",
    "list_versions",
    "copy_units",
    "lookup_point",
    "version_extent",
    "level_names",
    "search_units",
    "label_points",
    "count_units",
    "analyze_units",
]

UNIT_COLUMNS = ["code", "name", "level", "parent_code", "population", "households", "area_m2"]


def create_version(
    conn: Connection,
    label: str,
    *,
    source: str | None = None,
    author: str | None = None,
    based_on: int | None = None,
    note: str | None = None,
) -> int:
    """Insert a draft boundary version and return its id."""
    res = conn.execute(
        boundary_version.insert()
        .values(
            label=label, source=source, author=author, based_on=based_on, note=note, status="draft"
        )
        .returning(boundary_version.c.id)
    )
    return int(res.scalar_one())


def insert_units(conn: Connection, version_id: int, units: gpd.GeoDataFrame) -> int:
    """COPY units (unit columns + geometry in EPSG:4326) into a version. Returns rows."""
    if len(units) == 0:
        return 0
    if units.crs is not None and units.crs.to_epsg() != 4326:
        raise InvalidInput("units.crs", units.crs, "EPSG:4326")
    df = pd.DataFrame(
        {
            "version_id": version_id,
            "code": units["code"].astype(str),
            "name": units["name"].astype(str),
            "level": units["level"].astype(str),
            "parent_code": units["parent_code"].where(units["parent_code"].notna(), None),
            "population": pd.to_numeric(units["population"]).fillna(0).astype("int64"),
            "households": pd.to_numeric(units["households"]).fillna(0).astype("int64"),
            "area_m2": pd.to_numeric(units["area_m2"]).astype(float),
            "geom": to_ewkb_hex(as_multipolygons(units.geometry.values)),
        }
    )
    cols = list(df.columns)
    buf = io.StringIO()
    df.to_csv(buf, sep="\t", header=False, index=False, na_rep="\\N")
    raw = conn.connection.driver_connection
    if raw is None:  # pragma: no cover - a pooled psycopg connection always has one
        raise RuntimeError("COPY needs a psycopg connection")
    with raw.cursor() as cur:
        with cur.copy(f"COPY unit ({', '.join(cols)}) FROM STDIN") as cp:
            cp.write(buf.getvalue())
    return len(df)


def copy_units(
    conn: Connection,
    from_version: int,
    to_version: int,
    *,
    exclude_levels: Iterable[str] = (),
    exclude_codes: Iterable[str] = (),
) -> int:
    """Copy units of one version into another, leaving out some levels or codes."""
    res = conn.execute(
        text(
            "INSERT INTO unit (version_id, code, name, level, parent_code, population, "
            "households, area_m2, attrs, geom) "
            "SELECT :to, code, name, level, parent_code, population, households, area_m2, "
            "attrs, geom FROM unit WHERE version_id = :frm "
            "AND NOT (level = ANY(:levels)) AND NOT (code = ANY(:codes))"
        ),
        {
            "to": to_version,
            "frm": from_version,
            "levels": list(exclude_levels),
            "codes": list(exclude_codes),
        },
    )
    return res.rowcount


def count_units(conn: Connection) -> int:
    """How many unit rows are stored (every version)."""
    return int(conn.execute(text("SELECT count(*) FROM unit")).scalar_one())


def analyze_units(conn: Connection) -> None:
    """Refresh the planner statistics of ``unit`` (after a bulk write)."""
    conn.execute(text("ANALYZE unit"))


def publish_version(conn: Connection, version_id: int) -> None:
    """Make ``version_id`` the published version and retire the previous one (same
    transaction as the caller's)."""
    conn.execute(text("LOCK TABLE boundary_version IN SHARE ROW EXCLUSIVE MODE"))
    conn.execute(
        boundary_version.update()
        .where(boundary_version.c.status == "published")
        .values(status="retired", retired_at=text("clock_timestamp()"))
    )
    conn.execute(
        boundary_version.update()
        .where(boundary_version.c.id == version_id)
        .values(status="published", published_at=text("clock_timestamp()"), retired_at=None)
    )


def published_version_id(conn: Connection) -> int | None:
    """Id of the published version, or None when nothing is published yet."""
    return conn.execute(
        select(boundary_version.c.id).where(boundary_version.c.status == "published")
    ).scalar_one_or_none()


def resolve_version(
    conn: Connection, version: int | None = None, as_of: datetime | None = None
) -> int:
    """The version to read: an explicit id, the one published at ``as_of``, or the
    published one. Raises NotFound when there is none."""
    if version is not None:
        found = conn.execute(
            select(boundary_version.c.id).where(boundary_version.c.id == int(version))
        ).scalar_one_or_none()
        if found is None:
            raise NotFound(f"boundary version {version} does not exist")
        return int(found)
    if as_of is not None:
        found = conn.execute(
            text(
                "SELECT id FROM boundary_version WHERE published_at <= :d "
                "AND (retired_at IS NULL OR retired_at > :d) ORDER BY published_at DESC LIMIT 1"
            ),
            {"d": as_of},
        ).scalar_one_or_none()
        if found is None:
            raise NotFound(f"no boundary version was published at {as_of.isoformat()}")
        return int(found)
    found = published_version_id(conn)
    if found is None:
        raise NotFound(
            "no boundary version is published yet: import boundaries or run 'geogrid demo load'"
        )
    return int(found)


def load_units(
    engine: Engine | Connection,
    level: str | None = None,
    *,
    version: int | None = None,
    as_of: datetime | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    codes: Iterable[str] | None = None,
    parent_codes: Iterable[str] | None = None,
) -> gpd.GeoDataFrame:
    """Units of a version as a GeoDataFrame (EPSG:4326) with the unit columns, ordered by
    code. ``bbox`` is (min lon, min lat, max lon, max lat) in EPSG:4326."""
    if level is not None and level not in LEVELS:
        raise InvalidInput("level", level, ", ".join(LEVELS))
    with connection(engine) as conn:
        vid = resolve_version(conn, version, as_of)
        cond = ["version_id = :v"]
        params: dict = {"v": vid}
        if level:
            cond.append("level = :level")
            params["level"] = level
        if bbox is not None:
            cond.append("geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)")
            params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
        if codes is not None:
            cond.append("code = ANY(:codes)")
            params["codes"] = list(codes)
        if parent_codes is not None:
            cond.append("parent_code = ANY(:pcodes)")
            params["pcodes"] = list(parent_codes)
        sql = (
            "SELECT code, name, level, parent_code, population, households, area_m2, "
            f"ST_AsBinary(geom) AS geom FROM unit WHERE {' AND '.join(cond)} ORDER BY code"
        )
        rows = conn.execute(text(sql), params).fetchall()
    df = pd.DataFrame(rows, columns=[*UNIT_COLUMNS, "geom"])
    geoms = gpd.GeoSeries.from_wkb([bytes(g) for g in df.pop("geom")], crs="EPSG:4326")
    gdf = gpd.GeoDataFrame(df, geometry=geoms.values, crs="EPSG:4326")
    gdf.attrs["version_id"] = vid
    return gdf


def version_extent(
    engine: Engine | Connection, version_id: int
) -> tuple[float, float, float, float] | None:
    """Bounding box (min lon, min lat, max lon, max lat; EPSG:4326) of a version's units,
    or None when it has none."""
    with connection(engine) as conn:
        row = conn.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                "(SELECT ST_Extent(geom) AS e FROM unit WHERE version_id = :v) AS x"
            ),
            {"v": version_id},
        ).one()
    if row[0] is None:
        return None
    return (float(row[0]), float(row[1]), float(row[2]), float(row[3]))


def level_names(engine: Engine | Connection, version_id: int, level: str) -> list[tuple[str, str]]:
    """``(code, name)`` of a version's units at one level, ordered by code."""
    check_level(level)
    with connection(engine) as conn:
        rows = conn.execute(
            text("SELECT code, name FROM unit WHERE version_id = :v AND level = :l ORDER BY code"),
            {"v": version_id, "l": level},
        ).all()
    return [(str(c), str(n)) for c, n in rows]


def list_versions(engine: Engine | Connection) -> pd.DataFrame:
    """Every boundary version with its unit count, oldest first."""
    with connection(engine) as conn:
        rows = (
            conn.execute(
                text(
                    "SELECT v.id, v.label, v.status, v.based_on, v.source, v.author, v.created_at,"
                    " v.published_at, v.retired_at, count(u.id) AS units "
                    "FROM boundary_version v LEFT JOIN unit u ON u.version_id = v.id "
                    "GROUP BY v.id ORDER BY v.id"
                )
            )
            .mappings()
            .all()
        )
    return pd.DataFrame(rows)


def lookup_point(
    engine: Engine | Connection,
    lon: float,
    lat: float,
    *,
    version: int | None = None,
    as_of: datetime | None = None,
) -> tuple[int, list[dict]]:
    """Units of every level covering a WGS84 point (ST_Covers), top level first."""
    with connection(engine) as conn:
        vid = resolve_version(conn, version, as_of)
        rows = (
            conn.execute(
                text(
                    "SELECT code, name, level, parent_code, population, households, area_m2 "
                    "FROM unit WHERE version_id = :v "
                    "AND ST_Covers(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) "
                    "ORDER BY array_position(ARRAY['district','street','community','grid'], level),"
                    " code"
                ),
                {"v": vid, "lon": lon, "lat": lat},
            )
            .mappings()
            .all()
        )
    # a point on a shared edge is covered by two units of a level: keep the first by code,
    # the same rule as GridLocator (lowest position in code order)
    seen: dict[str, dict] = {}
    for r in rows:
        seen.setdefault(r["level"], dict(r))
    return vid, [seen[lv] for lv in LEVELS if lv in seen]


def search_units(conn_or_engine: Engine | Connection, query: str, limit: int) -> list[dict]:
    """Units of the published version whose name contains ``query`` (case-insensitive) or
    whose code starts with it, top levels and exact matches first, then by code.

    Each row: ``code``, ``name``, ``level``, ``parent_names`` and ``parent_codes`` (its
    ancestors, top down) and ``bbox`` (min lon, min lat, max lon, max lat; EPSG:4326)."""
    pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    prefix = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    # the codes of the ancestors are the heads of the unit's code (core.hierarchy)
    heads = ", ".join(f"left(u.code, {int(n)})" for n in CODE_LENGTH.values())
    sql = text(
        "SELECT u.code, u.name, u.level, "
        "ARRAY(SELECT a.name FROM unit a WHERE a.version_id = u.version_id "
        f"  AND a.code = ANY(ARRAY[{heads}]) AND a.code <> u.code ORDER BY length(a.code)) "
        "  AS parent_names, "
        "ARRAY(SELECT a.code FROM unit a WHERE a.version_id = u.version_id "
        f"  AND a.code = ANY(ARRAY[{heads}]) AND a.code <> u.code ORDER BY length(a.code)) "
        "  AS parent_codes, "
        "ST_XMin(u.geom), ST_YMin(u.geom), ST_XMax(u.geom), ST_YMax(u.geom) "
        "FROM unit u JOIN boundary_version v ON v.id = u.version_id AND v.status = 'published' "
        "WHERE u.name ILIKE :pattern OR u.code LIKE :prefix "
        "ORDER BY (u.name = :q OR u.code = :q) DESC, length(u.code), u.code LIMIT :limit"
    )
    with connection(conn_or_engine) as conn:
        rows = conn.execute(
            sql, {"pattern": pattern, "prefix": prefix, "q": query, "limit": limit}
        ).all()
    return [
        {
            "code": str(r[0]),
            "name": str(r[1]),
            "level": str(r[2]),
            "parent_names": [str(n) for n in r[3]],
            "parent_codes": [str(c) for c in r[4]],
            "bbox": (float(r[5]), float(r[6]), float(r[7]), float(r[8])),
        }
        for r in rows
    ]


def label_points(
    conn_or_engine: Engine | Connection, level: str, parent: str | None = None
) -> list[tuple[str, str, float, float]]:
    """``(code, name, lon, lat)`` of the published units of ``level`` (the children of
    ``parent`` when given): the centre of each unit's largest inscribed circle (EPSG:4326),
    where a label reads best, ordered by code."""
    check_level(level)
    cond = "AND u.parent_code = :parent" if parent else ""
    sql = text(
        "SELECT u.code, u.name, ST_X(c.center), ST_Y(c.center) FROM unit u "
        "JOIN boundary_version v ON v.id = u.version_id AND v.status = 'published' "
        "CROSS JOIN LATERAL ST_MaximumInscribedCircle(u.geom) AS c "
        f"WHERE u.level = :level {cond} ORDER BY u.code"
    )
    with connection(conn_or_engine) as conn:
        rows = conn.execute(sql, {"level": level, "parent": parent}).all()
    return [(str(r[0]), str(r[1]), float(r[2]), float(r[3])) for r in rows]
