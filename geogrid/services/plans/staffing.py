"""Staffing after a plan: every grid's workers, what still needs a decision, and the
planner's decisions (``GET``/``PUT /plans/{id}/staffing``).

The default staffing and the decisions are explained in
:mod:`geogrid.core.plans.staffing`. A plan cannot be published while a grid would have no
worker or a worker no grid, unless a decision says so
(:func:`~geogrid.services.plans.publish.publish_plan` checks :func:`staffing_in`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from geogrid.core.accounts import Account
from geogrid.core.masking import mask_name
from geogrid.core.plans.edits import Coverage
from geogrid.core.plans.impact import worker_successors
from geogrid.core.plans.owners import PLAN_ROLES
from geogrid.core.plans.staffing import check_decisions, staffing_after
from geogrid.core.scope import Scope
from geogrid.services import audit
from geogrid.services.plans.drafts import base_coverage, check_change, replay
from geogrid.store import plans as store

if TYPE_CHECKING:  # the context holds the plan sessions: a type-only import, no cycle
    from geogrid.services.context import AppContext

__all__ = ["get_staffing", "set_staffing", "staffing_in", "disclose_staffing"]


def staffing_in(
    ctx: AppContext,
    conn: Connection,
    plan: Mapping[str, Any],
    cov: Coverage,
    decisions: Iterable[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The staffing of a plan whose current coverage is ``cov``, inside ``conn``, with its
    stored decisions (or ``decisions``, already checked).

    Returns
    -------
    dict  ``plan_id``; ``ready`` (nothing left to decide); ``grids`` (every plan grid:
    ``code``, ``name``, ``workers`` [{``account_id``, ``name``}], ``vacant``);
    ``workers`` (every worker of the plan's grids before or after: ``account_id``,
    ``name``, ``before``, ``after``, ``released``); ``issues`` (``kind``
    ``grid_without_worker`` or ``worker_without_grid``, ``grid``, ``account_id``,
    ``message``); ``decisions`` (``action``, ``grid``, ``account_id``); ``successors``
    (the default successor of each worker's old grid, with ``needs_decision``).
    """
    pid = int(plan["id"])
    base = base_coverage(ctx, conn, plan)
    workers = store.grid_workers(conn, base.grids["code"].tolist())
    successors = worker_successors(base.grids, workers, cov.grids)
    rows = list(store.staffing_rows(conn, pid) if decisions is None else decisions)
    codes = cov.grids["code"].tolist()
    staffed = set(workers["unit_code"])
    vacant_before = [c for c in base.grids["code"] if c not in staffed]
    after = staffing_after(codes, successors, rows, vacant_before)
    ids = {int(a) for a in workers["account_id"]} | set(after["workers"])
    accounts = store.worker_accounts(conn, sorted(ids))

    def who(aid: int) -> dict[str, Any]:
        a = accounts.get(aid, {})
        return {"account_id": aid, "name": a.get("name") or a.get("ref") or f"account {aid}"}

    before: dict[int, list[str]] = {}
    for aid, code in zip(workers["account_id"], workers["unit_code"], strict=True):
        before.setdefault(int(aid), []).append(str(code))
    vacant = set(after["vacant"])
    names = dict(zip(cov.grids["code"], cov.grids["name"], strict=True))
    return {
        "plan_id": pid,
        "ready": after["ready"],
        "grids": [
            {
                "code": c,
                "name": names.get(c),
                "workers": [who(a) for a in after["grids"].get(c, [])],
                "vacant": c in vacant,
            }
            for c in codes
        ],
        "workers": [
            who(aid)
            | {
                "before": sorted(before.get(aid, [])),
                "after": after["workers"].get(aid, []),
                "released": aid in after["released"],
            }
            for aid in sorted(ids)
        ],
        "issues": [
            {k: i[k] for k in ("kind", "grid", "account_id", "message")} for i in after["issues"]
        ],
        "decisions": [
            {"action": d["action"], "grid": d.get("grid"), "account_id": d.get("account_id")}
            for d in rows
        ],
        "successors": successors,
    }


def disclose_staffing(staffing: dict[str, Any], viewer: Scope | None) -> dict[str, Any]:
    """``staffing`` as ``viewer`` may see it: workers' names clear for the plan roles
    (planner, lead planner, admin) and the command line (None), masked (``李*``) for other
    staff, absent (None) for anonymous callers — staffing is the planners' work, the names
    are personal data."""
    if viewer is None or viewer.role in PLAN_ROLES:
        return staffing

    def hide(name: str | None) -> str | None:
        return None if viewer.is_public else mask_name(name)

    for grid in staffing.get("grids", []):
        for w in grid.get("workers", []):
            w["name"] = hide(w.get("name"))
    for w in [*staffing.get("workers", []), *staffing.get("successors", [])]:
        if "name" in w:
            w["name"] = hide(w["name"])
    return staffing


def get_staffing(ctx: AppContext, plan_id: int, *, viewer: Scope | None = None) -> dict[str, Any]:
    """The staffing of a plan after its current edits and decisions (:func:`staffing_in`),
    workers' names as ``viewer`` may see them (:func:`disclose_staffing`)."""
    with ctx.engine.connect() as conn:
        plan = store.plan_row(conn, plan_id)
        cov = replay(ctx, conn, plan, store.edit_rows(conn, plan_id))
        return disclose_staffing(staffing_in(ctx, conn, plan, cov), viewer)


def set_staffing(
    ctx: AppContext,
    plan_id: int,
    decisions: Iterable[Mapping[str, Any]],
    *,
    actor: Account | None = None,
) -> dict[str, Any]:
    """Replace the staffing decisions of a draft plan; returns the staffing with them.

    Each decision: ``action`` (``assign``, ``move``, ``vacancy`` or ``release``),
    ``grid`` (a grid of the plan) and/or ``account_id`` (an active worker account).

    Raises
    ------
    InvalidInput  an unknown action, a grid not in the plan, an account that is not an
        active worker
    Conflict  the plan is not a draft
    Forbidden  ``actor`` is neither the plan's owner nor a lead planner
    """
    given = [dict(d) for d in decisions]
    with ctx.engine.begin() as conn:
        plan = store.plan_row(conn, plan_id, lock=True)
        check_change(plan, actor)
        cov = replay(ctx, conn, plan, store.edit_rows(conn, plan_id))
        named = {int(d["account_id"]) for d in given if isinstance(d.get("account_id"), int)}
        active = [a for a, r in store.worker_accounts(conn, sorted(named)).items() if r["active"]]
        checked = check_decisions(given, cov.grids["code"].tolist(), active)
        store.replace_staffing(conn, plan_id, checked, None if actor is None else actor.id)
        audit.record(
            conn,
            actor=actor,
            action="plan.staffing",
            resource="plan",
            ids=[plan_id],
            detail={"decisions": len(checked)},
        )
        return staffing_in(ctx, conn, plan, cov, checked)
