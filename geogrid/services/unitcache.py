"""An explicit cache of values derived from a boundary version's units.

Unit geometries, the grid → community → street → district chain, spatial weights and
attributors are costly to build (0.2–0.5 s per version on the 8,798-grid demo city) and change only
when a version's units do. A :class:`UnitCache` keeps them for one database: the service's
:class:`~geogrid.services.context.AppContext` holds one (``ctx.unit_cache``), a bench or a
notebook makes its own, and a call without one builds everything afresh. No module keeps a
process-wide cache.

Each entry is stored under a key (e.g. ``("units", version_id, level)``) with the
*fingerprint* of the units it was built from (``(count, max id)`` of the version's units
at a level: it changes when a draft is edited); a lookup with another fingerprint rebuilds
the entry.

>>> cache = UnitCache()
>>> cache.get("db", ("answer",), (1, 1), lambda: 42)
42
>>> cache.get("db", ("answer",), (1, 1), lambda: 0)  # cached
42
>>> cache.get("db", ("answer",), (2, 7), lambda: 43)  # the units changed
43
>>> len(cache), cache.clear(), len(cache)
(1, None, 0)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

__all__ = ["UnitCache"]

T = TypeVar("T")


class UnitCache:
    """Values derived from boundary units, for one database, refreshed by fingerprint.

    Thread-safe; two threads may build the same entry at once (the last one is kept).
    Used with another database than the one it was first used with, it starts afresh.
    """

    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[Hashable, Any]] = {}
        self._database: str | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def get(self, database: str, key: Hashable, fingerprint: Hashable, build: Callable[[], T]) -> T:
        """The value of ``key`` built from units with ``fingerprint`` (``build()`` when
        absent or built from other units).

        Parameters
        ----------
        database : str
            Identity of the database (e.g. its URL): entries of another database are
            dropped.
        key : hashable
            What the value is, e.g. ``("units", version_id, level)``.
        fingerprint : hashable
            The units' fingerprint (:func:`geogrid.store.metrics.unit_fingerprint`).
        build : callable
            Computes the value.
        """
        with self._lock:
            if self._database != database:
                self._entries.clear()
                self._database = database
            hit = self._entries.get(key)
            if hit is not None and hit[0] == fingerprint:
                return cast(T, hit[1])
        value = build()
        with self._lock:
            if self._database == database:
                self._entries[key] = (fingerprint, value)
        return value
