"""geogrid: grid-management (网格化管理) boundaries, incidents, metrics, hot spots and maps.

The public entry points for analysts::

    import geogrid
    geogrid.locate(110.18, 22.65)                 # units at every level (WGS84 lon/lat)
    loc = geogrid.GridLocator(grids)              # vectorised exact point → grid
    geogrid.metrics.load_metrics(engine, "grid")  # per-unit load metrics (GeoDataFrame)

Submodules are imported lazily so that ``import geogrid`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "GridLocator",
    "locate",
    "crs",
    "metrics",
    "heatmap",
    "hotspots",
    "maps",
    "validation",
    "boundaries",
    "ingest",
    "register",
    "plans",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover
    from geogrid.locator import GridLocator
    from geogrid.lookup import locate

_ATTRS = {"GridLocator": ("geogrid.locator", "GridLocator"), "locate": ("geogrid.lookup", "locate")}


def __getattr__(name: str) -> Any:
    if name in _ATTRS:
        mod, attr = _ATTRS[name]
        return getattr(importlib.import_module(mod), attr)
    if name in __all__:
        return importlib.import_module(f"geogrid.{name}")
    raise AttributeError(f"module 'geogrid' has no attribute {name!r}")
