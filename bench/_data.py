"""Synthetic but realistic benchmark data over Yulin (玉林市), EPSG:4326.

* :func:`yulin_outline` -- the dissolved city outline (WGS84).
* :func:`voronoi_grids` -- ``n`` grid polygons: Voronoi cells of clustered seeds (denser
  around the 7 district seats) clipped to the outline. They partition the city exactly.
* :func:`clustered_points` -- WGS84 points, dense where grids are dense, ~2 % outside.
* :func:`grids_from_db` -- the published grid layer of a geogrid database, if it exists.

Everything is deterministic for a given ``seed``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

__all__ = ["yulin_outline", "district_seats", "voronoi_grids", "clustered_points", "grids_from_db"]

_BOUNDARIES = Path(__file__).resolve().parent.parent / "boundaries" / "yulin"
_OUTLINE = _BOUNDARIES / "yulin_city_dissolved_wgs84.geojson"
_COUNTIES = _BOUNDARIES / "yulin_counties_wgs84.geojson"


@functools.cache
def yulin_outline() -> shapely.Polygon | shapely.MultiPolygon:
    """The dissolved Yulin city outline (union of the 7 counties), EPSG:4326."""
    doc = json.loads(_OUTLINE.read_text(encoding="utf-8"))
    geom = shapely.geometry.shape(doc["features"][0]["geometry"])
    return shapely.make_valid(geom) if not geom.is_valid else geom


@functools.cache
def district_seats() -> tuple[tuple[str, shapely.Geometry, float, float], ...]:
    """``(adcode, polygon, lon, lat)`` per county; lon/lat is the seat (the DataV ``center``).

    ``center`` is a GCJ-02 value in the WGS84 file (see SOURCE.md); the ~500 m offset does
    not matter for clustering synthetic seeds.
    """
    doc = json.loads(_COUNTIES.read_text(encoding="utf-8"))
    out = []
    for f in doc["features"]:
        lon, lat = f["properties"]["center"]
        geom = shapely.geometry.shape(f["geometry"])
        out.append((str(f["properties"]["adcode"]), geom, lon, lat))
    return tuple(out)


def _points_in(poly, n: int, rng: np.random.Generator, sampler) -> np.ndarray:
    """``n`` points from ``sampler(k) -> (k, 2)`` kept only inside ``poly`` (rejection)."""
    shapely.prepare(poly)
    out = np.empty((0, 2))
    while len(out) < n:
        xy = sampler(2 * (n - len(out)) + 64)
        xy = xy[shapely.contains_xy(poly, xy[:, 0], xy[:, 1])]
        out = np.vstack([out, xy])
    return out[:n]


@functools.cache
def _voronoi(n: int, seed: int) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    outline = yulin_outline()
    x0, y0, x1, y1 = outline.bounds
    seats = district_seats()
    # half the seeds uniform over the city, half Gaussian around the district seats,
    # with the central urban district (玉州区) weighted most.
    n_uniform = n // 2
    uniform = _points_in(
        outline, n_uniform, rng, lambda k: rng.uniform((x0, y0), (x1, y1), size=(k, 2))
    )
    weights = np.array([3.0 if s[0] == "450902" else 1.0 for s in seats])
    counts = rng.multinomial(n - n_uniform, weights / weights.sum())
    clustered = []
    sigma = 0.03  # ~3 km
    for (_, _, lon, lat), k in zip(seats, counts, strict=True):
        clustered.append(
            _points_in(
                outline, int(k), rng, lambda m, c=(lon, lat): rng.normal(c, sigma, size=(m, 2))
            )
        )
    seeds = np.vstack([uniform, *clustered])
    # Voronoi cells, clipped to the outline. Every seed is inside the outline so every
    # clipped cell is non-empty; cells come back in arbitrary order -> match them to seeds.
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=shapely.box(*outline.bounds))
    )
    tree = shapely.STRtree(cells)
    seed_idx, cell_idx = tree.query(shapely.points(seeds), predicate="intersects")
    order = np.full(len(seeds), -1)
    order[seed_idx] = cell_idx  # a seed lies strictly inside its own cell
    geoms = shapely.intersection(cells[order], outline)
    geoms = np.array([_as_polygonal(g) for g in geoms], dtype=object)
    # codes: district(6) + street(3) + community(3) + grid(3), numbered per district
    dist = np.full(len(seeds), "", dtype=object)
    for adcode, poly, _, _ in seats:
        shapely.prepare(poly)
        inside = shapely.contains_xy(poly, seeds[:, 0], seeds[:, 1]) & (dist == "")
        dist[inside] = adcode
    dist[dist == ""] = seats[0][0]  # a seed exactly on a county border
    codes = np.empty(len(seeds), dtype=object)
    for adcode in np.unique(dist):
        idx = np.flatnonzero(dist == adcode)
        k = np.arange(len(idx))
        codes[idx] = [
            f"{adcode}{s:03d}{c:03d}{g:03d}"
            for s, c, g in zip(k // 400 + 1, (k // 20) % 20 + 1, k % 20 + 1, strict=True)
        ]
    gdf = gpd.GeoDataFrame({"code": codes.astype(str)}, geometry=geoms, crs="EPSG:4326")
    return gdf, seeds


def _as_polygonal(g):
    """Keep only the polygonal part of a clip result (drops stray lines/points)."""
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    parts = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts)


def voronoi_grids(n: int = 8798, seed: int = 0) -> gpd.GeoDataFrame:
    """``n`` grid polygons partitioning the Yulin outline (EPSG:4326).

    Voronoi cells of seeds that are half uniform over the city and half clustered
    around the 7 district seats, clipped to :func:`yulin_outline`. Column ``code``
    (15-digit, hierarchical-looking, unique); geometry Polygon or MultiPolygon.
    Deterministic for ``(n, seed)``; about 1-3 s for the default size.
    """
    gdf, _ = _voronoi(n, seed)
    return gdf.copy()


def clustered_points(
    n: int, seed: int = 0, grids: gpd.GeoDataFrame | gpd.GeoSeries | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` WGS84 points ``(lon, lat)`` (float64 arrays), clustered where grids are dense.

    Each point picks a grid uniformly (so density follows grid density) and falls
    Gaussian around its representative point with sigma = sqrt(grid area) / 2.
    About 2 % are uniform over the bounding box enlarged by 10 %, most of them
    outside the city; Gaussian tails at the border add a few more outside points.
    """
    rng = np.random.default_rng(seed)
    if grids is None:
        grids = voronoi_grids()
    geoms = np.asarray(grids.geometry.values if hasattr(grids, "geometry") else grids)
    rep = shapely.get_coordinates(shapely.point_on_surface(geoms))
    sigma = np.sqrt(shapely.area(geoms)) / 2
    n_out = int(round(n * 0.02))
    k = n - n_out
    pick = rng.integers(0, len(geoms), size=k)
    lon = np.empty(n)
    lat = np.empty(n)
    lon[:k] = rep[pick, 0] + rng.standard_normal(k) * sigma[pick]
    lat[:k] = rep[pick, 1] + rng.standard_normal(k) * sigma[pick]
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    dx, dy = (x1 - x0) * 0.1, (y1 - y0) * 0.1
    lon[k:] = rng.uniform(x0 - dx, x1 + dx, size=n_out)
    lat[k:] = rng.uniform(y0 - dy, y1 + dy, size=n_out)
    perm = rng.permutation(n)
    return lon[perm], lat[perm]


def grids_from_db(url: str) -> gpd.GeoDataFrame:
    """The published grid layer of a geogrid database (EPSG:4326), column ``code``.

    Reads ``unit`` rows with ``level = 'grid'`` of the ``boundary_version`` whose status is
    ``published``. Raises ``RuntimeError`` saying what is missing when the schema, the
    published version or the grids are not there yet.
    """
    import psycopg  # noqa: PLC0415

    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        have = conn.execute(
            "SELECT to_regclass('unit') IS NOT NULL, to_regclass('boundary_version') IS NOT NULL"
        ).fetchone()
        if have is None or not all(have):
            raise RuntimeError(
                f"{url}: tables unit/boundary_version not found (exist: "
                f"{tuple(have or ())}); use --grids voronoi"
            )
        rows = conn.execute(
            "SELECT code, ST_AsBinary(ST_Transform(geom, 4326)) FROM unit "
            "WHERE level = 'grid' AND version_id = "
            "(SELECT id FROM boundary_version WHERE status = 'published' "
            "ORDER BY id DESC LIMIT 1) ORDER BY code"
        ).fetchall()
    if not rows:
        raise RuntimeError(f"{url}: no grid units in a published boundary version")
    codes = [r[0] for r in rows]
    geoms = shapely.from_wkb([bytes(r[1]) for r in rows])
    return gpd.GeoDataFrame({"code": codes}, geometry=geoms, crs="EPSG:4326")
