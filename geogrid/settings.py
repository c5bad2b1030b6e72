"""Settings read once from the environment (prefix ``GEOGRID_``).

``GEOGRID_DATABASE_URL``  SQLAlchemy URL of a PostGIS database. Unset: the embedded
                          cluster (see :mod:`geogrid.store.cluster`).
``GEOGRID_HOME``          folder for the embedded cluster and caches (default ``./var``).
``GEOGRID_PG_PORT``       port of the embedded cluster (default 55432).
``GEOGRID_REDIS_URL``     Redis for the shared tile cache (optional; memory cache otherwise).
``GEOGRID_CATEGORIES``    CSV overriding the incident category catalogue.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Settings", "get_settings"]


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    home: Path = field(default_factory=lambda: Path("var").resolve())
    pg_port: int = 55432
    redis_url: str | None = None
    tile_cache_size: int = 20_000

    @property
    def pg_data(self) -> Path:
        return self.home / "pg"

    @property
    def embedded(self) -> bool:
        return not self.database_url


def get_settings() -> Settings:
    """Read the ``GEOGRID_*`` environment variables."""
    env = os.environ
    return Settings(
        database_url=env.get("GEOGRID_DATABASE_URL") or None,
        home=Path(env.get("GEOGRID_HOME", "var")).resolve(),
        pg_port=int(env.get("GEOGRID_PG_PORT", "55432")),
        redis_url=env.get("GEOGRID_REDIS_URL") or None,
        tile_cache_size=int(env.get("GEOGRID_TILE_CACHE_SIZE", "20000")),
    )
