"""geogrid: grid-management (网格化管理) boundaries, incidents, metrics, hot spots and maps.

The public entry points for analysts::

    import geogrid
    geogrid.locate(110.18, 22.65)                 # units at every level (WGS84 lon/lat)
    loc = geogrid.GridLocator(grids)              # vectorised exact point → grid
    geogrid.load_metrics(engine, "grid")          # per-unit load metrics (GeoDataFrame)

The packages: :mod:`geogrid.core` (pure functions and classes), :mod:`geogrid.store`
(SQL only), :mod:`geogrid.services` (workflows), :mod:`geogrid.cli` (the command).
Names are imported lazily so that ``import geogrid`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name → (module, attribute); the analysts' entry points.
_ATTRS = {
    "GridLocator": ("geogrid.core.locator", "GridLocator"),
    "GiStar": ("geogrid.core.hotspots", "GiStar"),
    "locate": ("geogrid.services.lookup", "locate"),
    "load_metrics": ("geogrid.services.metrics", "load_metrics"),
}
#: sub-packages and modules reachable as attributes.
_MODULES = {"core", "services", "store"}

__all__ = [
    "__version__",
    "GiStar",
    "GridLocator",
    "load_metrics",
    "locate",
    "core",
    "services",
    "store",
]

if TYPE_CHECKING:  # pragma: no cover
    from geogrid.core.hotspots import GiStar
    from geogrid.core.locator import GridLocator
    from geogrid.services.lookup import locate
    from geogrid.services.metrics import load_metrics


def __getattr__(name: str) -> Any:
    if name in _ATTRS:
        mod, attr = _ATTRS[name]
        return getattr(importlib.import_module(mod), attr)
    if name in _MODULES:
        return importlib.import_module(f"geogrid.{name}")
    raise AttributeError(f"module 'geogrid' has no attribute {name!r}")
