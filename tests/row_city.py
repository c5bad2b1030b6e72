"""The row city of tests/test_metrics.py and tests/test_rollup.py.

District ``D`` → street ``S`` → communities ``C1`` and ``C2`` → grids, 0.01° squares in a
row eastwards from (``X0``, ``Y0``) = (110.10, 22.60); categories A (limit 24 h) and B
(48 h). Each test module gives its own units' figures and its own incidents; this module
makes the unit frame and the ``incident`` rows from them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import geopandas as gpd
import pandas as pd
from shapely import Polygon, box

D, S = "450902", "450902001"
C1, C2 = S + "001", S + "002"
X0, Y0 = 110.10, 22.60
LIMIT = {"A": 24.0, "B": 48.0}
UNIT_COLUMNS = ["code", "name", "level", "parent_code", "population", "households", "area_m2"]


def square(i0: float, i1: float) -> Polygon:
    """The squares ``i0`` to ``i1`` (0.01° each) of the row, as one box."""
    return box(X0 + 0.01 * i0, Y0, X0 + 0.01 * i1, Y0 + 0.01)


def point(i: float) -> str:
    """EWKT of the centre of square ``i`` (past the row's end: outside every unit)."""
    return f"SRID=4326;POINT({X0 + 0.01 * i + 0.005} {Y0 + 0.005})"


def units(rows: list[tuple]) -> gpd.GeoDataFrame:
    """A unit frame of ``(*UNIT_COLUMNS, geometry)`` rows, EPSG:4326."""
    return gpd.GeoDataFrame(
        pd.DataFrame([r[:-1] for r in rows], columns=UNIT_COLUMNS),
        geometry=[r[-1] for r in rows],
        crs="EPSG:4326",
    )


def incident_row(
    source_id: str,
    grid: str | None,
    category: str,
    reported_at: datetime,
    status: str,
    resolved_at: datetime | None,
    closed_at: datetime | None,
    *,
    version_id: int,
    geom: str,
) -> dict:
    """One ``incident`` row: due after the category's limit, updated at its last time,
    attributed to ``grid`` and the grid's parents (their codes are its prefixes)."""
    return {
        "source_id": source_id,
        "category": category,
        "reported_at": reported_at,
        "status": status,
        "resolved_at": resolved_at,
        "closed_at": closed_at,
        "updated_at": max(x for x in (reported_at, resolved_at, closed_at) if x is not None),
        "due_at": reported_at + timedelta(hours=LIMIT[category]),
        "version_id": version_id,
        "grid_code": grid,
        "community_code": grid[:12] if grid else None,
        "street_code": grid[:9] if grid else None,
        "district_code": grid[:6] if grid else None,
        "geom": geom,
    }
