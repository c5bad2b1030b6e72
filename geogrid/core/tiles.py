"""Vector-tile math, per-zoom simplification, tile budgets and TileJSON 3.0.0.

Tiles are XYZ (``y`` counts from the north) in Web Mercator (EPSG:3857), Mapbox Vector
Tile 2.1 with an extent of :data:`EXTENT` units and a :data:`BUFFER`-unit buffer.

Layers (:data:`LAYERS`): the four boundary levels carry the unit attributes and the load
metrics of a window (default: the last 30 days); ``incidents`` are points at high zoom and
clusters (cells with counts) at low zoom.

Budgets. Every tile keeps at most :data:`MAX_FEATURES` features and :data:`MAX_BYTES`
bytes. Incident tiles: raw points are served only when the tile holds at most
:data:`MAX_FEATURES` of them; otherwise the points are aggregated into square cells of
:func:`cluster_cell_px` pixels (a 256-px tile has at most ``(256/cell)²`` cells, 1,024 at
8 px), and a tile that is still over :data:`MAX_BYTES` is rebuilt with cells twice as
large. Cells are aligned to the global tile pyramid, so clusters of adjacent tiles never
overlap.

Simplification. Boundaries are simplified (``ST_Simplify``, topology not preserved, in
EPSG:3857) by :func:`simplify_tolerance` = :data:`SIMPLIFY_PX` of one 256-px pixel; at
z6 that is ~1.2 km, so a low-zoom tile holds a few vertices per unit.

Examples
--------
>>> tile_range((110.0, 22.0, 110.5, 22.5), 10)
(824, 446, 826, 447)
>>> round(simplify_tolerance(12), 2)
19.11
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from geogrid.core.heatmap import tile_bounds_3857, tile_pixel_size_3857
from geogrid.core.metric_catalogue import METRICS
from geogrid.errors import InvalidInput

__all__ = [
    "BUFFER",
    "EXTENT",
    "MAX_BYTES",
    "MAX_FEATURES",
    "MAX_ZOOM",
    "LAYERS",
    "LAYER_LEVELS",
    "DEPENDENT_LAYERS",
    "TileLayer",
    "UNIT_METRIC_FIELDS",
    "check_tile",
    "get_layer",
    "layer_fields",
    "cluster_cell_px",
    "simplify_tolerance",
    "tile_bounds_3857",
    "tile_bounds_lonlat",
    "padded_tile_bounds_lonlat",
    "tile_range",
    "tiles_in_bbox",
    "tilejson",
    "heat_tilejson",
    "HEAT_MAXZOOM",
    "heat_bandwidth_m",
    "heat_margin_deg",
    "tile_pad_deg",
    "mercator_to_tile_units",
]

EXTENT = 4096
BUFFER = 64
MAX_FEATURES = 5_000
MAX_BYTES = 500_000
MAX_ZOOM = 22
HEAT_MAXZOOM = 18
_WORLD = (-180.0, -85.05112878, 180.0, 85.05112878)
SIMPLIFY_PX = 0.5
POINT_MINZOOM = 12  # incidents below this zoom are always clustered
CLUSTER_PX = 8  # cluster cell size in 256-px pixels at POINT_MINZOOM - 1 and below
_ORIGIN = math.pi * 6378137.0


@dataclass(frozen=True)
class TileLayer:
    """One vector-tile layer: its name, what it shows and its attributes (name → type,
    description)."""

    name: str
    description: str
    geometry: str  # "polygon" | "point"
    minzoom: int
    maxzoom: int
    level: str | None = None
    fields: Mapping[str, tuple[str, str]] = field(default_factory=dict)


_UNIT_FIELDS = {
    "code": (
        "String",
        "unit code (hierarchical: district 6, street 9, community 12, grid 15 digits)",
    ),
    "name": ("String", "unit name"),
    "parent_code": ("String", "code of the parent unit"),
}
UNIT_METRIC_FIELDS = ("incidents", "open_backlog", "overdue", "per_1000_residents", "load_index")


def _metric_fields() -> dict[str, tuple[str, str]]:
    return {k: ("Number", str(METRICS[k])) for k in UNIT_METRIC_FIELDS}


def _unit_layer(name: str, level: str, minzoom: int, title: str) -> TileLayer:
    return TileLayer(name, title, "polygon", minzoom, MAX_ZOOM, level, {**_UNIT_FIELDS})


LAYERS: dict[str, TileLayer] = {
    "districts": _unit_layer("districts", "district", 0, "Districts (区/县) with load metrics"),
    "streets": _unit_layer("streets", "street", 0, "Streets/towns (街道/乡镇) with load metrics"),
    "communities": _unit_layer(
        "communities", "community", 0, "Communities (社区/村) with load metrics"
    ),
    "grids": _unit_layer("grids", "grid", 0, "Grids (网格) with load metrics"),
    "incidents": TileLayer(
        "incidents",
        "Incidents: points from zoom 12 when a tile holds ≤ 5,000 of them, else clusters "
        "(cluster=1) with counts",
        "point",
        0,
        MAX_ZOOM,
        None,
        {
            "id": ("Number", "incident id (points only)"),
            "category": ("String", "category code (points only)"),
            "status": ("String", "lifecycle status (points only)"),
            "reported_at": ("String", "reported time, RFC 3339 UTC (points only)"),
            "grid_code": ("String", "grid the incident is attributed to (points only)"),
            "cluster": ("Number", "1 for an aggregated cell, 0 for a single incident"),
            "count": ("Number", "incidents in the cell (1 for a point)"),
            "open": ("Number", "incidents of the cell not yet resolved/closed"),
        },
    ),
}
LAYER_LEVELS = {name: lay.level for name, lay in LAYERS.items() if lay.level}

# a change recorded for a layer (map_change.layer) makes these cached layers stale
DEPENDENT_LAYERS: dict[str, tuple[str, ...]] = {
    "incidents": ("incidents", "heatmap", "districts", "streets", "communities", "grids"),
    "districts": ("districts",),
    "streets": ("streets",),
    "communities": ("communities",),
    "grids": ("grids",),
    "boundaries": ("districts", "streets", "communities", "grids", "incidents", "heatmap"),
}


def layer_fields(name: str) -> dict[str, tuple[str, str]]:
    """Attributes of layer ``name`` (type, description), metrics included."""
    lay = get_layer(name)
    if lay.level:
        return {**lay.fields, **_metric_fields()}
    return dict(lay.fields)


def get_layer(name: str) -> TileLayer:
    try:
        return LAYERS[name]
    except KeyError:
        raise InvalidInput("layer", name, ", ".join(LAYERS)) from None


def check_tile(z: int, x: int, y: int, *, maxzoom: int = MAX_ZOOM) -> None:
    """Raise :class:`InvalidInput` unless ``z/x/y`` is a tile of the XYZ pyramid."""
    if not 0 <= z <= maxzoom:
        raise InvalidInput("z", z, f"a zoom level 0..{maxzoom}")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise InvalidInput("x/y", f"{x}/{y}", f"tile indices 0..{n - 1} at zoom {z}")


def tile_bounds_lonlat(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) of tile ``z/x/y`` in WGS84 degrees."""
    n = 1 << z
    west = x / n * 360.0 - 180.0
    east = (x + 1) / n * 360.0 - 180.0
    north = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))
    south = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 1) / n))))
    return west, south, east, north


def padded_tile_bounds_lonlat(
    z: int, x: int, y: int, frac: float = BUFFER / EXTENT
) -> tuple[float, float, float, float]:
    """(west, south, east, north) of tile ``z/x/y`` in WGS84 degrees, widened on each side
    by ``frac`` of the tile (default: the MVT buffer, :data:`BUFFER` of :data:`EXTENT`) and
    clamped to ±89.9° of latitude: the envelope that selects what a tile may show.

    >>> [round(v, 3) for v in padded_tile_bounds_lonlat(10, 824, 446)]
    [109.682, 22.264, 110.045, 22.599]
    """
    w, s, e, n = tile_bounds_lonlat(z, x, y)
    dx, dy = (e - w) * frac, (n - s) * frac
    return w - dx, max(s - dy, -89.9), e + dx, min(n + dy, 89.9)


def _tile_xy(lon: float, lat: float, z: int) -> tuple[float, float]:
    lat = max(min(lat, 85.0511287798), -85.0511287798)
    n = 1 << z
    fx = (lon + 180.0) / 360.0 * n
    r = math.radians(lat)
    fy = (1.0 - math.log(math.tan(r) + 1.0 / math.cos(r)) / math.pi) / 2.0 * n
    return fx, fy


def tile_range(bbox: Iterable[float], z: int) -> tuple[int, int, int, int]:
    """Inclusive tile index range ``(xmin, ymin, xmax, ymax)`` at zoom ``z`` of the tiles
    whose bounds intersect a WGS84 ``bbox`` (west, south, east, north); tiles that only
    touch the bbox on an edge are included (conservative for cache invalidation)."""
    w, s, e, n = (float(v) for v in bbox)
    if w > e or s > n:
        raise InvalidInput("bbox", (w, s, e, n), "west <= east and south <= north")
    last = (1 << z) - 1
    fx0, fy0 = _tile_xy(w, n, z)
    fx1, fy1 = _tile_xy(e, s, z)
    x0 = min(max(int(math.floor(fx0)) - (fx0 == math.floor(fx0)), 0), last)
    y0 = min(max(int(math.floor(fy0)) - (fy0 == math.floor(fy0)), 0), last)
    x1 = min(max(int(math.floor(fx1)), 0), last)
    y1 = min(max(int(math.floor(fy1)), 0), last)
    return x0, y0, x1, y1


def tiles_in_bbox(bbox: Iterable[float], z: int) -> Iterator[tuple[int, int]]:
    """All ``(x, y)`` of :func:`tile_range`."""
    x0, y0, x1, y1 = tile_range(bbox, z)
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            yield x, y


def simplify_tolerance(z: int) -> float:
    """ST_Simplify tolerance for zoom ``z`` in EPSG:3857 metres (half a 256-px pixel)."""
    return SIMPLIFY_PX * tile_pixel_size_3857(z)


def cluster_cell_px(z: int, attempt: int = 0) -> int | None:
    """Cluster cell size in 256-px pixels for incidents at zoom ``z``: ``None`` means raw
    points are allowed (if the tile is within budget); each further ``attempt`` (after a
    budget overflow) doubles the cell."""
    if z >= POINT_MINZOOM and attempt == 0:
        return None
    k = max(attempt - (1 if z >= POINT_MINZOOM else 0), 0)
    return min(CLUSTER_PX << k, 256)


def heat_bandwidth_m(z: int, ref_lat: float = 0.0) -> float:
    """Heat-map kernel bandwidth (ground metres) at zoom ``z``: 6 pixels at latitude
    ``ref_lat`` (degrees; the city's, so a pixel is a ground size there), clamped to
    40 m .. 8 km. A function of the zoom and the city only, so tiles join.

    >>> round(heat_bandwidth_m(10, 22.6)), round(heat_bandwidth_m(10))
    (847, 917)
    """
    px_ground = tile_pixel_size_3857(z) * math.cos(math.radians(ref_lat))
    return float(min(max(6.0 * px_ground, 40.0), 8_000.0))


def heat_margin_deg(z: int) -> float:
    """How far (degrees, generous) an incident influences heat tiles of zoom ``z``: five
    bandwidths (at the equator, the widest) plus three pixels, converted at the equator and
    doubled for safety."""
    m = 5.0 * heat_bandwidth_m(z) + 3.0 * tile_pixel_size_3857(z)
    return 2.0 * m / 111_320.0


def tile_pad_deg(z: int) -> float:
    """The tile buffer (:data:`BUFFER` of :data:`EXTENT`) at zoom ``z`` in degrees of
    longitude, +1 %: a change this close to a tile can show in it (clipped geometry and
    points in the buffer). Degrees of latitude are shorter, so it is conservative."""
    return 1.01 * BUFFER / EXTENT * 360.0 / (1 << z)


def tilejson(
    layer: str,
    tiles_url: str,
    *,
    bounds: tuple[float, float, float, float] | None = None,
    minzoom: int | None = None,
    maxzoom: int | None = None,
    name: str | None = None,
    attribution: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A TileJSON 3.0.0 document for one vector layer.

    ``tiles_url`` is the template (``…/{z}/{x}/{y}.mvt`` with any query). ``bounds`` are
    WGS84 degrees; the centre is the middle of the bounds at ``minzoom + 8`` (≤ maxzoom).
    """
    lay = get_layer(layer)
    lo = lay.minzoom if minzoom is None else minzoom
    hi = lay.maxzoom if maxzoom is None else maxzoom
    b = list(bounds) if bounds else list(_WORLD)
    center = [round((b[0] + b[2]) / 2, 6), round((b[1] + b[3]) / 2, 6), min(lo + 10, hi)]
    fields = layer_fields(layer)
    doc: dict[str, Any] = {
        "tilejson": "3.0.0",
        "name": name or f"geogrid {layer}",
        "description": lay.description,
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [tiles_url],
        "minzoom": lo,
        "maxzoom": hi,
        "bounds": [round(v, 6) for v in b],
        "center": center,
        "vector_layers": [
            {
                "id": layer,
                "description": lay.description,
                "minzoom": lo,
                "maxzoom": hi,
                "fields": {k: f"{t}: {d}" for k, (t, d) in fields.items()},
            }
        ],
    }
    if attribution:
        doc["attribution"] = attribution
    if extra:
        doc.update(extra)
    return doc


def heat_tilejson(
    tiles_url: str,
    *,
    bounds: tuple[float, float, float, float] | None = None,
    attribution: str | None = None,
) -> dict[str, Any]:
    """A TileJSON 3.0.0 document for the heat-map raster tiles (256-px PNG, zoom 0 to
    :data:`HEAT_MAXZOOM`); ``bounds`` in WGS84 degrees, the centre at zoom 10.

    >>> heat_tilejson("https://h/{z}/{x}/{y}.png", bounds=(110, 22, 111, 23))["center"]
    [110.5, 22.5, 10]
    """
    b = list(bounds) if bounds else list(_WORLD)
    doc: dict[str, Any] = {
        "tilejson": "3.0.0",
        "name": "geogrid incident heat map",
        "description": "Gaussian kernel density of incidents (bandwidth 6 px of the zoom, "
        "40 m–8 km); one colour scale per zoom",
        "scheme": "xyz",
        "tiles": [tiles_url],
        "minzoom": 0,
        "maxzoom": HEAT_MAXZOOM,
        "bounds": [round(v, 6) for v in b],
        "center": [round((b[0] + b[2]) / 2, 6), round((b[1] + b[3]) / 2, 6), 10],
    }
    if attribution:
        doc["attribution"] = attribution
    return doc


def mercator_to_tile_units(z: int) -> float:
    """Tile units (of :data:`EXTENT`) per EPSG:3857 metre at zoom ``z``."""
    return EXTENT * (1 << z) / (2 * _ORIGIN)
