"""What publishing a plan computes: validation findings, the new grid units (households
and population prorated from buildings), the incidents that change grid, and the workers
that follow their grid.

All pure: the service :mod:`geogrid.services.plans` reads the rows, calls these, and
writes the results in one transaction. Geometries are WGS84 (EPSG:4326); areas are
computed in the metric CRS of the grids (:func:`geogrid.core.crs.metric_crs`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geogrid.core.plans.edits import Coverage, check_community
from geogrid.core.plans.impact import codes_at, locate_points, shape_metrics

__all__ = [
    "publish_findings",
    "largest_remainder",
    "prorate_grid_units",
    "reattribution",
    "worker_moves",
    "unchanged_grids",
]


def _orphan(code: str, level: str, message: str) -> dict[str, Any]:
    return {
        "kind": "orphan",
        "codes": [code],
        "level": level,
        "location": None,
        "area_m2": 0.0,
        "message": message,
    }


def publish_findings(
    cov: Coverage, communities: Sequence[str], with_street: Collection[str]
) -> list[Any]:
    """Why a plan cannot be published: every community must be exactly partitioned by
    contiguous grids (:func:`~geogrid.core.plans.edits.check_community`), every grid must
    be under a plan community, and every community must exist under a street in the
    published version (``with_street``: the communities that do). Empty when it can."""
    findings: list[Any] = []
    for c in communities:
        findings.extend(check_community(cov, c, contiguous=list(cov.grids_of(c)["code"])))
    orphans = cov.grids[~cov.grids["parent_code"].isin(list(communities))]
    for code in orphans["code"]:
        findings.append(_orphan(code, "grid", f"grid {code} is not under a plan community"))
    for c in communities:
        if c not in with_street:
            findings.append(_orphan(c, "community", f"community {c} is missing or has no street"))
    return findings


def largest_remainder(x: np.ndarray, total: int) -> np.ndarray:
    """Round non-negative shares ``x`` down to integers, then give the units still missing
    to ``total`` to the largest remainders (Hamilton's method); sums to ``total`` when
    ``sum(x) == total``.

    >>> largest_remainder(np.array([1.5, 1.3, 0.2]), 3).tolist()
    [2.0, 1.0, 0.0]
    """
    base = np.floor(x)
    rest = int(total - base.sum())
    if rest > 0:
        base[np.argsort(-(x - base), kind="stable")[:rest]] += 1
    return base


def unchanged_grids(old: gpd.GeoDataFrame, new: gpd.GeoDataFrame) -> list[str]:
    """Codes of the grids of ``new`` that are in ``old`` with the same code, name, parent
    and geometry (equal after normalisation, to 1e-9 degrees): the grids a publish keeps.

    >>> import shapely
    >>> sq = shapely.box(0, 0, 1, 1)
    >>> a = gpd.GeoDataFrame({"code": ["g1", "g2"], "name": ["a", "b"],
    ...     "parent_code": ["c", "c"]}, geometry=[sq, shapely.box(1, 0, 2, 1)])
    >>> b = gpd.GeoDataFrame({"code": ["g1", "g2"], "name": ["a", "b"],
    ...     "parent_code": ["c", "c"]}, geometry=[sq, shapely.box(1, 0, 2, 2)])
    >>> unchanged_grids(a, b)
    ['g1']
    """
    before = {
        str(c): (n, p, g)
        for c, n, p, g in zip(
            old["code"], old["name"], old["parent_code"], old.geometry.array, strict=True
        )
    }
    out = []
    for c, n, p, g in zip(
        new["code"], new["name"], new["parent_code"], new.geometry.array, strict=True
    ):
        was = before.get(str(c))
        if was is None or was[0] != n or was[1] != p:
            continue
        if shapely.equals_exact(shapely.normalize(was[2]), shapely.normalize(g), 1e-9) or (
            shapely.equals(was[2], g)
        ):
            out.append(str(c))
    return out


def prorate_grid_units(
    cov: Coverage, buildings: pd.DataFrame, fixed: pd.DataFrame | None = None
) -> gpd.GeoDataFrame:
    """Unit rows (level ``grid``) of the plan's grids.

    ``households`` and ``population`` are the building points' (``buildings``: ``lon``,
    ``lat``, ``households``, ``population``) in each grid, scaled so each community's
    grids add up to the community's stored totals (integers, largest remainder);
    ``area_m2`` in the metric CRS. ``fixed`` (``code``, ``households``, ``population``):
    grids whose numbers are kept as they are (unchanged grids); the others share what is
    left of their community's totals.
    """
    grids = cov.grids.reset_index(drop=True)
    n = len(grids)
    hh: np.ndarray = np.zeros(n)
    pop: np.ndarray = np.zeros(n)
    if len(buildings):
        pos = locate_points(
            grids.geometry.array,
            buildings["lon"].to_numpy(dtype=float),
            buildings["lat"].to_numpy(dtype=float),
        )
        ok = pos >= 0
        hh = np.bincount(
            pos[ok], weights=buildings["households"].to_numpy(dtype=float)[ok], minlength=n
        )
        pop = np.bincount(
            pos[ok], weights=buildings["population"].to_numpy(dtype=float)[ok], minlength=n
        )
    keep = np.zeros(n, dtype=bool)
    if fixed is not None and len(fixed):
        f = fixed.set_index("code")
        keep = grids["code"].isin(f.index).to_numpy()
        kept = grids["code"][keep]
        hh[keep] = f.loc[kept, "households"].to_numpy(dtype=float)
        pop[keep] = f.loc[kept, "population"].to_numpy(dtype=float)
    comm = cov.communities.set_index("code")
    for c in comm.index:
        in_c = (grids["parent_code"] == c).to_numpy()
        sel = in_c & ~keep
        for arr, col in ((hh, "households"), (pop, "population")):
            s = arr[sel].sum()
            want = max(float(comm.at[c, col] or 0) - float(arr[in_c & keep].sum()), 0.0)
            if s > 0 and want > 0:
                arr[sel] = largest_remainder(arr[sel] / s * want, int(round(want)))
    return gpd.GeoDataFrame(
        {
            "code": grids["code"],
            "name": grids["name"],
            "level": "grid",
            "parent_code": grids["parent_code"],
            "population": np.round(pop).astype(np.int64),
            "households": np.round(hh).astype(np.int64),
            "area_m2": shape_metrics(grids.geometry)["area_m2"].to_numpy(),
        },
        geometry=grids.geometry.values,
        crs="EPSG:4326",
    )


def reattribution(
    ids: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    grid_codes: np.ndarray,
    new_grids: gpd.GeoDataFrame,
    parents: Mapping[str, tuple[str | None, str | None]],
) -> pd.DataFrame:
    """The incidents whose grid changes with ``new_grids``, with their new codes.

    Parameters
    ----------
    ids, lon, lat, grid_codes : arrays  incidents (WGS84) and their grid code now
    new_grids : GeoDataFrame  ``code``, ``parent_code``, geometry (EPSG:4326)
    parents : mapping  community code → (street code, district code)

    Returns
    -------
    DataFrame  ``id``, ``grid``, ``community``, ``street``, ``district`` (None outside
    every new grid) of the incidents that change grid only.
    """
    cols = ["id", "grid", "community", "street", "district"]
    if len(ids) == 0:
        return pd.DataFrame(columns=cols)
    pos = locate_points(new_grids.geometry.array, lon, lat)
    codes = codes_at(new_grids["code"], pos)
    change = codes != np.asarray(grid_codes, dtype=object)
    codes = codes[change]
    parent = dict(zip(new_grids["code"], new_grids["parent_code"], strict=True))
    comm = [parent.get(c) if c is not None else None for c in codes]
    chain = [parents.get(c, (None, None)) if c is not None else (None, None) for c in comm]
    return pd.DataFrame(
        {
            "id": np.asarray(ids)[change],
            "grid": codes,
            "community": comm,
            "street": [s or None for s, _ in chain],
            "district": [d or None for _, d in chain],
        },
        columns=cols,
    )


def worker_moves(
    successors: list[dict[str, Any]], old_codes: Collection[str], new_codes: Collection[str]
) -> list[dict[str, Any]]:
    """The successors (:func:`~geogrid.core.plans.impact.worker_successors`) with
    ``reassigned``: True for a worker whose grid is gone and who has a successor grid (the
    publish moves them); a worker whose grid stays keeps it.

    >>> worker_moves([{"from": "a", "to": "b"}, {"from": "c", "to": "c"}], ["a", "c"], ["b", "c"])
    [{'from': 'a', 'to': 'b', 'reassigned': True}, {'from': 'c', 'to': 'c', 'reassigned': False}]
    """
    gone = set(old_codes) - set(new_codes)
    return [w | {"reassigned": w["from"] in gone and w["to"] is not None} for w in successors]
