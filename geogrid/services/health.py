"""Health of the service: the database reachable, its PostgreSQL and PostGIS versions, the
published boundary version.

``GET /health`` is what load balancers and monitors call every few seconds, so it costs
one round trip: the versions and the published version come from one statement, and the
published version's grid count — fixed once a version is published — is counted once per
version and kept in a :class:`HealthCache` (on the service's ``AppContext``).
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine

from geogrid.store import health as store

__all__ = ["HEALTHY", "HealthCache", "health_report"]

#: the ``status`` of a healthy report
HEALTHY = "healthy"


class HealthCache:
    """Grid counts of published boundary versions (a published version never changes)."""

    def __init__(self) -> None:
        self._grids: dict[int, int] = {}
        self._lock = threading.Lock()

    def grids(self, engine: Engine, version_id: int) -> int:
        """The grid count of ``version_id``, counted at the first call."""
        with self._lock:
            n = self._grids.get(version_id)
        if n is None:
            n = store.grid_count(engine, version_id)
            with self._lock:
                self._grids[version_id] = n
        return n

    def clear(self) -> None:
        """Forget every count."""
        with self._lock:
            self._grids.clear()


def health_report(engine: Engine, cache: HealthCache | None = None) -> dict[str, Any]:
    """The health of the service on ``engine``.

    Returns
    -------
    dict
        ``status`` (healthy or unhealthy), ``database`` (reachable or unreachable); when
        reachable ``postgresql`` and ``postgis`` (version text) and ``published_version``
        (``id``, ``label``, ``published_at``, ``grids``; None before any publication); when
        not, ``error`` (the driver's message, at most 300 characters).
    """
    cache = cache or HealthCache()
    try:
        row = store.probe(engine)
        vid = row.get("id")
        grids = cache.grids(engine, int(vid)) if vid is not None else None
    except Exception as exc:  # any driver error means unhealthy
        return {"status": "unhealthy", "database": "unreachable", "error": str(exc)[:300]}
    return {
        "status": HEALTHY,
        "database": "reachable",
        "postgresql": row.get("pg"),
        "postgis": row.get("postgis"),
        "published_version": (
            {
                "id": vid,
                "label": row["label"],
                "published_at": row["published_at"],
                "grids": grids,
            }
            if vid is not None
            else None
        ),
    }
