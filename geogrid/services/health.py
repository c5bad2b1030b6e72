"""Health of the service: the database reachable, its PostgreSQL and PostGIS versions, the
published boundary version."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from geogrid.store import health as store_health

__all__ = ["HEALTHY", "health_report"]

#: the ``status`` of a healthy report
HEALTHY = "healthy"


def health_report(engine: Engine) -> dict[str, Any]:
    """The health of the service on ``engine``.

    Returns
    -------
    dict
        ``status`` (healthy or unhealthy), ``database`` (reachable or unreachable); when
        reachable ``postgresql`` and ``postgis`` (version text) and ``published_version``
        (``id``, ``label``, ``published_at``, ``grids``; None before any publication); when
        not, ``error`` (the driver's message, at most 300 characters).
    """
    return store_health.health_report(engine)
