"""The state a running service holds: one object, created by the app factory's ``lifespan``
(or by a CLI command, a bench or a test) and passed to whoever needs it.

No module keeps a process-wide cache keyed by a database URL: the caches live here, on
the context of one engine, and go away with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from geogrid.services.unitcache import UnitCache
from geogrid.settings import Settings, get_settings
from geogrid.store import get_engine

__all__ = ["AppContext"]


@dataclass
class AppContext:
    """One service's engine, settings and caches.

    Build it with :meth:`open`; release it with :meth:`close`.
    """

    engine: Engine
    settings: Settings
    #: unit geometries, hierarchy chains, spatial weights and attributors of this database
    unit_cache: UnitCache = field(default_factory=UnitCache)

    @classmethod
    def open(cls, database_url: str | None = None, settings: Settings | None = None) -> AppContext:
        """A context on ``database_url`` (default: the settings' URL or the embedded cluster)."""
        s = settings or get_settings()
        return cls(engine=get_engine(database_url or s.database_url), settings=s)

    def close(self) -> None:
        """Drop the caches (the engine's pool stays with :func:`geogrid.store.get_engine`)."""
        self.unit_cache.clear()
