"""Tiny canonical geometries in real Yulin coordinates, for tests.

Shapes are drawn in metres on the CGCS2000 / 3-degree Gauss-Kruger CM 111E plane
(EPSG:4546), as offsets from an origin in central Yulin (110.15E, 22.63N), and converted
vertex by vertex to EPSG:4326 with pyproj. Their areas in m² are therefore known exactly
(the area of the shape in metres), independently of the code under test, and squares
that share an edge in metres share their vertices exactly in lon/lat.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

ORIGIN_LONLAT = (110.15, 22.63)
"""Origin of the metre offsets: central Yulin, WGS84 lon/lat degrees."""

METRIC_CRS = "EPSG:4546"

_TO_M = pyproj.Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
_TO_LL = pyproj.Transformer.from_crs(METRIC_CRS, "EPSG:4326", always_xy=True)
X0, Y0 = _TO_M.transform(*ORIGIN_LONLAT)


def lonlat(geom: BaseGeometry) -> BaseGeometry:
    """A shape drawn in metre offsets from the origin → EPSG:4326 lon/lat."""

    def _fn(xy: np.ndarray) -> np.ndarray:
        lon, lat = _TO_LL.transform(xy[:, 0] + X0, xy[:, 1] + Y0)
        return np.column_stack([lon, lat])

    return shapely.transform(geom, _fn)


def metres(geom: BaseGeometry) -> BaseGeometry:
    """An EPSG:4326 shape → metre offsets from the origin (the inverse of :func:`lonlat`)."""

    def _fn(xy: np.ndarray) -> np.ndarray:
        x, y = _TO_M.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x - X0, y - Y0])

    return shapely.transform(geom, _fn)


def point_lonlat(x: float, y: float) -> tuple[float, float]:
    """A metre offset from the origin → (lon, lat) degrees."""
    return _TO_LL.transform(x + X0, y + Y0)


def square(x: float, y: float, size: float) -> shapely.Polygon:
    """Axis-aligned square in metre offsets, lower-left corner (x, y), side ``size`` m."""
    return shapely.box(x, y, x + size, y + size)


def bowtie(x: float, y: float, w: float, h: float) -> shapely.Polygon:
    """Invalid self-intersecting 'bow-tie' (two triangles meeting at the centre), metres.

    Its ring crosses itself at (x + w/2, y + h/2); the two triangles have area w*h/4 each.
    """
    return shapely.Polygon([(x, y), (x + w, y + h), (x + w, y), (x, y + h), (x, y)])


def layer(level: str, rows: list[tuple[str, str | None, BaseGeometry | None]]) -> gpd.GeoDataFrame:
    """A unit GeoDataFrame (DESIGN.md columns) from (code, parent_code, shape in metres)."""
    geoms = [None if g is None else lonlat(g) for _, _, g in rows]
    return gpd.GeoDataFrame(
        {
            "code": [r[0] for r in rows],
            "name": [f"{level} {r[0]}" for r in rows],
            "level": level,
            "parent_code": [r[1] for r in rows],
            "population": 0,
            "households": 0,
            "area_m2": [0.0 if g is None else float(g.area) for _, _, g in rows],
        },
        geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"),
        crs="EPSG:4326",
    )


# A clean four-level hierarchy: district 450902 ⊃ street 450902001 ⊃ community
# 450902001001 (400 m square) ⊃ four 200 m grids.
DISTRICT = "450902"
STREET = "450902001"
COMMUNITY = "450902001001"
GRIDS = tuple(f"{COMMUNITY}{i:03d}" for i in range(1, 5))
COMMUNITY_SQUARE = square(0, 0, 400)
GRID_SQUARES = (square(0, 0, 200), square(200, 0, 200), square(0, 200, 200), square(200, 200, 200))


def clean_hierarchy() -> dict[str, gpd.GeoDataFrame]:
    """District, street, community (one 400 m square each) and a 2×2 grid partition."""
    return {
        "district": layer("district", [(DISTRICT, None, COMMUNITY_SQUARE)]),
        "street": layer("street", [(STREET, DISTRICT, COMMUNITY_SQUARE)]),
        "community": layer("community", [(COMMUNITY, STREET, COMMUNITY_SQUARE)]),
        "grid": layer(
            "grid", [(c, COMMUNITY, g) for c, g in zip(GRIDS, GRID_SQUARES, strict=True)]
        ),
    }


# Two neighbouring grids of a generated Yulin hierarchy (EPSG:4326, 1e-7 degree grid). The
# first has a zero-width spike 1.4 km long lying along the edge it shares with the second
# (vertices ... P, Q, R ... with R almost exactly on the line QP). Valid in lon/lat, but
# self-intersecting once projected to EPSG:4546: the projection bends the straight lon/lat
# edges, and the spike's two sides cross.
SPIKE_GRID_WKT = (
    "MULTIPOLYGON (((110.5735421 22.8188996, 110.5859186 22.8277589, 110.5980712 22.8316576, "
    "110.5981889 22.8316743, 110.6019623 22.8302382, 110.6032889 22.8055412, "
    "110.6144602 22.8135301, 110.5936507 22.7986485, 110.5934542 22.798508, "
    "110.5766374 22.80402, 110.5731131 22.8051752, 110.5698918 22.806231, "
    "110.5735421 22.8188996)))"
)
SPIKE_NEIGHBOUR_WKT = (
    "MULTIPOLYGON (((110.6019623 22.8302382, 110.6135556 22.8372588, 110.62441 22.8309964, "
    "110.6239967 22.8291531, 110.6233041 22.8260638, 110.6221006 22.820696, "
    "110.6216461 22.818669, 110.6144602 22.8135301, 110.6032889 22.8055412, "
    "110.6019623 22.8302382)))"
)
