"""Impact preview timings of a boundary plan on the demo database (1M incidents).

Usage::

    GEOGRID_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/gg_plans \\
        python -m bench.plan [--street CODE] [--keep]

Creates a plan over every community of the street with the most incidents (or
``--street``), then times: loading the plan's data and the first (from-scratch) impact
table; a one-grid edit (split the busiest grid) — the edit with its validation, and the
incremental impact update (re-join + table); re-cutting the busiest community with
auto-partition (METIS) — partition, edit and update; and, for comparison, a from-scratch
recomputation of the table. The plan is deleted afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import shapely
from sqlalchemy import text

from geogrid.core.plans.impact import plan_metrics
from geogrid.services import plans
from geogrid.services.context import AppContext


def _t(fn, *a, **k):
    t0 = time.perf_counter()
    out = fn(*a, **k)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--street")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    ctx = AppContext.open()
    eng = ctx.engine
    with eng.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM incident")).scalar_one()
        street = (
            args.street
            or conn.execute(
                text("SELECT street_code FROM incident GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
            ).scalar_one()
        )
        comms = (
            conn.execute(
                text(
                    "SELECT code FROM unit WHERE level = 'community' AND parent_code = :s AND "
                    "version_id = (SELECT id FROM boundary_version WHERE status = 'published') "
                    "ORDER BY code"
                ),
                {"s": street},
            )
            .scalars()
            .all()
        )
    out: dict = {"incidents_in_database": total, "street": street, "communities": len(comms)}
    plan = plans.create_plan(ctx, comms, "bench plan", author="bench")
    pid = plan["id"]
    try:
        rep, t_first = _t(plans.impact, ctx, pid)
        sess = plans.impact_session(ctx, pid)  # the session kept on ctx.plans
        out.update(
            grids=len(sess.grids),
            incidents_in_plan=len(sess.data.incidents),
            incidents_in_window=int(sess.data.incidents["in_window"].sum()),
            buildings_in_plan=len(sess.data.buildings),
            first_impact_s=round(t_first, 3),
        )
        # ---- one-grid edit: split the busiest grid through its interior point
        busiest = sess.table.sort_values("incidents").iloc[-1]["code"]
        g = sess.grids.geometry[sess.grids["code"] == busiest].item()
        p = shapely.point_on_surface(g)
        minx, miny, maxx, maxy = g.bounds
        line = {"type": "LineString", "coordinates": [[p.x, miny - 1e-3], [p.x, maxy + 1e-3]]}
        orig_update = sess.update
        timings = {}

        def timed_update(*a, **k):
            r, dt = _t(orig_update, *a, **k)
            timings["update"] = dt
            return r

        # time the session's update step inside add_edit (the bench's own wrapper)
        sess.update = timed_update  # type: ignore[method-assign]
        _, t_edit = _t(plans.add_edit, ctx, pid, "split", {"code": busiest, "line": line})
        _, t_rep = _t(plans.impact, ctx, pid)
        out["one_grid_edit"] = {
            "grid": busiest,
            "edit_and_validate_s": round(t_edit - timings["update"], 3),
            "impact_update_s": round(timings["update"], 4),
            "relocated_points": int(sess.relocated),
            "report_s": round(t_rep, 3),
        }
        # ---- re-cut the busiest community
        comm = sess.table.groupby("parent_code")["incidents"].sum().idxmax()
        n = int((sess.grids["parent_code"] == comm).sum())
        res, t_auto = _t(
            plans.autopartition_plan,
            ctx,
            pid,
            communities=[comm],
            n=n,
            load="load_index",
            cell_m=60,
        )
        out["recut_community"] = {
            "community": comm,
            "grids": n,
            "partition_edit_and_update_s": round(t_auto, 3),
            "impact_update_s": round(timings["update"], 4),
            "relocated_points": int(sess.relocated),
            "balance": {k: res["balance"][comm][k] for k in ("max_min_ratio", "cv", "cells")},
        }
        # ---- from scratch, for comparison
        _, cov = plans.plan_coverage(ctx, pid)
        scratch, t_scratch = _t(plan_metrics, sess.data, cov.grids)
        out["from_scratch_table_s"] = round(t_scratch, 3)
        same = np.allclose(scratch["incidents"], sess.table["incidents"]) and np.allclose(
            scratch["households"], sess.table["households"]
        )
        out["incremental_equals_scratch"] = bool(same)
        if not same:
            bad = np.flatnonzero(
                ~np.isclose(scratch["incidents"], sess.table["incidents"])
                | ~np.isclose(scratch["households"], sess.table["households"])
            )
            out["mismatch"] = {
                "scratch": scratch.iloc[bad[:5]][
                    ["code", "incidents", "households"]
                ].values.tolist(),
                "incremental": sess.table.iloc[bad[:5]][
                    ["code", "incidents", "households"]
                ].values.tolist(),
            }
        # ---- diff
        d, t_diff = _t(plans.diff, ctx, pid)
        out["diff"] = {
            "seconds": round(t_diff, 3),
            **d["summary"],
            "incidents_moving": d["incidents"]["count"],
            "workers_needing_decision": sum(w["needs_decision"] for w in d["workers"]),
        }
    finally:
        if not args.keep:
            plans.delete_plan(ctx, pid)
        ctx.close()
    print(json.dumps(out, indent=1, ensure_ascii=False, default=str))


if __name__ == "__main__":
    main()
