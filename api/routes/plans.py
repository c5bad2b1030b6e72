"""Boundary plans: ``/plans`` (create, edit, undo/redo, auto-partition, impact, diff, publish).

Reads need no token; writes need a bearer token of role ``planner``, ``lead_planner`` or
``admin``. A plan belongs to the account that created it: only its owner, a lead planner
or an admin edits or publishes it (403 naming the owner otherwise).
A refused edit is a 422 with the reason and the topology findings; publishing a plan whose
communities changed in the published version since it was created is a 409. Each route
calls one function of :mod:`geogrid.services.plans` with the app's context.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query

from api.auth import OptionalAccountDep, require_role
from api.deps import ContextDep
from api.models.common import error_responses
from api.models.idempotency import IdempotencyKeyHeader
from api.models.plans import (
    AutoPartitioned,
    AutoPartitionIn,
    EditApplied,
    EditIn,
    EditToggled,
    Impact,
    Plan,
    PlanDetail,
    PlanDiff,
    PlanIn,
    PlanSummary,
    Published,
    Staffing,
    StaffingIn,
)
from geogrid.core.accounts import Account
from geogrid.core.plans.owners import PLAN_ROLES
from geogrid.core.scope import Scope
from geogrid.services import plans

__all__ = ["router"]

router = APIRouter(prefix="/plans", tags=["plans"])

PlannerDep = Annotated[Account, Depends(require_role(*PLAN_ROLES))]
PlanId = Annotated[int, Path(ge=1, description="plan id", examples=[7])]
Start = Annotated[
    datetime | None,
    Query(
        description="incident window start, ISO 8601 (naive: the city's local time; default: "
        "365 days before end)",
        examples=["2025-03-01T00:00:00+08:00"],
    ),
]
End = Annotated[
    datetime | None,
    Query(
        description="incident window end, ISO 8601 (naive: the city's local time; default: now)",
        examples=["2026-03-01T00:00:00+08:00"],
    ),
]
_WRITE_ERRORS = error_responses(400, 401, 403, 404, 409)


def _name(account: Account) -> str:
    return getattr(account, "ref", None) or getattr(account, "name", None) or str(account.id)


@router.post(
    "",
    status_code=201,
    response_model=Plan,
    summary="Create a plan",
    responses=error_responses(400, 401, 403, 404, 409),
)
def create(
    body: PlanIn,
    ctx: ContextDep,
    account: PlannerDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """Create a draft plan on the published version for some communities. Send an
    ``Idempotency-Key`` to retry safely: a retry answers the plan the first request made."""
    return plans.create_plan(
        ctx,
        body.communities,
        body.name,
        author=_name(account),
        owner=account,
        idempotency_key=idempotency_key,
    )


@router.get("", response_model=list[PlanSummary], summary="Every plan")
def list_all(ctx: ContextDep, account: OptionalAccountDep) -> list[dict[str, Any]]:
    """Every plan, oldest first, with its number of active edits (authors for staff)."""
    return plans.list_plans(ctx, viewer=Scope.of(account))


@router.get(
    "/{plan_id}",
    response_model=PlanDetail,
    summary="A plan, its grids and their metrics",
    responses=error_responses(400, 404),
)
def show(
    ctx: ContextDep,
    plan_id: PlanId,
    account: OptionalAccountDep,
    start: Start = None,
    end: End = None,
) -> dict[str, Any]:
    """The plan, its edits, its grids (GeoJSON, EPSG:4326) and their metrics with totals
    (who made it and its edits: for staff only)."""
    return plans.plan_detail(ctx, plan_id, start=start, end=end, viewer=Scope.of(account))


@router.post(
    "/{plan_id}/edits",
    status_code=201,
    response_model=EditApplied,
    summary="Apply one edit",
    responses=error_responses(400, 401, 403, 404, 409, 422),
)
def edit(
    body: Annotated[
        EditIn,
        Body(
            description="the edit: ``kind`` and its ``params`` (geometries GeoJSON, WGS84)",
            examples=[
                {
                    "kind": "merge",
                    "params": {"codes": ["450902001001003", "450902001001004"]},
                }
            ],
        ),
    ],
    ctx: ContextDep,
    plan_id: PlanId,
    account: PlannerDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """Apply one edit (split, merge, move_edge, reassign, rename, replace) to a draft plan;
    an edit that would break the partition is refused (422, with the findings) and
    nothing is stored. Send an ``Idempotency-Key`` to retry safely: a retry answers the
    first result and applies nothing twice."""
    params = body.params.model_dump(by_alias=True, exclude_none=True)
    return plans.add_edit(
        ctx,
        plan_id,
        body.kind,
        params,
        author=_name(account),
        actor=account,
        idempotency_key=idempotency_key,
    )


@router.post(
    "/{plan_id}/undo",
    response_model=EditToggled,
    summary="Undo the last edit",
    responses=_WRITE_ERRORS,
)
def undo(ctx: ContextDep, plan_id: PlanId, account: PlannerDep) -> dict[str, Any]:
    """Undo the last active edit (409 when there is none)."""
    return plans.undo(ctx, plan_id, actor=account)


@router.post(
    "/{plan_id}/redo",
    response_model=EditToggled,
    summary="Redo the first undone edit",
    responses=_WRITE_ERRORS,
)
def redo(ctx: ContextDep, plan_id: PlanId, account: PlannerDep) -> dict[str, Any]:
    """Redo the first undone edit (409 when there is none)."""
    return plans.redo(ctx, plan_id, actor=account)


@router.post(
    "/{plan_id}/autopartition",
    status_code=201,
    response_model=AutoPartitioned,
    summary="Re-cut communities into balanced grids",
    responses=error_responses(400, 401, 403, 404, 409, 422),
)
def autopartition(
    body: AutoPartitionIn, ctx: ContextDep, plan_id: PlanId, account: PlannerDep
) -> dict[str, Any]:
    """Re-cut communities of a draft plan into ``n`` grids (or grids under ``target``) of
    balanced load, stored as one undoable edit; answers the balance reached."""
    return plans.autopartition_plan(
        ctx,
        plan_id,
        communities=body.communities,
        n=body.n,
        target=body.target,
        load=body.load,
        cell_m=body.cell_m,
        shape=body.shape,
        start=body.start,
        end=body.end,
        seed=body.seed,
        author=_name(account),
        actor=account,
        follow_lines=body.follow_lines,
        smooth_m=body.smooth_m,
    )


@router.get(
    "/{plan_id}/impact",
    response_model=Impact,
    summary="Plan metrics beside the published grids",
    responses=error_responses(400, 404),
)
def impact(
    ctx: ContextDep,
    plan_id: PlanId,
    account: OptionalAccountDep,
    start: Start = None,
    end: End = None,
) -> dict[str, Any]:
    """Per-grid metrics and totals, plan and published side by side (workers' names
    masked unless the caller is a planner or an admin)."""
    return plans.impact(ctx, plan_id, start=start, end=end, viewer=Scope.of(account))


@router.get(
    "/{plan_id}/diff",
    response_model=PlanDiff,
    summary="What the plan changes",
    responses=error_responses(400, 404),
)
def diff(
    ctx: ContextDep,
    plan_id: PlanId,
    account: OptionalAccountDep,
    start: Start = None,
    end: End = None,
) -> dict[str, Any]:
    """New, removed, changed grids (table and GeoJSON); incidents and workers moving
    (workers' names masked unless the caller is a planner or an admin)."""
    return plans.diff(ctx, plan_id, start=start, end=end, viewer=Scope.of(account))


@router.post(
    "/{plan_id}/publish",
    response_model=Published,
    summary="Publish the plan as a new boundary version",
    responses=error_responses(400, 401, 403, 404, 409, 422),
)
def publish(ctx: ContextDep, plan_id: PlanId, account: PlannerDep) -> dict[str, Any]:
    """Validate and publish the plan as a new boundary version, in one transaction:
    incidents re-attributed (history kept, a ``reattributed`` event each), workers bound to
    their grids after the plan. Refused (409) when the plan has no edits or changes
    nothing, when its staffing is undecided, or when its communities changed since it was
    created (naming them); 403 unless the caller owns it or is a lead planner."""
    return plans.publish_plan(ctx, plan_id, author=_name(account), actor=account)


@router.get(
    "/{plan_id}/staffing",
    response_model=Staffing,
    summary="Every grid's workers after the plan",
    responses=error_responses(400, 404),
)
def staffing(ctx: ContextDep, plan_id: PlanId, account: OptionalAccountDep) -> dict[str, Any]:
    """Every grid's workers after the plan (default successors and the planner's
    decisions), and the grids with no worker or workers with no grid still to decide
    (workers' names masked unless the caller is a planner or an admin)."""
    return plans.get_staffing(ctx, plan_id, viewer=Scope.of(account))


@router.put(
    "/{plan_id}/staffing",
    response_model=Staffing,
    summary="Decide the staffing after the plan",
    responses=error_responses(400, 401, 403, 404, 409),
)
def decide_staffing(
    body: StaffingIn, ctx: ContextDep, plan_id: PlanId, account: PlannerDep
) -> dict[str, Any]:
    """Replace the plan's staffing decisions (assign, move, vacancy, release); answers the
    staffing with them."""
    return plans.set_staffing(ctx, plan_id, [d.model_dump() for d in body.decisions], actor=account)
