"""Auto-partition: cut a community into contiguous, compact grids of balanced load.

Method
------
1. **Cells.** The community is covered by a fine tessellation: regular hexagons of
   ``cell_m`` metres across the flats (default 75 m) laid out in the metric CRS
   (:func:`geogrid.core.crs.metric_crs`, e.g. EPSG:4546 for a city at 111°E) and clipped to the community;
   or, when a block layer is given (street blocks, polygons in EPSG:4326), the blocks
   clipped to the community, so grid edges follow the streets.
2. **Weights.** Each cell weighs its load: the households of the building points inside
   it, or any per-point weight the caller passes (the plan's load index puts
   effort-weighted incidents, households and area together, see
   :mod:`geogrid.core.plans.impact`). For METIS only, a small area term (``area_share`` of
   the total weight, spread by area) keeps empty land from being free, so grids stay
   compact where nobody lives; reported loads are the point weights alone (the area
   share when there are no points).
3. **Graph partition.** METIS (``pymetis``) k-way partitions the cell adjacency graph
   (cells sharing an edge; edge weight = shared edge length, so the cut — the total
   length of grid boundaries — is minimised, which makes grids compact) with vertex
   weights = cell loads, ``contig`` (every part connected) and ``ufactor`` (allowed
   imbalance, default 3%). Within a piece, cells that touch only at a corner (a narrow
   neck) are joined to their nearest cell so METIS sees one component.
   **Communities in several pieces** (islands, exclaves: a MultiPolygon) are cut piece
   by piece, since a grid must be one polygon: with ``n``, every piece gets at least
   one grid and the rest are handed out one at a time to the piece with the highest
   load per grid (D'Hondt: proportional to the pieces' weights, minimising the heaviest
   mean); with ``target``, each piece is cut to the target on its own.
4. **Target load.** With ``target`` instead of ``n``: ``n = ceil(total / target)``,
   increased until the heaviest grid is under the target (or cells cannot be split
   further: one cell heavier than the target is reported, not hidden).
5. **Exact coverage.** The parts' cells are dissolved and the community is rebuilt from
   noded linework (:func:`geogrid.core.plans.edits.rebuild_community`), so the new grids
   partition the community exactly and share their edges vertex for vertex.
6. **Reference lines** (roads, rivers, block edges: ``lines``, EPSG:4326). When given,
   the community is first cut along them into blocks
   (:func:`geogrid.core.plans.reference.road_blocks`); with ``n`` grids and at least
   ``n`` blocks the blocks are the cells, so every new boundary lies on a line. With too
   few blocks (or with ``target``) the cells are the hexagons cut along the lines, so no
   cell straddles a road: the fallback to the cell graph.
7. **Smoothing.** Grids made of hexagons have stair-stepped edges; ``smooth_m`` (default
   half a cell) simplifies the shared edges with the coverage kept
   (:func:`geogrid.core.plans.reference.smooth_grids`). Compactness (mean Polsby–Popper)
   before and after smoothing is reported.

The balance achieved is reported per community: max/min load ratio and the coefficient
of variation (std / mean) of the grid loads. The granularity of the cells bounds it: a
cell is never split, so an apartment block of 300 households in one 75 m cell is one
indivisible weight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymetis
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from shapely.geometry.base import BaseGeometry

from geogrid.core.crs import metric_crs, transform_geometries
from geogrid.core.loadindex import LoadWeights
from geogrid.core.plans.edits import Coverage, rebuild_community
from geogrid.core.plans.reference import (
    lines_in,
    mean_compactness,
    road_blocks,
    smooth_grids,
    split_cells,
)
from geogrid.errors import InvalidInput

__all__ = [
    "CommunityPartition",
    "tessellate",
    "partition_community",
    "autopartition",
    "balance",
    "community_pieces",
    "allocate",
    "LOADS",
    "load_points",
]

#: what auto-partition can balance
LOADS = ("households", "load_index")


@dataclass
class CommunityPartition:
    """Result for one community.

    Attributes
    ----------
    community : str
    grids : list of dict
        ``code``, ``name``, ``geometry`` (MultiPolygon, EPSG:4326), ``load``.
    loads : ndarray
        Load of each grid (same order as ``grids``; in the unit of the weights).
    balance : dict
        ``n``, ``total``, ``mean``, ``max``, ``min``, ``max_min_ratio``, ``cv``,
        ``target`` (or None), ``reached`` (max load ≤ target, or None without target),
        ``cells``, ``method``.
    """

    community: str
    grids: list[dict]
    loads: np.ndarray
    balance: dict


def balance(loads: np.ndarray, target: float | None = None) -> dict:
    """Max/min ratio and coefficient of variation of loads."""
    loads = np.asarray(loads, dtype=float)
    mean = float(loads.mean()) if len(loads) else 0.0
    mn = float(loads.min()) if len(loads) else 0.0
    mx = float(loads.max()) if len(loads) else 0.0
    return {
        "n": int(len(loads)),
        "total": float(loads.sum()),
        "mean": mean,
        "max": mx,
        "min": mn,
        "max_min_ratio": (mx / mn) if mn > 0 else math.inf,
        "cv": float(loads.std() / mean) if mean > 0 else 0.0,
        "target": target,
        "reached": None if target is None else bool(mx <= target * (1 + 1e-9)),
    }


def tessellate(
    community: BaseGeometry,
    cell_m: float = 75.0,
    *,
    shape: str = "hex",
    blocks: np.ndarray | None = None,
) -> np.ndarray:
    """Cells covering ``community`` (EPSG:4326), clipped to it; single polygons.

    ``shape`` is ``hex`` (flat-to-flat ``cell_m`` metres) or ``square`` (side
    ``cell_m``); ``blocks`` (polygons, EPSG:4326) replace the tessellation.
    """
    if not (cell_m > 0 and math.isfinite(cell_m)):
        raise InvalidInput("cell_m", cell_m, "a positive number of metres")
    if blocks is not None:
        cells = np.asarray(blocks, dtype=object)
        cells = cells[shapely.intersects(cells, community)]
        rest = shapely.difference(community, shapely.union_all(cells))
        cells = np.concatenate([cells, shapely.get_parts(rest)])
    else:
        lon, lat = shapely.get_coordinates(shapely.centroid(community))[0]
        crs = metric_crs(lon, lat)
        m = transform_geometries(np.asarray([community], dtype=object), "wgs84", crs)[0]
        cells = _hexes(m.bounds, cell_m) if shape == "hex" else _squares(m.bounds, cell_m)
        if shape not in ("hex", "square"):
            raise InvalidInput("shape", shape, "hex or square")
        cells = cells[shapely.intersects(cells, m)]
        cells = np.asarray(transform_geometries(cells, crs, "wgs84"), dtype=object)
    clipped = shapely.intersection(cells, community)
    parts = shapely.get_parts(clipped)
    parts = parts[shapely.get_type_id(parts) == 3]
    return parts[shapely.area(parts) > 0]


def _hexes(bounds: tuple, size: float) -> np.ndarray:
    x0, y0, x1, y1 = bounds
    r = size / math.sqrt(3)  # circumradius of a hexagon with flat-to-flat ``size``
    dx, dy = 1.5 * r, size
    nx = int(math.ceil((x1 - x0) / dx)) + 2
    ny = int(math.ceil((y1 - y0) / dy)) + 2
    i, j = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    cx = x0 - dx + i * dx
    cy = y0 - dy + j * dy + (i % 2) * dy / 2
    ang = np.radians(np.arange(0, 360, 60))
    xs = cx.reshape(-1, 1) + r * np.cos(ang)
    ys = cy.reshape(-1, 1) + r * np.sin(ang)
    rings = np.stack([xs, ys], axis=-1)
    return shapely.polygons(rings)


def _squares(bounds: tuple, size: float) -> np.ndarray:
    x0, y0, x1, y1 = bounds
    xs = np.arange(x0 - size, x1 + size, size)
    ys = np.arange(y0 - size, y1 + size, size)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    return shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + size, gy.ravel() + size)


def _adjacency(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i < j) of cells sharing an edge and the shared length (degrees)."""
    tree = shapely.STRtree(cells)
    a, b = tree.query(cells, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    shared = shapely.length(
        shapely.intersection(shapely.boundary(cells[a]), shapely.boundary(cells[b]))
    )
    ok = shared > 0
    a, b, shared = a[ok], b[ok], shared[ok]
    # join disconnected components (islands) to their nearest cell
    n = len(cells)
    ncomp, comp = connected_components(
        coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)), directed=False
    )
    if ncomp > 1:
        extra_a, extra_b = [], []
        main = np.flatnonzero(comp == np.bincount(comp).argmax())
        tree_main = shapely.STRtree(cells[main])
        for c in range(ncomp):
            members = np.flatnonzero(comp == c)
            if comp[main[0]] == c:
                continue
            i, j = tree_main.query_nearest(cells[members], all_matches=False)
            d = shapely.distance(cells[members[i]], cells[main[j]])
            k = int(np.argmin(d))
            extra_a.append(members[i[k]])
            extra_b.append(main[j[k]])
        shortest = float(shared.min()) if len(shared) else 1e-4
        a = np.concatenate([a, extra_a]).astype(np.int64)
        b = np.concatenate([b, extra_b]).astype(np.int64)
        shared = np.concatenate([shared, np.full(len(extra_a), shortest)])
    return a, b, shared


def _metis(
    n_parts: int,
    cells_n: int,
    a: np.ndarray,
    b: np.ndarray,
    elen: np.ndarray,
    weights: np.ndarray,
    ufactor: int,
    seed: int,
) -> np.ndarray:
    if n_parts <= 1 or cells_n <= 1:
        return np.zeros(cells_n, dtype=np.int64)
    src = np.concatenate([a, b])
    dst = np.concatenate([b, a])
    ew = np.concatenate([elen, elen])
    order = np.lexsort((dst, src))
    src, dst, ew = src[order], dst[order], ew[order]
    xadj = np.zeros(cells_n + 1, dtype=np.int64)
    np.add.at(xadj, src + 1, 1)
    xadj = np.cumsum(xadj)
    ew_int = np.maximum(1, np.round(ew / ew.max() * 1000)).astype(np.int64)
    scale = 100_000 / max(float(weights.sum()), 1e-12)
    vw = np.maximum(1, np.round(weights * scale)).astype(np.int64)
    opts = pymetis.Options(contig=1, ufactor=int(ufactor), seed=int(seed), niter=20, ncuts=4)
    graph = pymetis.CSRAdjacency(xadj.tolist(), dst.tolist())
    res = pymetis.part_graph(
        int(n_parts), graph, vweights=vw.tolist(), eweights=ew_int.tolist(), options=opts
    )
    return np.asarray(res.vertex_part, dtype=np.int64)


def community_pieces(community: BaseGeometry) -> np.ndarray:
    """The connected pieces (polygons with area) of a community, largest first."""
    parts = shapely.get_parts(community)
    parts = parts[(shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)]
    return parts[np.argsort(-shapely.area(parts), kind="stable")]


def allocate(
    weights: np.ndarray, n: int, *, minimum: np.ndarray | int = 1, maximum: np.ndarray | None = None
) -> np.ndarray:
    """Share ``n`` grids among pieces of the given weights: ``minimum`` each, then one at
    a time to the piece with the highest weight per grid (D'Hondt), never more than
    ``maximum`` (e.g. its number of cells). The sum is ``n`` unless the maxima cap it."""
    w = np.asarray(weights, dtype=float)
    counts = np.broadcast_to(np.asarray(minimum, dtype=np.int64), w.shape).copy()
    cap = np.full(w.shape, np.iinfo(np.int64).max) if maximum is None else np.asarray(maximum)
    counts = np.minimum(counts, cap)
    for _ in range(int(n) - int(counts.sum())):
        room = counts < cap
        if not room.any():
            break
        score = np.where(room, w / np.maximum(counts, 1), -np.inf)
        counts[int(np.argmax(score))] += 1
    return counts


def _cut(
    cells: np.ndarray,
    weights: np.ndarray,
    w: np.ndarray,
    k: int | None,
    target: float | None,
    use_points: bool,
    ufactor: int,
    seed: int,
    max_rounds: int,
) -> tuple[np.ndarray, int, int]:
    """METIS on the cells of one connected piece: ``k`` parts, or as many as needed to
    bring every part under ``target``. Returns (part of each cell, parts, rounds)."""
    a, b, elen = _adjacency(cells)
    fixed = k is not None
    if k is None:
        if target is None:
            raise InvalidInput("target", target, "a load per grid, or a number of grids n")
        k = max(1, math.ceil(float(weights.sum()) / target))
    k = max(1, min(int(k), len(cells)))
    rounds = 0
    while True:
        rounds += 1
        part = _metis(k, len(cells), a, b, elen, weights, ufactor, seed)
        loads = np.bincount(part, weights=w if use_points else weights, minlength=k)
        if fixed or loads.max() <= target or k >= len(cells) or rounds >= max_rounds:
            return part, k, rounds
        k += 1


def partition_community(
    community: BaseGeometry,
    *,
    n: int | None = None,
    target: float | None = None,
    points_lon: np.ndarray | None = None,
    points_lat: np.ndarray | None = None,
    points_weight: np.ndarray | None = None,
    cell_m: float = 75.0,
    shape: str = "hex",
    blocks: np.ndarray | None = None,
    area_share: float = 0.05,
    ufactor: int = 30,
    seed: int = 0,
    max_rounds: int = 12,
    lines: np.ndarray | None = None,
    smooth_m: float | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Cut one community into ``n`` grids, or into grids under ``target`` load.

    Parameters
    ----------
    community : Polygon or MultiPolygon, EPSG:4326
    n : int, optional
        Number of grids.
    target : float, optional
        Maximum load per grid (in the unit of ``points_weight``); used when ``n`` is None.
    points_lon, points_lat, points_weight : arrays, optional
        Weighted points (WGS84): building points with households, incidents with effort …
        Without points every cell weighs its area.
    cell_m, shape, blocks : see :func:`tessellate`.
    area_share : float, default 0.05
        Share of the total weight spread over the cells by area.
    ufactor : int, default 30
        METIS imbalance tolerance in 1/1000 (30 = 3%).
    lines : array of LineStrings, optional
        Reference lines (EPSG:4326) to cut along (method step 6).
    smooth_m : float, optional
        Smoothing tolerance of hexagon/square stair-steps, metres (default ``cell_m / 2``;
        0: none; never for blocks).

    Returns
    -------
    (geoms, loads, info)
        Grid geometries (MultiPolygon, EPSG:4326, an exact coverage of the community),
        their loads, and ``{"cells", "n", "rounds", "pieces", "method", "cells_from",
        "blocks", "compactness_unsmoothed", "compactness"}``.

    Raises
    ------
    InvalidInput
        ``n`` smaller than the number of separate pieces of the community.
    """
    if n is None and target is None:
        raise InvalidInput("n", None, "a number of grids (n) or a target load per grid")
    if n is not None and (int(n) < 1):
        raise InvalidInput("n", n, "an integer >= 1")
    if target is not None and not (target > 0):
        raise InvalidInput("target", target, "a positive load")
    road = None if lines is None or len(lines) == 0 else lines_in(community, lines)
    cells_from = "blocks" if blocks is not None else shape
    n_blocks = 0
    if road is not None and not road.is_empty and blocks is None:
        rb = road_blocks(community, np.asarray(lines, dtype=object))
        n_blocks = len(rb)
        if n is not None and n_blocks >= int(n):
            blocks, cells_from = rb, "reference-line blocks"
        else:
            cells_from = f"{shape} cut along reference lines"
    cells = tessellate(community, cell_m, shape=shape, blocks=blocks)
    if cells_from.endswith("cut along reference lines"):
        cells = split_cells(cells, rb)
    if len(cells) == 0:
        raise InvalidInput("community", "empty", "a community with area")
    area = shapely.area(cells)
    w = np.zeros(len(cells))
    if points_lon is not None and len(points_lon):
        wt = np.ones(len(points_lon)) if points_weight is None else np.asarray(points_weight, float)
        tree = shapely.STRtree(cells)
        pi, ci = tree.query(
            shapely.points(np.asarray(points_lon), np.asarray(points_lat)), predicate="intersects"
        )
        first = np.r_[True, pi[1:] != pi[:-1]] if len(pi) else np.zeros(0, bool)
        np.add.at(w, ci[first], wt[pi[first]])
    total_pts = w.sum()
    spread = area / area.sum() * (total_pts * area_share if total_pts > 0 else 1.0)
    weights = w + spread
    # cut each connected piece of the community on its own: a grid must be one polygon
    shards = community_pieces(community)
    if len(shards) > 1:
        _, piece_of = shapely.STRtree(shards).query_nearest(
            shapely.point_on_surface(cells), all_matches=False
        )
    else:
        piece_of = np.zeros(len(cells), dtype=np.int64)
    members = [np.flatnonzero(piece_of == p) for p in range(len(shards))]
    members = [m for m in members if len(m)]
    if n is not None:
        if int(n) > len(cells):
            raise InvalidInput(
                "n",
                n,
                f"at most {len(cells)}: the community has only "
                f"{len(cells)} cells of {cell_m:g} m to group into grids",
            )
        if int(n) < len(members):
            raise InvalidInput(
                "n",
                n,
                f"at least {len(members)}: the community is in "
                f"{len(members)} separate pieces and a grid must be one piece",
            )
        counts = allocate(
            np.asarray([weights[m].sum() for m in members]),
            int(n),
            maximum=np.asarray([len(m) for m in members]),
        )
    else:
        counts = np.full(len(members), None, dtype=object)
    pieces, rounds = [], 0
    for m, kp in zip(members, counts, strict=True):
        part, k, r = _cut(
            cells[m], weights[m], w[m], kp, target, total_pts > 0, ufactor, seed, max_rounds
        )
        rounds = max(rounds, r)
        pieces += [shapely.union_all(cells[m][part == p]) for p in range(k)]
    pieces = [g for g in pieces if not g.is_empty]
    geoms = rebuild_community(community, pieces, absorb_m2=math.inf)[2]
    geoms = _make_contiguous(community, geoms)
    unsmoothed = mean_compactness(geoms)
    smooth = cell_m / 2 if smooth_m is None else float(smooth_m)
    # loads of the exact grids: the weight of the points inside them (area without points)
    loads = _loads(geoms, points_lon, points_lat, points_weight, float(area.sum()))
    smoothed = False
    if blocks is None and smooth > 0:
        # kept only when the balance stays: no grid over the target, the heaviest grid
        # at most 5% heavier than before
        sg = smooth_grids(community, geoms, smooth, road)
        sl = _loads(sg, points_lon, points_lat, points_weight, float(area.sum()))
        limit = loads.max() * 1.05 if target is None else min(target, loads.max() * 1.05)
        if sg is not geoms and sl.max() <= max(limit, loads.max()) + 1e-9:
            geoms, loads, smoothed = sg, sl, True
    info = {
        "cells": int(len(cells)),
        "n": len(geoms),
        "rounds": rounds,
        "pieces": len(members),
        "method": f"pymetis k-way on {len(cells)} {cells_from}"
        + ("" if blocks is not None else f" cells of {cell_m:g} m")
        + f", contiguous, ufactor {ufactor}"
        + (f", {len(members)} pieces cut separately" if len(members) > 1 else "")
        + (f", smoothed {smooth:g} m" if smoothed else ""),
        "cells_from": cells_from,
        "blocks": n_blocks,
        "smoothed": smoothed,
        "compactness_unsmoothed": round(unsmoothed, 4),
        "compactness": round(mean_compactness(geoms), 4),
    }
    return geoms, loads, info


def _make_contiguous(community: BaseGeometry, geoms: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Give each detached minor part of a grid (METIS parts are connected in the cell
    graph, but clipped cells may touch only at a corner) to the grid it shares the
    longest edge with; rebuild the exact coverage. Parts with no such neighbour (an
    island of the community) stay."""
    for _ in range(rounds):
        multi = [i for i, g in enumerate(geoms) if shapely.get_num_geometries(g) > 1]
        if not multi:
            return geoms
        owners = [shapely.Polygon() if g.is_empty else g for g in geoms]
        moved = False
        for i in multi:
            parts = shapely.get_parts(geoms[i])
            parts = parts[np.argsort(-shapely.area(parts))]
            keep = [parts[0]]
            for part in parts[1:]:
                shared = shapely.length(
                    shapely.intersection(
                        shapely.boundary(part), shapely.boundary(np.asarray(owners, dtype=object))
                    )
                )
                shared[i] = 0
                j = int(np.argmax(shared))
                if shared[j] > 0:
                    owners[j] = shapely.union_all([owners[j], part])
                    moved = True
                else:
                    keep.append(part)
            owners[i] = shapely.union_all(keep)
        if not moved:
            return geoms
        geoms = rebuild_community(community, owners, absorb_m2=math.inf)[2]
    return geoms


def _loads(geoms, lon, lat, wt, area_total) -> np.ndarray:
    if lon is None or not len(lon):
        return shapely.area(np.asarray(geoms, dtype=object)) / area_total
    loads = np.zeros(len(geoms))
    wt = np.ones(len(lon)) if wt is None else np.asarray(wt, float)
    taken = np.zeros(len(lon), dtype=bool)
    for i, g in enumerate(geoms):
        shapely.prepare(g)
        inside = shapely.intersects_xy(g, np.asarray(lon), np.asarray(lat)) & ~taken
        taken |= inside
        loads[i] = wt[inside].sum()
    return loads


def load_points(
    buildings: pd.DataFrame,
    incidents: pd.DataFrame,
    *,
    load: str = "households",
    reference: tuple[float, float, float] = (1.0, 1.0, 1.0),
    weights: LoadWeights | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The weighted points (lon, lat WGS84, weight) whose sum per grid is the load to balance.

    ``load="households"``: the building points weighted by their households.
    ``load="load_index"``: the load index is linear, so its household and incident terms
    are weighted points too — buildings weighted ``100·w_h/Σw · households / H̄`` and the
    incidents ``100·w_i/Σw · effort / Ē`` (``reference`` = (Ē, H̄, Ā), the grid means of
    :func:`geogrid.core.loadindex.grid_reference`); the area term is spread by area inside
    the partitioner (``area_share``).

    Parameters
    ----------
    buildings : DataFrame  ``lon``, ``lat``, ``households``
    incidents : DataFrame  ``lon``, ``lat``, ``effort`` of the incidents in the window

    >>> b = pd.DataFrame({"lon": [0.0], "lat": [0.0], "households": [10.0]})
    >>> i = pd.DataFrame({"lon": [1.0], "lat": [1.0], "effort": [2.0]})
    >>> load_points(b, i)[2].tolist()
    [10.0]
    >>> w = LoadWeights(incidents=1, households=1, area=0)
    >>> load_points(b, i, load="load_index", reference=(2, 10, 1), weights=w)[2].tolist()
    [50.0, 50.0]
    """
    if load not in LOADS:
        raise InvalidInput("load", load, " or ".join(LOADS))
    lon = buildings["lon"].to_numpy(dtype=float)
    lat = buildings["lat"].to_numpy(dtype=float)
    wt = buildings["households"].to_numpy(dtype=float)
    if load == "households":
        return lon, lat, wt
    w = weights or LoadWeights()
    tot = w.incidents + w.households + w.area
    ref_e, ref_h, _ = reference
    return (
        np.concatenate([lon, incidents["lon"].to_numpy(dtype=float)]),
        np.concatenate([lat, incidents["lat"].to_numpy(dtype=float)]),
        np.concatenate(
            [
                100 * w.households / tot * wt / max(ref_h, 1e-12),
                100
                * w.incidents
                / tot
                * incidents["effort"].to_numpy(dtype=float)
                / max(ref_e, 1e-12),
            ]
        ),
    )


def autopartition(
    cov: Coverage,
    communities: list[str],
    *,
    n: int | None = None,
    target: float | None = None,
    points_lon: np.ndarray | None = None,
    points_lat: np.ndarray | None = None,
    points_weight: np.ndarray | None = None,
    **options,
) -> list[CommunityPartition]:
    """Re-cut communities of a plan; returns, per community, grids with codes.

    With several communities and ``n``, the ``n`` grids are shared out by load (largest
    remainder, at least one each, one per piece for a community in several pieces); with
    ``target`` each community is cut to it. Each new grid takes the code and name of the
    old grid it overlaps most (greedily, largest overlap first), so workers follow; the
    others get new codes. ``options`` go to :func:`partition_community` (``cell_m``,
    ``shape``, ``lines``, ``smooth_m`` …); the balance of each community adds
    ``compactness_before`` (its grids before) to the compactness after.
    """
    if not communities:
        raise InvalidInput("communities", communities, "one or more community codes")
    lon = None if points_lon is None else np.asarray(points_lon, float)
    lat = None if points_lat is None else np.asarray(points_lat, float)
    wt = None if points_weight is None else np.asarray(points_weight, float)
    counts: dict[str, int | None] = {c: None for c in communities}
    if n is not None:
        # at least one grid per community, and per piece of a community in several pieces
        mins = np.asarray([max(1, len(community_pieces(cov.extent(c)))) for c in communities])
        if int(n) < mins.sum():
            raise InvalidInput(
                "n",
                n,
                f"at least one grid per community and per separate "
                f"piece of a community ({int(mins.sum())})",
            )
        per = []
        for c in communities:
            g = cov.extent(c)
            if lon is not None and len(lon):
                shapely.prepare(g)
                inside = shapely.contains_xy(g, lon, lat)
                per.append((wt[inside].sum() if wt is not None else inside.sum()) + 1e-9)
            else:
                per.append(shapely.area(g))
        share = np.asarray(per) / np.sum(per) * (int(n) - mins.sum())
        base = np.floor(share).astype(int)
        rest = int(n) - mins.sum() - base.sum()
        base[np.argsort(-(share - base))[:rest]] += 1
        counts = {c: int(b + m) for c, b, m in zip(communities, base, mins, strict=True)}
    out = []
    for c in communities:
        geom = cov.extent(c)
        sel = slice(None)
        if lon is not None and len(lon):
            minx, miny, maxx, maxy = geom.bounds
            sel = (lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy)
        geoms, loads, info = partition_community(
            geom,
            n=counts[c],
            target=target if counts[c] is None else None,
            points_lon=None if lon is None else lon[sel],
            points_lat=None if lat is None else lat[sel],
            points_weight=None if wt is None else wt[sel],
            **options,
        )
        codes, names = _codes_for(cov, c, geoms)
        before = np.asarray(cov.grids_of(c).geometry.array, dtype=object)
        info["compactness_before"] = round(mean_compactness(before), 4) if len(before) else None
        grids = [
            {"code": k, "name": nm, "geometry": g, "load": float(ld)}
            for k, nm, g, ld in zip(codes, names, geoms, loads, strict=True)
        ]
        grids.sort(key=lambda r: r["code"])
        bal = balance(np.asarray([r["load"] for r in grids]), target)
        bal.update(info)
        out.append(CommunityPartition(c, grids, np.asarray([r["load"] for r in grids]), bal))
    return out


def _codes_for(cov: Coverage, community: str, geoms: np.ndarray) -> tuple[list, list]:
    old = cov.grids_of(community)
    og = np.asarray(old.geometry.array, dtype=object)
    ov = np.array([[shapely.area(shapely.intersection(g, o)) for o in og] for g in geoms])
    codes: list[str | None] = [None] * len(geoms)
    names: list[str | None] = [None] * len(geoms)
    used: set[int] = set()
    if ov.size:
        for flat in np.argsort(-ov, axis=None):
            i, j = np.unravel_index(flat, ov.shape)
            if ov[i, j] <= 0:
                break
            if codes[i] is None and j not in used:
                codes[i] = str(old["code"].iloc[j])
                names[i] = str(old["name"].iloc[j])
                used.add(int(j))
    missing = [i for i, c in enumerate(codes) if c is None]
    for i, c in zip(missing, cov.next_codes(community, len(missing)), strict=True):
        codes[i] = c
        names[i] = f"网格{c[-3:]}"
    return codes, names
