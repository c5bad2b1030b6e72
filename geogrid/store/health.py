"""Health of the storage: reachable, PostgreSQL/PostGIS versions, published boundary
version — in one round trip."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, text

__all__ = ["probe", "grid_count"]

_PROBE = text(
    "SELECT postgis_lib_version() AS postgis, current_setting('server_version') AS pg, "
    "v.id, v.label, v.published_at "
    "FROM (SELECT 1) AS one "
    "LEFT JOIN boundary_version v ON v.status = 'published'"
)


def probe(engine: Engine) -> dict[str, Any]:
    """One statement: the server's PostgreSQL and PostGIS versions and the published
    boundary version (``id``/``label``/``published_at`` None before any publication).

    Raises the driver's error when the database does not answer."""
    with engine.connect() as conn:
        row = conn.execute(_PROBE).mappings().first()
    return dict(row) if row is not None else {}


def grid_count(conn: Connection | Engine, version_id: int) -> int:
    """The number of grids of a boundary version."""
    sql = text("SELECT count(*) FROM unit WHERE version_id = :v AND level = 'grid'")
    if isinstance(conn, Engine):
        with conn.connect() as c:
            return int(c.execute(sql, {"v": version_id}).scalar_one())
    return int(conn.execute(sql, {"v": version_id}).scalar_one())
