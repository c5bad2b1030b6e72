"""The outline kept with a boundary version (table ``boundary_outline``, migration 0008):
one MultiPolygon in EPSG:4326 per version, the area its top level must cover."""

from __future__ import annotations

import shapely
from sqlalchemy import Connection, text

from geogrid.core.geometry import to_ewkb_hex

__all__ = ["copy_outline", "load_outline", "missing_tables", "save_outline"]


def save_outline(
    conn: Connection,
    version_id: int,
    outline: shapely.MultiPolygon,
    *,
    source: str | None = None,
    area_m2: float | None = None,
) -> None:
    """Store (or replace) the outline of a version (EPSG:4326)."""
    conn.execute(
        text(
            "INSERT INTO boundary_outline (version_id, source, area_m2, geom) "
            "VALUES (:v, :source, :area, ST_GeomFromEWKB(decode(:wkb, 'hex'))) "
            "ON CONFLICT (version_id) DO UPDATE SET source = EXCLUDED.source, "
            "area_m2 = EXCLUDED.area_m2, geom = EXCLUDED.geom"
        ),
        {"v": version_id, "source": source, "area": area_m2, "wkb": str(to_ewkb_hex([outline])[0])},
    )


def load_outline(conn: Connection, version_id: int) -> shapely.MultiPolygon | None:
    """The outline of a version, or None when it has none."""
    row = conn.execute(
        text("SELECT ST_AsBinary(geom) FROM boundary_outline WHERE version_id = :v"),
        {"v": version_id},
    ).first()
    if row is None:
        return None
    geom = shapely.from_wkb(bytes(row[0]))
    return geom if isinstance(geom, shapely.MultiPolygon) else shapely.MultiPolygon([geom])


def copy_outline(conn: Connection, from_version: int, to_version: int) -> None:
    """Keep a version's outline for the version made from it."""
    conn.execute(
        text(
            "INSERT INTO boundary_outline (version_id, source, area_m2, geom) "
            "SELECT :to, source, area_m2, geom FROM boundary_outline WHERE version_id = :frm "
            "ON CONFLICT (version_id) DO NOTHING"
        ),
        {"to": to_version, "frm": from_version},
    )


def missing_tables(conn: Connection) -> list[str]:
    """The boundary tables this code needs that the database lacks (a database never
    migrated, or migrated by an older geogrid)."""
    names = ["boundary_version", "unit", "boundary_outline"]
    rows = conn.execute(
        text(
            "SELECT name FROM unnest(CAST(:names AS text[])) AS name WHERE to_regclass(name) IS NULL"
        ),
        {"names": names},
    )
    return [str(r[0]) for r in rows]
