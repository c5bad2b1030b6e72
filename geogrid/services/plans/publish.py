"""Publish a plan as a new boundary version, in one transaction.

1. Lock the plan and serialise publishers; refuse a plan that is not a draft, that the
   publisher does not own (only the owner or a lead planner publishes, Forbidden), that
   has no edits or changes nothing ("nothing to publish", Conflict), or whose communities
   changed in the published version since it was created (Conflict naming exactly those
   communities).
2. Validate: every community exactly partitioned by contiguous grids, every grid under a
   plan community, every community under a street (TopologyError with the findings).
3. Staffing: no grid may be left with no worker and no worker with no grid unless the
   planner decided so (:mod:`~geogrid.services.plans.staffing`; Conflict listing what is
   undecided).
4. A new version: the published one's units carried over with their ``valid_from``, except
   the grids the plan changes or removes, which are replaced by the plan's new and changed
   grids (households and population of those prorated from the buildings to what the
   community's unchanged grids leave of its totals, largest remainder). Unchanged grids
   keep their numbers and ``valid_from``.
5. Re-attribute the incidents whose grid changes (their old codes kept in
   ``incident_attribution``, a ``reattributed`` event in each one's history); bind the
   workers to their grids after the plan.
6. Publish the version, record a ``map_change`` of the changed grids, mark the plan
   published.

Readers see the old or the new version, never a mix.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from geogrid.core.accounts import Account
from geogrid.core.plans.publish import (
    prorate_grid_units,
    publish_findings,
    reattribution,
    unchanged_grids,
)
from geogrid.errors import Conflict, TopologyError
from geogrid.services import audit
from geogrid.services.plans.drafts import check_change, replay
from geogrid.services.plans.staffing import staffing_in
from geogrid.services.registry_import import reattribute_registry
from geogrid.store import plans as store
from geogrid.store.changes import record_units_change
from geogrid.store.units import (
    create_version,
    insert_units,
    load_units,
    publish_version,
    published_version_id,
)

if TYPE_CHECKING:  # the context holds the plan sessions: a type-only import, no cycle
    from geogrid.services.context import AppContext

__all__ = ["publish_plan"]


def publish_plan(
    ctx: AppContext,
    plan_id: int,
    *,
    author: str | None = None,
    actor: Account | None = None,
) -> dict[str, Any]:
    """Publish a draft plan as a new boundary version (see the module doc).

    Returns
    -------
    dict  ``plan_id``, ``version_id``, ``previous_version_id``, ``grids`` (of the plan),
    ``grids_changed`` (new or changed grids written), ``grids_unchanged`` (kept as they
    were), ``grids_removed``, ``incidents_reattributed``, ``workers`` (every worker of an
    old grid: ``account_id``, ``from``, ``to`` (default successor), ``overlap_share``,
    ``needs_decision``, ``reason``, ``reassigned``: no longer on ``from``),
    ``workers_needing_decision``, ``staffing`` (every grid's workers after publishing) and
    ``seconds``.

    Raises
    ------
    TopologyError  the plan's grids do not partition their communities
    Conflict  the plan is not a draft, has nothing to publish, leaves staffing undecided,
        or its communities changed in the published version since the plan was created
    Forbidden  ``actor`` is neither the plan's owner nor a lead planner
    """
    t0 = time.perf_counter()
    with ctx.engine.begin() as conn:
        plan = store.plan_row(conn, plan_id, lock=True)
        check_change(plan, actor)
        edits = store.edit_rows(conn, plan_id)
        if not any(not e["undone"] for e in edits):
            raise Conflict(f"plan {plan_id} has no edits: nothing to publish")
        cov = replay(ctx, conn, plan, edits)
        comms = list(plan["community_codes"])
        store.lock_publishing(conn)
        current = published_version_id(conn)
        base = int(plan["base_version_id"])
        if current is None:
            raise Conflict("no boundary version is published")
        if current != base:
            before = store.community_fingerprints(conn, base, comms)
            now = store.community_fingerprints(conn, current, comms)
            changed = [c for c in comms if before.get(c) != now.get(c)]
            if changed:
                raise Conflict(
                    f"plan {plan_id} is based on version {base}, but version {current} is "
                    f"published now and changed communities {', '.join(changed)}: "
                    "create a new plan"
                )
        findings = publish_findings(cov, comms, store.communities_with_street(conn, current, comms))
        if findings:
            raise TopologyError(
                f"plan {plan_id} cannot be published: {len(findings)} finding(s)", findings
            )
        old_grids = load_units(conn, "grid", version=current, parent_codes=comms)
        same = set(unchanged_grids(old_grids, cov.grids))
        gone = [c for c in old_grids["code"] if c not in same]
        if not gone and len(same) == len(cov.grids):
            raise Conflict(
                f"plan {plan_id} changes no grid of the published version: nothing to publish"
            )
        staffing = staffing_in(ctx, conn, plan, cov)
        if not staffing["ready"]:
            raise Conflict(
                f"plan {plan_id} cannot be published until its staffing is decided "
                f"(PUT /plans/{plan_id}/staffing): "
                + "; ".join(i["message"] for i in staffing["issues"])
            )
        parents = store.community_parents(conn, current, comms)
        xmin, ymin, xmax, ymax = (float(v) for v in cov.grids.total_bounds)
        fixed = old_grids[old_grids["code"].isin(same)][["code", "households", "population"]]
        all_new = prorate_grid_units(
            cov, store.buildings_in_bbox(conn, (xmin, ymin, xmax, ymax)), fixed
        )
        new = all_new[~all_new["code"].isin(same)]
        vid = create_version(
            conn,
            f"plan {plan_id}: {plan['name']}",
            source=f"plan {plan_id}",
            author=author or plan["author"],
            based_on=current,
            note=f"grids of communities {', '.join(comms)} redrawn",
        )
        store.carry_units(conn, current, vid, gone)
        insert_units(conn, vid, new)
        # incidents of the changed and removed grids whose grid changes
        ids, lon, lat, grid_codes = store.incident_points(conn, gone)
        moves = reattribution(ids, lon, lat, grid_codes, all_new, parents)
        if len(moves):
            store.reattribute_incidents(
                conn,
                moves,
                vid,
                current,
                actor_id=None if actor is None else actor.id,
                plan_id=plan_id,
            )
        # issue 15: registry records of the changed grids follow them
        registry_moved = reattribute_registry(conn, vid, new["code"].tolist())
        # workers: bound to their grids after the plan (default successors + decisions)
        old_codes = old_grids["code"].tolist()
        for w in staffing["workers"]:
            store.set_worker_grids(conn, w["account_id"], old_codes, w["after"])
        publish_version(conn, vid)
        touched = sorted(set(gone) | set(new["code"]))
        record_units_change(conn, vid, touched, "publish", previous_version_id=current)
        store.mark_published(conn, plan_id, vid)
        audit.record(
            conn,
            actor=actor,
            action="plan.publish",
            resource="plan",
            ids=[plan_id],
            detail={"version_id": int(vid), "previous_version_id": int(current)},
        )
        # the version times are the commit's: the last statement of the transaction
        store.stamp_publish(conn, vid, current, moves["id"].tolist() if len(moves) else [])
    ctx.plans.forget(plan_id)
    after_of = {w["account_id"]: set(w["after"]) for w in staffing["workers"]}
    workers = [
        dict(w) | {"reassigned": w["from"] not in after_of.get(w["account_id"], set())}
        for w in staffing["successors"]
    ]
    staffing.pop("successors")
    return {
        "plan_id": int(plan_id),
        "version_id": int(vid),
        "previous_version_id": current,
        "grids": int(len(all_new)),
        "grids_changed": int(len(new)),
        "grids_unchanged": len(same),
        "grids_removed": len([c for c in gone if c not in set(all_new["code"])]),
        "incidents_reattributed": int(len(moves)),
        "registry_reattributed": registry_moved,
        "workers": workers,
        "workers_needing_decision": [w for w in workers if w["needs_decision"]],
        "staffing": staffing,
        "seconds": round(time.perf_counter() - t0, 2),
    }
