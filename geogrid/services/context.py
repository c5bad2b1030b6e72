"""The state a running service holds: one object, created by the app factory's ``lifespan``
(or by a CLI command, a bench or a test) and passed to whoever needs it.

No module keeps a process-wide cache keyed by a database URL: the caches live here, on
the context of one engine, and go away with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from geogrid.services.city import CityCache
from geogrid.services.health import HealthCache
from geogrid.services.live import LiveHub
from geogrid.services.mapservice import MapService
from geogrid.services.plans.sessions import PlanSessions
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
    #: the map service (tiles, heat map, unit metrics of the map; its own caches)
    maps: MapService
    #: unit geometries, hierarchy chains, spatial weights and attributors of this database
    unit_cache: UnitCache = field(default_factory=UnitCache)
    #: the served city's profile (configuration completed from the published boundaries)
    city_cache: CityCache = field(default_factory=CityCache)
    #: the planner's replayed coverages and impact sessions (geogrid.services.plans)
    plans: PlanSessions = field(default_factory=PlanSessions)
    #: grid counts of published versions for ``GET /health``
    health: HealthCache = field(default_factory=HealthCache)
    #: the live map's feed and change listener (issue 12), started by the app's lifespan
    live: LiveHub | None = None

    @classmethod
    def open(cls, database_url: str | None = None, settings: Settings | None = None) -> AppContext:
        """A context on ``database_url`` (default: the settings' URL or the embedded cluster)."""
        s = settings or get_settings()
        engine = get_engine(database_url or s.database_url)
        return cls(engine=engine, settings=s, maps=MapService(engine, s))

    def close(self) -> None:
        """Drop the caches (the engine's pool stays with :func:`geogrid.store.get_engine`)."""
        self.unit_cache.clear()
        self.city_cache.clear()
        self.plans.clear()
        self.health.clear()
        self.maps.close()
