"""Draft plans: create, list, read, edit (validated), undo and redo.

A plan's current grids are the base version's grids of its communities with the active
(not undone) edits replayed in ``seq`` order (:func:`plan_coverage`). Undo marks the last
active edit undone, redo the first undone one; a new edit drops the undone ones (the
usual redo stack). Replayed coverages are kept on ``ctx.plans``
(:class:`~geogrid.services.plans.sessions.PlanSessions`) under the ids of the active edits,
so an interactive session replays nothing; after each change the plan's impact sessions
are brought up to date incrementally.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import Connection

from geogrid.core.accounts import Account
from geogrid.core.plans.edits import Coverage, apply_edit, coverage_change
from geogrid.core.plans.owners import require_plan_owner
from geogrid.core.scope import Scope
from geogrid.errors import Conflict, InvalidInput, NotFound
from geogrid.services import audit, idempotency
from geogrid.store import plans as store
from geogrid.store.units import load_units, published_version_id

if TYPE_CHECKING:  # the context holds the plan sessions: a type-only import, no cycle
    from geogrid.services.context import AppContext

__all__ = [
    "create_plan",
    "list_plans",
    "disclose_plan",
    "get_plan",
    "delete_plan",
    "plan_coverage",
    "plan_geojson",
    "add_edit",
    "undo",
    "redo",
    "check_draft",
    "check_change",
    "base_coverage",
    "replay",
]

#: params of an edit not repeated in its summary (geometries and results)
_BULKY = ("line", "polygon", "grids", "result")


# --------------------------------------------------------------------------- plans


def create_plan(
    ctx: AppContext,
    communities: Iterable[str],
    name: str,
    *,
    author: str | None = None,
    owner: Account | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Create a draft plan on the published version for ``communities``, owned by
    ``owner`` (None: no owner, e.g. from the command line); returns it as
    :func:`get_plan` does.

    With an ``idempotency_key``, a retry of the same request by the same owner creates no
    second plan: it answers the plan the first request created (as it is now).

    Raises
    ------
    InvalidInput  no community, an empty name, or a code that is not a community of the
        published version
    NotFound  no boundary version is published
    """
    given = list(communities)
    codes = sorted({str(c).strip() for c in given if str(c).strip()})
    if not codes:
        raise InvalidInput("communities", given, "one or more community codes")
    if not name or not str(name).strip():
        raise InvalidInput("name", name, "a non-empty plan name")
    principal = idempotency.principal_of(None if owner is None else owner.id)
    with ctx.engine.begin() as conn:
        first = idempotency.replay_or_claim(
            conn,
            idempotency_key,
            principal=principal,
            operation="create_plan",
            request={"communities": codes, "name": str(name).strip()},
        )
        if first is not None:
            return get_plan(ctx, int(first["id"]))
        vid = published_version_id(conn)
        if vid is None:
            raise NotFound("no boundary version is published: nothing to plan on")
        found = store.community_codes(conn, vid, codes)
        missing = [c for c in codes if c not in found]
        if missing:
            raise InvalidInput(
                "communities", missing, f"community codes of the published version {vid}"
            )
        pid = store.insert_plan(
            conn, str(name).strip(), author, vid, codes, None if owner is None else owner.id
        )
        audit.record(
            conn,
            actor=owner,
            action="plan.create",
            resource="plan",
            ids=[pid],
            detail={"communities": codes},
        )
        idempotency.remember(conn, idempotency_key, principal=principal, answer={"id": pid})
    return get_plan(ctx, pid)


#: who made a plan or an edit: staff references, not shown to anonymous callers
_PEOPLE = ("author", "owner", "owner_id")


def disclose_plan(plan: dict[str, Any], viewer: Scope | None) -> dict[str, Any]:
    """``plan`` (a row, a summary or a detail) as ``viewer`` may see it: who made it and
    its edits (staff references) for staff and the command line (None), None for
    anonymous callers."""
    if viewer is None or not viewer.is_public:
        return plan
    for key in _PEOPLE:
        if key in plan:
            plan[key] = None
    edits = plan.get("edits")
    for e in edits if isinstance(edits, list) else []:  # a list of edits, or their number
        if isinstance(e, dict) and "author" in e:
            e["author"] = None
    return plan


def list_plans(ctx: AppContext, *, viewer: Scope | None = None) -> list[dict[str, Any]]:
    """Every plan (id order) with ``edits``, its number of active edits (authors hidden
    from anonymous ``viewer``s: :func:`disclose_plan`)."""
    with ctx.engine.connect() as conn:
        return [disclose_plan(dict(r), viewer) for r in store.plan_rows(conn)]


def _summary(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in _BULKY}


def get_plan(ctx: AppContext, plan_id: int) -> dict[str, Any]:
    """The plan row with its edits (``summary``: the edit's parameters without geometry)."""
    with ctx.engine.connect() as conn:
        row = store.plan_row(conn, plan_id)
        row["edits"] = [
            {k: v for k, v in e.items() if k != "params"} | {"summary": _summary(e["params"])}
            for e in store.edit_rows(conn, plan_id)
        ]
    return row


def delete_plan(ctx: AppContext, plan_id: int, *, actor: Account | None = None) -> None:
    """Delete a plan and its edits (a published plan's boundary version stays).

    Raises Forbidden when ``actor`` is neither its owner nor a lead planner."""
    with ctx.engine.begin() as conn:
        require_plan_owner(actor, store.plan_row(conn, plan_id, lock=True))
        store.delete_plan(conn, plan_id)
        audit.record(conn, actor=actor, action="plan.delete", resource="plan", ids=[plan_id])
    ctx.plans.forget(plan_id)


def check_draft(plan: Mapping[str, Any]) -> None:
    """Raise :class:`~geogrid.errors.Conflict` unless the plan is a draft."""
    if plan["status"] != "draft":
        raise Conflict(f"plan {plan['id']} is {plan['status']}: only draft plans change")


def check_change(plan: Mapping[str, Any], actor: Account | None) -> None:
    """Raise unless the plan is a draft (Conflict) that ``actor`` may change (Forbidden:
    only its owner or a lead planner; None, the command line, may)."""
    require_plan_owner(actor, plan)
    check_draft(plan)


# --------------------------------------------------------------------------- coverage


def base_coverage(ctx: AppContext, conn: Connection, plan: Mapping[str, Any]) -> Coverage:
    """The plan's communities and their grids in its base version (kept on ``ctx.plans``)."""
    pid = int(plan["id"])
    hit = ctx.plans.base(pid)
    if hit is not None:
        return hit
    vid = int(plan["base_version_id"])
    codes = list(plan["community_codes"])
    comms = load_units(conn, "community", version=vid, codes=codes)
    grids = load_units(conn, "grid", version=vid, parent_codes=codes)
    cov = Coverage(
        comms[["code", "name", "parent_code", "households", "population", "geometry"]],
        gpd.GeoDataFrame(
            grids[["code", "name", "parent_code"]], geometry=grids.geometry.values, crs="EPSG:4326"
        ),
        frozenset(grids["code"]),
    )
    ctx.plans.keep_base(pid, cov)
    return cov


def replay(
    ctx: AppContext, conn: Connection, plan: Mapping[str, Any], edits: list[dict[str, Any]]
) -> Coverage:
    """The plan's coverage after its active edits, continuing from the kept one when it is
    a prefix of them."""
    pid = int(plan["id"])
    active = [e for e in edits if not e["undone"]]
    ids = tuple(int(e["id"]) for e in active)
    hit = ctx.plans.current(pid)
    if hit is not None and hit[0] == ids:
        return hit[1]
    start, cov = 0, base_coverage(ctx, conn, plan)
    if hit is not None and ids[: len(hit[0])] == hit[0]:
        start, cov = len(hit[0]), hit[1]
    for e in active[start:]:
        cov, _ = apply_edit(cov, e["kind"], e["params"])
    ctx.plans.keep_current(pid, ids, cov)
    return cov


def plan_coverage(ctx: AppContext, plan_id: int) -> tuple[dict[str, Any], Coverage]:
    """The plan row and its current coverage (base grids + active edits)."""
    with ctx.engine.connect() as conn:
        plan = store.plan_row(conn, plan_id)
        edits = store.edit_rows(conn, plan_id)
        return plan, replay(ctx, conn, plan, edits)


def plan_geojson(ctx: AppContext, plan_id: int) -> dict[str, Any]:
    """The plan's grids as a GeoJSON FeatureCollection (EPSG:4326)."""
    _, cov = plan_coverage(ctx, plan_id)
    out: dict[str, Any] = json.loads(cov.grids.to_json(drop_id=True))
    return out


def _after_change(ctx: AppContext, plan_id: int, old: Coverage, new: Coverage) -> None:
    """Bring the plan's impact sessions to the new coverage (incrementally)."""
    with ctx.plans.lock:
        sessions = ctx.plans.impact_sessions(plan_id)
        if sessions:
            change = coverage_change(old, new)
            for s in sessions:
                s.update(new.grids, change)


# --------------------------------------------------------------------------- edits


def _param_value(o: Any) -> Any:
    """JSON for what :func:`json.dumps` cannot store in ``plan_edit.params``: shapely
    geometries (as GeoJSON) and NumPy scalars."""
    if isinstance(o, shapely.Geometry):
        return json.loads(shapely.to_geojson(o))
    if isinstance(o, (np.integer, np.floating, np.bool_)):
        return o.item()
    raise InvalidInput("params", type(o).__name__, "JSON values and GeoJSON geometries")


def add_edit(
    ctx: AppContext,
    plan_id: int,
    kind: str,
    params: Mapping[str, Any],
    *,
    author: str | None = None,
    actor: Account | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Apply one edit to a draft plan and store it (see :mod:`geogrid.core.plans.edits` for
    the kinds and their parameters; geometries GeoJSON/WKT in WGS84).

    Returns ``edit_id``, ``seq``, ``kind``, ``community``, the grid codes ``removed``,
    ``added``, ``modified`` and ``grids`` (the number of grids after the edit).

    Raises
    ------
    InvalidInput  unknown kind or bad parameters
    TopologyError  the edit would break the partition (nothing is stored)
    Conflict  the plan is not a draft
    Forbidden  ``actor`` is neither the plan's owner nor a lead planner

    With an ``idempotency_key``, a retry of the same edit answers the first result and
    applies nothing twice.
    """
    if not isinstance(params, Mapping):
        raise InvalidInput("params", params, "a JSON object")
    params = dict(params)
    principal = idempotency.principal_of(None if actor is None else actor.id)
    with ctx.engine.begin() as conn:
        first = idempotency.replay_or_claim(
            conn,
            idempotency_key,
            principal=principal,
            operation="plan_edit",
            request={"plan_id": int(plan_id), "kind": kind, "params": params},
        )
        if first is not None:
            return first
        plan = store.plan_row(conn, plan_id, lock=True)
        check_change(plan, actor)
        edits = store.edit_rows(conn, plan_id)
        before = replay(ctx, conn, plan, edits)
        after, res = apply_edit(before, kind, params)
        store.drop_undone_edits(conn, plan_id)
        active = [e for e in edits if not e["undone"]]
        seq = max((int(e["seq"]) for e in active), default=0) + 1
        eid = store.insert_edit(
            conn, plan_id, seq, kind, json.dumps(params, default=_param_value), author
        )
        store.touch_plan(conn, plan_id)
        out = {
            "edit_id": eid,
            "seq": seq,
            "kind": kind,
            "community": res.community,
            "removed": res.removed,
            "added": res.added,
            "modified": res.modified,
            "grids": len(after.grids),
        }
        audit.record(
            conn,
            actor=actor,
            action="plan.edit",
            resource="plan",
            ids=[plan_id],
            detail={"edit_id": eid, "seq": seq, "kind": kind},
        )
        idempotency.remember(
            conn, idempotency_key, principal=principal, answer=out, resource_id=eid
        )
    ctx.plans.keep_current(plan_id, (*(int(e["id"]) for e in active), eid), after)
    _after_change(ctx, plan_id, before, after)
    return out


def _undo_redo(ctx: AppContext, plan_id: int, undo: bool, actor: Account | None) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        plan = store.plan_row(conn, plan_id, lock=True)
        check_change(plan, actor)
        edits = store.edit_rows(conn, plan_id)
        before = replay(ctx, conn, plan, edits)
        if undo:
            cand = [e for e in edits if not e["undone"]]
            if not cand:
                raise Conflict(f"plan {plan_id} has no edit to undo")
            target = cand[-1]
        else:
            cand = [e for e in edits if e["undone"]]
            if not cand:
                raise Conflict(f"plan {plan_id} has no undone edit to redo")
            target = cand[0]
        store.set_edit_undone(conn, target["id"], undo)
        store.touch_plan(conn, plan_id)
        audit.record(
            conn,
            actor=actor,
            action="plan.undo" if undo else "plan.redo",
            resource="plan",
            ids=[plan_id],
            detail={"edit_id": int(target["id"]), "seq": int(target["seq"])},
        )
        target["undone"] = undo
        after = replay(ctx, conn, plan, edits)
    _after_change(ctx, plan_id, before, after)
    return {
        "edit_id": int(target["id"]),
        "seq": int(target["seq"]),
        "kind": target["kind"],
        "undone": undo,
        "grids": len(after.grids),
    }


def undo(ctx: AppContext, plan_id: int, *, actor: Account | None = None) -> dict[str, Any]:
    """Undo the last active edit of a draft plan (Conflict when there is none; Forbidden
    when ``actor`` is neither its owner nor a lead planner)."""
    return _undo_redo(ctx, plan_id, True, actor)


def redo(ctx: AppContext, plan_id: int, *, actor: Account | None = None) -> dict[str, Any]:
    """Redo the first undone edit of a draft plan (Conflict when there is none; Forbidden
    when ``actor`` is neither its owner nor a lead planner)."""
    return _undo_redo(ctx, plan_id, False, actor)
