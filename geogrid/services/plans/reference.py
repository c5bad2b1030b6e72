"""Reference line layers (roads, rivers, building-block edges) that auto-partition cuts
along: import a line file, read the lines near some communities.

The lines are stored in ``reference_line`` (EPSG:4326), one named layer per import (a new
import of a layer replaces it). Reading and cutting are pure
(:mod:`geogrid.core.plans.reference`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from sqlalchemy import Connection

from geogrid.core.plans.reference import read_reference_file
from geogrid.errors import InvalidInput
from geogrid.store import plans as store

if TYPE_CHECKING:  # a type-only import, no cycle
    from geogrid.services.context import AppContext

__all__ = ["REFERENCE_KINDS", "import_reference", "reference_lines_near"]

#: what a reference layer may be
REFERENCE_KINDS = ("road", "river", "block", "other")


def import_reference(
    ctx: AppContext,
    path: str | Path,
    *,
    layer: str | None = None,
    kind: str = "road",
    crs: str | None = None,
    file_layer: str | None = None,
    name_field: str | None = None,
) -> dict[str, Any]:
    """Import a line file as reference layer ``layer`` (default: the file's stem),
    replacing an earlier import of that layer.

    Returns ``layer``, ``kind``, ``lines`` (how many) and ``bounds`` (WGS84).

    Raises
    ------
    FileInputError  missing or unreadable file, no CRS, no line
    InvalidInput  an unknown ``kind``
    """
    if kind not in REFERENCE_KINDS:
        raise InvalidInput("kind", kind, ", ".join(REFERENCE_KINDS))
    name = (layer or Path(path).stem).strip()
    if not name:
        raise InvalidInput("layer", layer, "a layer name")
    gdf = read_reference_file(path, crs=crs, layer=file_layer, name_field=name_field)
    rows = gdf.assign(wkb=shapely.to_wkb(np.asarray(gdf.geometry.array), hex=True))
    with ctx.engine.begin() as conn:
        n = store.insert_reference_lines(conn, name, kind, str(path), rows[["name", "wkb"]])
    return {
        "layer": name,
        "kind": kind,
        "lines": int(n),
        "bounds": [float(v) for v in gdf.total_bounds],
    }


def reference_lines_near(conn: Connection, bounds: tuple[float, float, float, float]) -> np.ndarray:
    """Every stored reference line meeting ``bounds`` (WGS84), as an array of geometries."""
    rows = store.reference_lines(conn, bounds)
    return np.asarray([shapely.from_wkb(r[2]) for r in rows], dtype=object)
