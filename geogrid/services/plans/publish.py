"""Publish a plan as a new boundary version, in one transaction.

1. Lock the plan and serialise publishers; refuse a plan that is not a draft, or whose
   communities changed in the published version since it was created (Conflict, 409).
2. Validate: every community exactly partitioned by contiguous grids, every grid under a
   plan community, every community under a street (TopologyError with the findings).
3. A new version: a copy of the published one with the plan communities' grids replaced;
   households and population prorated from the buildings to the community totals
   (largest remainder).
4. Re-attribute the incidents whose grid changes (their old codes kept in
   ``incident_attribution``); move the workers of removed grids to the grid overlapping
   theirs most.
5. Publish the version, record a ``map_change``, mark the plan published.

Readers see the old or the new version, never a mix.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from geogrid.core.plans.impact import worker_successors
from geogrid.core.plans.publish import (
    prorate_grid_units,
    publish_findings,
    reattribution,
    worker_moves,
)
from geogrid.errors import Conflict, TopologyError
from geogrid.services.plans.drafts import check_draft, replay
from geogrid.store import plans as store
from geogrid.store.changes import record_units_change
from geogrid.store.units import (
    copy_units,
    create_version,
    insert_units,
    load_units,
    publish_version,
    published_version_id,
)

if TYPE_CHECKING:  # the context holds the plan sessions: a type-only import, no cycle
    from geogrid.services.context import AppContext

__all__ = ["publish_plan"]


def publish_plan(ctx: AppContext, plan_id: int, *, author: str | None = None) -> dict[str, Any]:
    """Publish a draft plan as a new boundary version (see the module doc).

    Returns
    -------
    dict  ``plan_id``, ``version_id``, ``previous_version_id``, ``grids`` (of the plan),
    ``incidents_reattributed``, ``workers`` (every worker of an old grid: ``account_id``,
    ``from``, ``to``, ``overlap_share``, ``needs_decision``, ``reason``, ``reassigned``),
    ``workers_needing_decision`` and ``seconds``.

    Raises
    ------
    TopologyError  the plan's grids do not partition their communities
    Conflict  the plan is not a draft, or its communities changed in the published
        version since the plan was created
    """
    t0 = time.perf_counter()
    with ctx.engine.begin() as conn:
        plan = store.plan_row(conn, plan_id, lock=True)
        check_draft(plan)
        cov = replay(ctx, conn, plan, store.edit_rows(conn, plan_id))
        comms = list(plan["community_codes"])
        store.lock_publishing(conn)
        current = published_version_id(conn)
        base = int(plan["base_version_id"])
        if current is None:
            raise Conflict("no boundary version is published")
        if current != base and store.communities_snapshot(
            conn, base, comms
        ) != store.communities_snapshot(conn, current, comms):
            raise Conflict(
                f"plan {plan_id} is based on version {base}, but version {current} is "
                f"published now and changed communities {comms}: create a new plan"
            )
        findings = publish_findings(cov, comms, store.communities_with_street(conn, current, comms))
        if findings:
            raise TopologyError(
                f"plan {plan_id} cannot be published: {len(findings)} finding(s)", findings
            )
        old_grids = load_units(conn, "grid", version=current, parent_codes=comms)
        old_codes = old_grids["code"].tolist()
        parents = store.community_parents(conn, current, comms)
        xmin, ymin, xmax, ymax = (float(v) for v in cov.grids.total_bounds)
        new = prorate_grid_units(cov, store.buildings_in_bbox(conn, (xmin, ymin, xmax, ymax)))
        vid = create_version(
            conn,
            f"plan {plan_id}: {plan['name']}",
            source=f"plan {plan_id}",
            author=author or plan["author"],
            based_on=current,
            note=f"grids of communities {', '.join(comms)} redrawn",
        )
        copy_units(conn, current, vid, exclude_codes=old_codes)
        insert_units(conn, vid, new)
        # incidents of the old grids whose grid changes
        ids, lon, lat, grid_codes = store.incident_points(conn, old_codes)
        moves = reattribution(ids, lon, lat, grid_codes, new, parents)
        if len(moves):
            store.reattribute_incidents(conn, moves, vid, current)
        # workers of the old grids
        successors = worker_successors(
            old_grids, store.grid_workers(conn, old_codes, active_only=False), new
        )
        workers = worker_moves(successors, old_codes, new["code"].tolist())
        for w in workers:
            if w["reassigned"]:
                store.move_worker(conn, w["account_id"], w["from"], w["to"])
        publish_version(conn, vid)
        touched = sorted(set(old_codes) | set(new["code"]))
        record_units_change(conn, vid, touched, "publish", previous_version_id=current)
        store.mark_published(conn, plan_id, vid)
    ctx.plans.forget(plan_id)
    return {
        "plan_id": int(plan_id),
        "version_id": int(vid),
        "previous_version_id": current,
        "grids": int(len(new)),
        "incidents_reattributed": int(len(moves)),
        "workers": workers,
        "workers_needing_decision": [w for w in workers if w["needs_decision"]],
        "seconds": round(time.perf_counter() - t0, 2),
    }
