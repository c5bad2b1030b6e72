"""Health of the storage: reachable, PostGIS version, published boundary version."""

from __future__ import annotations

from sqlalchemy import Engine, text

__all__ = ["health_report"]


def health_report(engine: Engine) -> dict:
    try:
        with engine.connect() as conn:
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
            pg = conn.execute(text("SHOW server_version")).scalar_one()
            row = (
                conn.execute(
                    text(
                        "SELECT v.id, v.label, v.published_at, "
                        "(SELECT count(*) FROM unit u WHERE u.version_id = v.id "
                        " AND u.level = 'grid') AS grids "
                        "FROM boundary_version v WHERE status = 'published'"
                    )
                )
                .mappings()
                .first()
            )
    except Exception as exc:  # any driver error means unhealthy
        return {"status": "unhealthy", "database": "unreachable", "error": str(exc)[:300]}
    return {
        "status": "healthy",
        "database": "reachable",
        "postgresql": pg,
        "postgis": postgis,
        "published_version": (
            {
                "id": row["id"],
                "label": row["label"],
                "published_at": row["published_at"],
                "grids": row["grids"],
            }
            if row
            else None
        ),
    }
