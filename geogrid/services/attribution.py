"""Attributors of stored boundary versions: read a version's layers and build a
:class:`~geogrid.core.attribution.Attributor`, cached in a
:class:`~geogrid.services.unitcache.UnitCache` when one is given."""

from __future__ import annotations

from sqlalchemy import Connection, Engine

from geogrid.core.attribution import ATTRIBUTION_LEVELS, Attributor
from geogrid.services.unitcache import UnitCache
from geogrid.store import metrics as sm
from geogrid.store.engine import connection as _connect
from geogrid.store.units import load_units, resolve_version

__all__ = ["attributor_for_version"]


def attributor_for_version(
    engine: Engine | Connection, version: int | None = None, *, cache: UnitCache | None = None
) -> Attributor:
    """The attributor of a stored boundary version.

    Parameters
    ----------
    engine : Engine or Connection
    version : int, optional
        Boundary version id (default: the published one).
    cache : UnitCache, optional
        Where attributors are kept (e.g. ``AppContext.unit_cache``); refreshed when the
        version's grids change. Without one, the attributor is built afresh.

    Raises
    ------
    NotFound
        The version does not exist, or none is published.
    """
    with _connect(engine) as conn:
        vid = resolve_version(conn, version)

        def build() -> Attributor:
            layers = {lv: load_units(conn, lv, version=vid) for lv in ATTRIBUTION_LEVELS}
            return Attributor.from_layers(layers, vid)

        if cache is None:
            return build()
        fp = tuple(sm.unit_fingerprint(conn, vid, lv) for lv in ATTRIBUTION_LEVELS)
        return cache.get(str(conn.engine.url), ("attributor", vid), fp, build)
