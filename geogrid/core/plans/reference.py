"""Boundaries that follow the ground: cutting a community along reference lines (roads,
rivers, block edges) and smoothing stair-stepped cell edges.

* :func:`road_blocks` — the faces of a community cut by lines: the community's boundary and
  the lines (clipped to it) noded together and polygonized. Grids made of whole blocks
  have every new boundary on a line.
* :func:`split_cells` — cells (e.g. 75 m hexagons) cut along the same lines, so no cell
  straddles a road: the fallback when there are too few blocks for the grids wanted.
* :func:`smooth_grids` — the hexagons' stair-steps between grids simplified away
  (``shapely.coverage_simplify`` of the shared edges, the community's outline and the
  reference lines kept), the coverage rebuilt exactly.
* :func:`read_reference_file` — any line file (GeoJSON, GeoPackage, Shapefile, GeoParquet)
  as MultiLineStrings in EPSG:4326; polygons (building blocks) give their outlines;
* :func:`mean_compactness` — mean Polsby–Popper (4πA/P², 1 = a disc) of grids, in the
  metric CRS.

All geometries are WGS84 (EPSG:4326); tolerances are metres, converted with the local
scale of the degrees.
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from geogrid.core import crs as gcrs
from geogrid.core.plans.edits import rebuild_community
from geogrid.core.plans.impact import shape_metrics
from geogrid.errors import FileInputError

__all__ = [
    "road_blocks",
    "split_cells",
    "smooth_grids",
    "mean_compactness",
    "lines_in",
    "read_reference_file",
]

_OVERSHOOT = 1e-9  # degrees a clipped line reaches past the community's outline
_M_PER_DEG = 110_574.0  # metres per degree of latitude (tolerances in degrees)
_MIN_BLOCK_M2 = 1.0  # faces smaller than this are noise of the noding


def lines_in(community: BaseGeometry, lines: np.ndarray) -> BaseGeometry:
    """The parts of ``lines`` inside ``community`` (reaching ~0.1 mm past its outline so
    noding meets it), as one geometry (empty when none cross it)."""
    arr = np.asarray(lines, dtype=object)
    if len(arr) == 0:
        return shapely.GeometryCollection()
    region = shapely.buffer(community, _OVERSHOOT, quad_segs=2)
    arr = arr[shapely.intersects(arr, region)]
    if len(arr) == 0:
        return shapely.GeometryCollection()
    return shapely.union_all(shapely.intersection(arr, region))


def _faces(community: BaseGeometry, lines: BaseGeometry) -> np.ndarray:
    noded = shapely.union_all(np.asarray([shapely.boundary(community), lines], dtype=object))
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[~shapely.is_empty(faces)]
    shapely.prepare(community)
    return faces[shapely.contains(community, shapely.point_on_surface(faces))]


def road_blocks(community: BaseGeometry, lines: np.ndarray) -> np.ndarray:
    """The blocks of ``community`` between ``lines`` (EPSG:4326 polygons covering it).

    >>> sq = shapely.box(0, 0, 0.01, 0.01)
    >>> roads = np.array([shapely.LineString([(0.005, -1), (0.005, 1)]),
    ...                   shapely.LineString([(-1, 0.004), (1, 0.004)])])
    >>> sorted(round(float(a / shapely.area(sq)), 2) for a in shapely.area(road_blocks(sq, roads)))
    [0.2, 0.2, 0.3, 0.3]
    """
    cut = lines_in(community, lines)
    if cut.is_empty:
        return np.asarray([community], dtype=object)
    faces = _faces(community, cut)
    lat = float(shapely.get_coordinates(shapely.centroid(community))[0, 1])
    m2_per_deg2 = _M_PER_DEG**2 * math.cos(math.radians(lat))
    return faces[shapely.area(faces) * m2_per_deg2 >= _MIN_BLOCK_M2]


def split_cells(cells: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """``cells`` cut along the edges of ``blocks``: each piece lies in one block."""
    if len(blocks) <= 1:
        return np.asarray(cells, dtype=object)
    ci, bi = shapely.STRtree(blocks).query(cells, predicate="intersects")
    pieces = shapely.get_parts(shapely.intersection(cells[ci], blocks[bi]))
    pieces = pieces[shapely.get_type_id(pieces) == 3]
    return pieces[shapely.area(pieces) > 0]


def smooth_grids(
    community: BaseGeometry,
    geoms: np.ndarray,
    tolerance_m: float,
    keep_lines: BaseGeometry | None = None,
) -> np.ndarray:
    """Grids with their shared edges simplified (Visvalingam–Whyatt, ``tolerance_m``
    metres) keeping the coverage: the outline of the community and the edges lying on
    ``keep_lines`` do not move; rebuilt into an exact coverage of ``community``.

    Returns the input when simplifying would break a grid (an empty or a split grid).
    """
    arr = np.asarray(geoms, dtype=object)
    if tolerance_m <= 0 or len(arr) < 2:
        return arr
    tol = tolerance_m / _M_PER_DEG
    simple = shapely.coverage_simplify(arr, tol, simplify_boundary=False)
    owners = list(simple)
    extra = None
    if keep_lines is not None and not keep_lines.is_empty:
        # edges on the reference lines stay where they were: re-cut along the lines
        extra = [keep_lines]
    out = rebuild_community(community, owners, extra, absorb_m2=math.inf)[2]
    if len(out) != len(arr) or any(g.is_empty or shapely.get_num_geometries(g) != 1 for g in out):
        return arr
    return np.asarray(out, dtype=object)


def mean_compactness(geoms: np.ndarray) -> float:
    """Mean Polsby–Popper compactness (4πA/P², 1 = a disc) of polygons (EPSG:4326).

    >>> round(mean_compactness(np.array([shapely.box(110, 22, 110.01, 22.01)])), 2)
    0.78
    """
    arr = np.asarray(geoms, dtype=object)
    if len(arr) == 0:
        return float("nan")
    return float(shape_metrics(arr)["polsby_popper"].mean())


def read_reference_file(
    path: str | Path,
    *,
    crs: str | None = None,
    layer: str | None = None,
    name_field: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a line layer as ``name`` and MultiLineString geometries in EPSG:4326.

    Parameters
    ----------
    path : GeoJSON, GeoPackage, zipped Shapefile or GeoParquet
    crs : the coordinates' CRS when the file does not say, or to override it (``wgs84``,
        ``gcj02``, ``bd09`` or an EPSG code)
    layer : a layer of a GeoPackage
    name_field : the column naming each line (default: ``name`` when there is one)

    Raises
    ------
    FileInputError  missing or unreadable file, no CRS, or no line in it
    """
    p = Path(path)
    if not p.exists():
        raise FileInputError(str(p), "file not found")
    try:
        if p.suffix.lower() == ".parquet":
            gdf = gpd.read_parquet(p)
        else:
            gdf = gpd.read_file(p, layer=layer) if layer else gpd.read_file(p)
    except Exception as exc:  # pyogrio / pyarrow raise many kinds
        raise FileInputError(str(p), f"cannot be read as a line layer: {exc}") from exc
    if crs is None and gdf.crs is None:
        raise FileInputError(str(p), "the file has no CRS: give one (wgs84, gcj02, bd09, EPSG)")
    gdf = gcrs.to_wgs84_frame(gdf, crs)
    field = name_field or ("name" if "name" in gdf.columns else None)
    names: list[str | None] = []
    lines: list[shapely.MultiLineString] = []
    for k, g in enumerate(gdf.geometry.values):
        if g is None or g.is_empty:
            continue
        if g.geom_type in ("Polygon", "MultiPolygon"):
            g = shapely.boundary(g)
        parts = [
            part for part in shapely.get_parts(g) if part.geom_type in ("LineString", "LinearRing")
        ]
        if not parts:
            continue
        lines.append(shapely.MultiLineString([shapely.LineString(part.coords) for part in parts]))
        names.append(str(gdf[field].iloc[k]) if field else None)
    if not lines:
        raise FileInputError(str(p), "no line (or polygon outline) in the file")
    return gpd.GeoDataFrame({"name": names}, geometry=lines, crs="EPSG:4326")
