"""Auto-partition a plan's communities into balanced grids, stored as one undoable edit.

The load balanced is the households of the building points, or the load index
(:mod:`geogrid.core.loadindex`: effort-weighted incidents of the window, households and
area, with the grid means of the base version as reference), as weighted points
(:func:`geogrid.core.plans.partition.load_points`). METIS runs once here; the edit stores
its result, so replaying the plan never re-runs it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from geogrid.core.accounts import Account
from geogrid.core.plans.partition import LOADS, autopartition, load_points
from geogrid.errors import InvalidInput
from geogrid.services.plans.drafts import add_edit, check_change, plan_coverage
from geogrid.services.plans.impact import impact_session
from geogrid.services.plans.reference import reference_lines_near

if TYPE_CHECKING:  # the context holds the plan sessions: a type-only import, no cycle
    from geogrid.services.context import AppContext

__all__ = ["autopartition_plan"]


def _storable(balance: Mapping[str, Any]) -> dict[str, Any]:
    """A balance dict as JSONB can store it: NumPy scalars as Python numbers, ±inf and NaN
    (an empty grid's max/min ratio) as None."""
    out: dict[str, Any] = {}
    for k, v in balance.items():
        if isinstance(v, (np.integer, np.floating, np.bool_)):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        out[k] = v
    return out


def autopartition_plan(
    ctx: AppContext,
    plan_id: int,
    *,
    communities: list[str] | None = None,
    n: int | None = None,
    target: float | None = None,
    load: str = "households",
    cell_m: float = 75.0,
    shape: str = "hex",
    start: Any = None,
    end: Any = None,
    seed: int = 0,
    author: str | None = None,
    actor: Account | None = None,
    follow_lines: bool = True,
    smooth_m: float | None = None,
) -> dict[str, Any]:
    """Re-cut communities of a draft plan (default: all of them) into ``n`` grids, or into
    grids under ``target`` load, stored as one edit (undoable).

    Parameters
    ----------
    load : ``households`` or ``load_index`` (incidents in ``[start, end)``, default the
        last 365 days)
    cell_m : cell size of the tessellation, metres
    shape : ``hex`` or ``square`` cells
    seed : METIS seed (the same inputs and seed give the same grids)
    follow_lines : cut along the stored reference lines (roads, rivers) when there are
        any near the communities (:mod:`~geogrid.services.plans.reference`)
    smooth_m : smoothing of stair-stepped cell edges, metres (default half a cell; 0:
        none)

    Returns
    -------
    dict  what :func:`~geogrid.services.plans.drafts.add_edit` returns, with ``balance``
    per community (``n``, ``total``, ``mean``, ``max``, ``min``, ``max_min_ratio`` (None
    when a grid has no load), ``cv``, ``target``, ``reached``, ``cells``, ...).
    """
    if load not in LOADS:
        raise InvalidInput("load", load, " or ".join(LOADS))
    plan, cov = plan_coverage(ctx, plan_id)
    check_change(plan, actor)
    own = list(plan["community_codes"])
    comms = list(communities or own)
    bad = [c for c in comms if c not in set(own)]
    if bad:
        raise InvalidInput("communities", bad, f"communities of plan {plan_id}")
    data = impact_session(ctx, plan_id, start=start, end=end).data
    lon, lat, wt = load_points(
        data.buildings,
        data.incidents[data.incidents["in_window"]],
        load=load,
        reference=data.reference,
        weights=data.weights,
    )
    lines = None
    if follow_lines:
        extent = shapely.union_all(np.asarray([cov.extent(c) for c in comms], dtype=object))
        xmin, ymin, xmax, ymax = (float(v) for v in extent.bounds)
        with ctx.engine.connect() as conn:
            lines = reference_lines_near(conn, (xmin, ymin, xmax, ymax))
    parts = autopartition(
        cov,
        comms,
        n=n,
        target=target,
        points_lon=lon,
        points_lat=lat,
        points_weight=wt,
        cell_m=cell_m,
        shape=shape,
        seed=seed,
        lines=lines,
        smooth_m=smooth_m,
    )
    balance = {p.community: _storable(p.balance) for p in parts}
    params = {
        "communities": comms,
        "n": n,
        "target": target,
        "load": load,
        "cell_m": cell_m,
        "shape": shape,
        "seed": seed,
        "follow_lines": follow_lines,
        "smooth_m": smooth_m,
        "balance": balance,
        "result": [
            {
                "community": p.community,
                "grids": [
                    {
                        "code": g["code"],
                        "name": g["name"],
                        "geometry": json.loads(shapely.to_geojson(g["geometry"])),
                    }
                    for g in p.grids
                ],
            }
            for p in parts
        ],
    }
    out = add_edit(ctx, plan_id, "autopartition", params, author=author, actor=actor)
    out["balance"] = balance
    return out
