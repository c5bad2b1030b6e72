"""Boundary plans: ``/plans`` (create, edit, undo/redo, auto-partition, impact, diff, publish).

Reads need no token; writes need a bearer token of role ``planner`` or ``admin``.
A refused edit is a 422 with the reason and the topology findings; publishing a plan whose
communities changed in the published version since it was created is a 409.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from api.auth import require_role
from api.deps import EngineDep
from geogrid.core.accounts import Account
from geogrid.store import plans as store

router = APIRouter(prefix="/plans", tags=["plans"])

PlannerDep = Annotated[Account, Depends(require_role("planner", "admin"))]
PlanId = Annotated[int, Path(ge=1, description="plan id")]
Start = Annotated[
    datetime | None, Query(description="incident window start (default: 365 days before end)")
]
End = Annotated[datetime | None, Query(description="incident window end (default: now)")]


class PlanIn(BaseModel):
    name: str = Field(min_length=1, description="plan name")
    communities: list[str] = Field(min_length=1, description="community codes to redraw")


class EditIn(BaseModel):
    kind: str = Field(description="split, merge, move_edge, reassign, rename, replace")
    params: dict[str, Any] = Field(
        default_factory=dict, description="edit parameters; geometries as GeoJSON (WGS84)"
    )


class AutoPartitionIn(BaseModel):
    communities: list[str] | None = Field(None, description="default: all of the plan's")
    n: int | None = Field(None, ge=1, description="number of grids")
    target: float | None = Field(None, gt=0, description="maximum load per grid")
    load: str = Field("households", description="households or load_index")
    cell_m: float = Field(75.0, gt=5, le=1000, description="cell size in metres")
    shape: str = Field("hex", description="hex or square")
    seed: int = 0


def _name(account: Account) -> str:
    return getattr(account, "ref", None) or getattr(account, "name", None) or str(account.id)


@router.post("", status_code=201)
def create(body: PlanIn, engine: EngineDep, account: PlannerDep) -> dict:
    """Create a plan on the published version for some communities."""
    return store.create_plan(engine, body.communities, body.name, author=_name(account))


@router.get("")
def list_all(engine: EngineDep) -> list[dict]:
    return store.list_plans(engine)


@router.get("/{plan_id}")
def show(engine: EngineDep, plan_id: PlanId, start: Start = None, end: End = None) -> dict:
    """The plan, its edits, its grids (GeoJSON) and their metrics with totals."""
    out = store.get_plan(engine, plan_id)
    out["grids"] = store.plan_geojson(engine, plan_id)
    rep = store.impact(engine, plan_id, start=start, end=end)
    out["metrics"] = rep["plan"]
    return out


@router.post("/{plan_id}/edits", status_code=201)
def edit(body: EditIn, engine: EngineDep, plan_id: PlanId, account: PlannerDep) -> dict:
    return store.add_edit(engine, plan_id, body.kind, body.params, author=_name(account))


@router.post("/{plan_id}/undo")
def undo(engine: EngineDep, plan_id: PlanId, account: PlannerDep) -> dict:
    return store.undo(engine, plan_id)


@router.post("/{plan_id}/redo")
def redo(engine: EngineDep, plan_id: PlanId, account: PlannerDep) -> dict:
    return store.redo(engine, plan_id)


@router.post("/{plan_id}/autopartition", status_code=201)
def autopartition(
    body: AutoPartitionIn, engine: EngineDep, plan_id: PlanId, account: PlannerDep
) -> dict:
    return store.autopartition_plan(
        engine,
        plan_id,
        communities=body.communities,
        n=body.n,
        target=body.target,
        load=body.load,
        cell_m=body.cell_m,
        shape=body.shape,
        seed=body.seed,
        author=_name(account),
    )


@router.get("/{plan_id}/impact")
def impact(engine: EngineDep, plan_id: PlanId, start: Start = None, end: End = None) -> dict:
    """Per-grid metrics and totals, plan and published side by side."""
    return store.impact(engine, plan_id, start=start, end=end)


@router.get("/{plan_id}/diff")
def diff(engine: EngineDep, plan_id: PlanId, start: Start = None, end: End = None) -> dict:
    """New, removed, changed grids (table and GeoJSON); incidents and workers moving."""
    return store.diff(engine, plan_id, start=start, end=end)


@router.post("/{plan_id}/publish")
def publish(engine: EngineDep, plan_id: PlanId, account: PlannerDep) -> dict:
    return store.publish_plan(engine, plan_id, author=_name(account))
