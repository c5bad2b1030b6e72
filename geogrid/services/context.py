"""The state a running service holds: one object, created by the app factory's ``lifespan``
(or by a CLI command, a bench or a test) and passed to whoever needs it.

No module keeps a process-wide cache keyed by a database URL: the caches live here, on
the context of one engine, and go away with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from geogrid.services.accounts import TokenCache
from geogrid.services.city import CityCache
from geogrid.services.health import HealthCache
from geogrid.services.live import LiveHub
from geogrid.services.mapservice import MapService
from geogrid.services.plans.sessions import PlanSessions
from geogrid.services.replica import ReadRouter
from geogrid.services.unitcache import UnitCache
from geogrid.settings import Settings, get_settings
from geogrid.store import get_engine
from geogrid.store.replica import replica_engine

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
    #: issue 10 (REPORTS): accounts of tokens seen in the last seconds (no query per request)
    tokens: TokenCache = field(default_factory=TokenCache)
    #: issue 12: the engine of read-only work (the replica of ``database_replica_url`` when
    #: it is up, caught up and not lagging; else ``engine``), see geogrid.services.replica
    reads: ReadRouter | None = None

    def __post_init__(self) -> None:
        if self.reads is None:
            self.reads = ReadRouter(self.engine, None)

    @property
    def replica(self) -> Engine | None:
        """The replica's engine, or None when no replica is configured."""
        return self.reads.replica if self.reads is not None else None

    def read_engine(self, caller: str | None = None) -> Engine:
        """The engine of a read-only piece of work by ``caller`` (see
        :meth:`ReadRouter.engine_for`)."""
        assert self.reads is not None
        return self.reads.engine_for(caller)

    @classmethod
    def open(cls, database_url: str | None = None, settings: Settings | None = None) -> AppContext:
        """A context on ``database_url`` (default: the settings' URL or the embedded cluster)."""
        s = settings or get_settings()
        engine = get_engine(database_url or s.database_url)
        replica = replica_engine(s.database_replica_url) if s.database_replica_url else None
        reads = ReadRouter(
            engine, replica, max_lag_s=s.replica_max_lag_s, check_interval=s.replica_check_s
        )
        return cls(engine=engine, settings=s, maps=MapService(engine, s, reads=reads), reads=reads)

    def close(self) -> None:
        """Drop the caches (the engine's pool stays with :func:`geogrid.store.get_engine`)."""
        self.unit_cache.clear()
        self.city_cache.clear()
        self.plans.clear()
        self.health.clear()
        self.maps.close()
