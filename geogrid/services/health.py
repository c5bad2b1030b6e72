"""Health of the service: the database reachable, its PostgreSQL and PostGIS versions, the
published boundary version.

``GET /health`` is what load balancers and monitors call every few seconds, so it costs
one round trip: the versions and the published version come from one statement, and the
published version's grid count — fixed once a version is published — is counted once per
version and kept in a :class:`HealthCache` (on the service's ``AppContext``). The cache
also keeps the last healthy report for :data:`REPORT_TTL` seconds (:meth:`HealthCache.recent`): a
monitor polling many times a second costs one probe a second per process, and the API
answers a fresh report on its event loop without a thread (issue 12: ``/health`` was
~13 ms, mostly the thread hop and the route's machinery around one round trip).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import Engine

from geogrid.store import health as store

__all__ = ["HEALTHY", "REPORT_TTL", "HealthCache", "health_report"]

#: the ``status`` of a healthy report
HEALTHY = "healthy"
#: seconds a report is answered again without probing the database
REPORT_TTL = 1.0


class HealthCache:
    """Grid counts of published boundary versions (a published version never changes)."""

    def __init__(self, ttl: float = REPORT_TTL) -> None:
        self._grids: dict[int, int] = {}
        self._lock = threading.Lock()
        self.ttl = ttl
        self._last: tuple[float, dict[str, Any]] | None = None

    def recent(self) -> dict[str, Any] | None:
        """The last report if it is younger than ``ttl`` seconds, else None (no query)."""
        last = self._last
        if last is None or time.monotonic() - last[0] >= self.ttl:
            return None
        return dict(last[1])

    def remember(self, report: dict[str, Any]) -> None:
        """Keep ``report`` as the last one."""
        self._last = (time.monotonic(), dict(report))

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
        """Forget every count and the last report."""
        with self._lock:
            self._grids.clear()
            self._last = None


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
    report = _probe(engine, cache)
    if report["status"] == HEALTHY:  # a failure is probed again at the next call
        cache.remember(report)
    return report


def _probe(engine: Engine, cache: HealthCache) -> dict[str, Any]:
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
