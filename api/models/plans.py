"""Requests and answers of ``/plans``: plans, their edits (one model per edit kind, a union
discriminated on ``kind``), auto-partition, impact, diff and publish.

Geometries are GeoJSON (RFC 7946) in WGS84 (EPSG:4326, lon/lat degrees).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.models.common import ApiModel, Feature, FeatureCollection

__all__ = [
    "PlanIn",
    "LineGeometry",
    "PolygonGeometry",
    "SplitParams",
    "MergeParams",
    "MoveEdgeParams",
    "ReassignParams",
    "RenameParams",
    "ReplaceGrid",
    "ReplaceParams",
    "SplitEdit",
    "MergeEdit",
    "MoveEdgeEdit",
    "ReassignEdit",
    "RenameEdit",
    "ReplaceEdit",
    "EditIn",
    "AutoPartitionIn",
    "PlanEdit",
    "PlanSummary",
    "Plan",
    "PlanDetail",
    "EditApplied",
    "EditToggled",
    "Balance",
    "AutoPartitioned",
    "GridMetrics",
    "MetricTotals",
    "ImpactSide",
    "Impact",
    "GridChange",
    "GridChangeFeature",
    "GridChangeCollection",
    "IncidentMove",
    "IncidentMoves",
    "WorkerSuccessor",
    "WorkerMove",
    "DiffSummary",
    "PlanDiff",
    "Published",
    "StaffingDecision",
    "StaffingIn",
    "StaffingWorker",
    "GridStaffing",
    "WorkerStaffing",
    "StaffingIssue",
    "StaffingDecisionOut",
    "Staffing",
]

_GRID = "450902001001001"
_GRID2 = "450902001001002"
_COMMUNITY = "450902001001"
_LINE_EXAMPLE = {
    "type": "LineString",
    "coordinates": [[110.1452, 22.6254], [110.1452, 22.6301]],
}
_POLYGON_EXAMPLE = {
    "type": "Polygon",
    "coordinates": [
        [
            [110.150, 22.628],
            [110.152, 22.628],
            [110.152, 22.631],
            [110.150, 22.631],
            [110.150, 22.628],
        ]
    ],
}


# --------------------------------------------------------------------------- requests


class PlanIn(BaseModel):
    """A new plan: a name and the communities whose grids it redraws."""

    name: str = Field(min_length=1, description="plan name", examples=["江滨社区 2026 网格调整"])
    communities: list[str] = Field(
        min_length=1,
        description="codes of the communities (12 digits) of the published version to redraw",
        examples=[[_COMMUNITY]],
    )


class LineGeometry(BaseModel):
    """A GeoJSON LineString (or MultiLineString), WGS84 lon/lat degrees."""

    type: Literal["LineString", "MultiLineString"] = Field(
        description="GeoJSON geometry type", examples=["LineString"]
    )
    coordinates: list[Any] = Field(
        description="[lon, lat] positions (WGS84 degrees)",
        examples=[_LINE_EXAMPLE["coordinates"]],
    )


class PolygonGeometry(BaseModel):
    """A GeoJSON Polygon (or MultiPolygon), WGS84 lon/lat degrees."""

    type: Literal["Polygon", "MultiPolygon"] = Field(
        description="GeoJSON geometry type", examples=["Polygon"]
    )
    coordinates: list[Any] = Field(
        description="rings of [lon, lat] positions (WGS84 degrees), closed",
        examples=[_POLYGON_EXAMPLE["coordinates"]],
    )


class SplitParams(BaseModel):
    """Cut a grid by a line crossing it from edge to edge: the largest piece keeps the
    code, the others get new codes."""

    code: str = Field(description="the grid to cut", examples=[_GRID])
    line: LineGeometry = Field(
        description="the cut, crossing the grid from boundary to boundary (WGS84)",
        examples=[_LINE_EXAMPLE],
    )
    new_code: str | None = Field(
        None,
        description="code of the new piece (the community code + 3 digits; only for a cut "
        "into two pieces); default: the next free code",
        examples=["450902001001005"],
    )
    new_name: str | None = Field(
        None, description="name of the new piece (default: the old name + '-2')", examples=["西区"]
    )
    snap_m: float = Field(
        1.0,
        ge=0,
        le=50,
        allow_inf_nan=False,
        description="snapping tolerance, metres: a vertex of the line this close to a vertex "
        "(or else an edge) of the community's grids is moved exactly onto it (0: no snapping)",
        examples=[1.0],
    )


class MergeParams(BaseModel):
    """Merge adjacent grids of one community into one grid."""

    codes: list[str] = Field(
        min_length=2,
        description="the grids to merge (two or more sharing edges, one community)",
        examples=[[_GRID, _GRID2]],
    )
    code: str | None = Field(
        None,
        description="the code the merged grid keeps (default: the first of codes)",
        examples=[_GRID],
    )
    name: str | None = Field(
        None, description="name of the merged grid (default: the kept grid's)", examples=["东区"]
    )


class MoveEdgeParams(BaseModel):
    """Redraw the shared edge of two neighbouring grids: their union is cut by ``line`` and
    each piece goes to the grid it overlapped most."""

    a: str = Field(description="one grid", examples=[_GRID])
    b: str = Field(description="its neighbour", examples=[_GRID2])
    line: LineGeometry = Field(
        description="the new edge, crossing the two grids' union from boundary to boundary",
        examples=[_LINE_EXAMPLE],
    )
    snap_m: float = Field(
        1.0,
        ge=0,
        le=50,
        allow_inf_nan=False,
        description="snapping tolerance, metres: a vertex of the line this close to a vertex "
        "(or else an edge) of the community's grids is moved exactly onto it (0: no snapping)",
        examples=[1.0],
    )


class ReassignParams(BaseModel):
    """Give the part of a grid inside a polygon to its neighbour."""

    model_config = ConfigDict(populate_by_name=True)

    polygon: PolygonGeometry = Field(
        description="the area to move (WGS84)", examples=[_POLYGON_EXAMPLE]
    )
    to: str = Field(description="the grid receiving the area", examples=[_GRID2])
    from_: str | None = Field(
        None,
        alias="from",
        description="the grid giving the area (default: the grid the polygon overlaps "
        "most, other than to)",
        examples=[_GRID],
    )


class RenameParams(BaseModel):
    """Rename and/or recode a grid (its geometry stays)."""

    code: str = Field(description="the grid", examples=[_GRID])
    new_code: str | None = Field(
        None,
        description="its new code (the community code + 3 digits, unused)",
        examples=["450902001001009"],
    )
    new_name: str | None = Field(None, description="its new name", examples=["滨江一网格"])


class ReplaceGrid(BaseModel):
    """One grid of a replacement."""

    code: str = Field(description="grid code (the community code + 3 digits)", examples=[_GRID])
    name: str | None = Field(None, description="grid name (default: the code)", examples=["一网格"])
    geometry: PolygonGeometry = Field(
        description="the grid's area (WGS84); the community is rebuilt exactly from them",
        examples=[_POLYGON_EXAMPLE],
    )


class ReplaceParams(BaseModel):
    """Replace every grid of a community."""

    community: str = Field(description="the community", examples=[_COMMUNITY])
    grids: list[ReplaceGrid] = Field(
        min_length=1,
        description="its new grids",
        examples=[[{"code": _GRID, "name": "一网格", "geometry": _POLYGON_EXAMPLE}]],
    )


class SplitEdit(BaseModel):
    """``split``: cut a grid by a line."""

    kind: Literal["split"] = Field(description="edit kind", examples=["split"])
    params: SplitParams = Field(
        description="the split's parameters",
        examples=[{"code": _GRID, "line": _LINE_EXAMPLE}],
    )


class MergeEdit(BaseModel):
    """``merge``: merge adjacent grids."""

    kind: Literal["merge"] = Field(description="edit kind", examples=["merge"])
    params: MergeParams = Field(
        description="the merge's parameters", examples=[{"codes": [_GRID, _GRID2]}]
    )


class MoveEdgeEdit(BaseModel):
    """``move_edge``: redraw the edge between two neighbours."""

    kind: Literal["move_edge"] = Field(description="edit kind", examples=["move_edge"])
    params: MoveEdgeParams = Field(
        description="the new edge", examples=[{"a": _GRID, "b": _GRID2, "line": _LINE_EXAMPLE}]
    )


class ReassignEdit(BaseModel):
    """``reassign``: move an area from a grid to its neighbour."""

    kind: Literal["reassign"] = Field(description="edit kind", examples=["reassign"])
    params: ReassignParams = Field(
        description="the area and the grids",
        examples=[{"polygon": _POLYGON_EXAMPLE, "from": _GRID, "to": _GRID2}],
    )


class RenameEdit(BaseModel):
    """``rename``: rename and/or recode a grid."""

    kind: Literal["rename"] = Field(description="edit kind", examples=["rename"])
    params: RenameParams = Field(
        description="the new name and/or code", examples=[{"code": _GRID, "new_name": "滨江一网格"}]
    )


class ReplaceEdit(BaseModel):
    """``replace``: replace every grid of a community."""

    kind: Literal["replace"] = Field(description="edit kind", examples=["replace"])
    params: ReplaceParams = Field(
        description="the community and its new grids",
        examples=[
            {
                "community": _COMMUNITY,
                "grids": [{"code": _GRID, "name": "一网格", "geometry": _POLYGON_EXAMPLE}],
            }
        ],
    )


#: one edit of a plan, by kind
EditIn = Annotated[
    SplitEdit | MergeEdit | MoveEdgeEdit | ReassignEdit | RenameEdit | ReplaceEdit,
    Field(discriminator="kind"),
]


class AutoPartitionIn(BaseModel):
    """Re-cut communities of a plan into contiguous, compact grids of balanced load (METIS
    on a fine tessellation); give ``n`` or ``target``."""

    communities: list[str] | None = Field(
        None,
        description="communities to re-cut (default: all of the plan's)",
        examples=[[_COMMUNITY]],
    )
    n: int | None = Field(
        None,
        ge=1,
        description="number of grids (shared out by load between communities)",
        examples=[6],
    )
    target: float | None = Field(
        None,
        gt=0,
        description="maximum load per grid instead of n (households, or load-index points)",
        examples=[400.0],
    )
    load: Literal["households", "load_index"] = Field(
        "households",
        description="what to balance: households, or the load index (effort-weighted "
        "incidents of the window, households and area)",
        examples=["households"],
    )
    cell_m: float = Field(
        75.0, gt=5, le=1000, description="cell size of the tessellation, metres", examples=[75.0]
    )
    shape: Literal["hex", "square"] = Field("hex", description="cell shape", examples=["hex"])
    seed: int = Field(0, description="METIS seed (same inputs and seed → same grids)", examples=[0])
    start: datetime | None = Field(
        None,
        description="incident window start for load_index (ISO 8601; default: 365 days before end)",
        examples=["2025-03-01T00:00:00+08:00"],
    )
    end: datetime | None = Field(
        None,
        description="incident window end for load_index (ISO 8601; default: now)",
        examples=["2026-03-01T00:00:00+08:00"],
    )
    follow_lines: bool = Field(
        True,
        description="cut along the reference lines (roads, rivers) imported with "
        "`geogrid reference import`, when some cross the communities",
        examples=[True],
    )
    smooth_m: float | None = Field(
        None,
        ge=0,
        le=500,
        allow_inf_nan=False,
        description="smoothing of the cells' stair-stepped edges, metres (default: half a "
        "cell; 0: none)",
        examples=[37.5],
    )


# --------------------------------------------------------------------------- answers


class PlanEdit(ApiModel):
    """One stored edit of a plan (its geometry left out)."""

    id: int = Field(description="edit id", examples=[12])
    seq: int = Field(description="position in the plan's edits", examples=[1])
    kind: str = Field(description="edit kind", examples=["split"])
    undone: bool = Field(description="undone (on the redo stack)", examples=[False])
    author: str | None = Field(None, description="who made the edit", examples=["T-planner"])
    created_at: datetime | None = Field(None, description="when (UTC)")
    summary: dict[str, Any] = Field(
        description="the edit's parameters without geometries", examples=[{"code": _GRID}]
    )


class _PlanRow(ApiModel):
    id: int = Field(description="plan id", examples=[7])
    name: str = Field(description="plan name", examples=["江滨社区 2026 网格调整"])
    author: str | None = Field(None, description="who created it", examples=["T-planner"])
    base_version_id: int = Field(description="boundary version it redraws", examples=[3])
    community_codes: list[str] = Field(
        description="the communities it redraws", examples=[[_COMMUNITY]]
    )
    status: Literal["draft", "published", "discarded"] = Field(
        description="draft (editable), published or discarded", examples=["draft"]
    )
    published_version_id: int | None = Field(
        None, description="the boundary version it became", examples=[None]
    )
    created_at: datetime | None = Field(None, description="when it was created (UTC)")
    updated_at: datetime | None = Field(None, description="last change (UTC)")
    owner_id: int | None = Field(
        None, description="account that owns it (edits and publishes it)", examples=[3]
    )
    owner: str | None = Field(None, description="its owner's ref or name", examples=["T-planner"])


class PlanSummary(_PlanRow):
    """A plan in the list."""

    edits: int = Field(description="number of active edits", examples=[3])


class Plan(_PlanRow):
    """A plan and its edits."""

    edits: list[PlanEdit] = Field(description="edits in order, undone ones included")


class GridMetrics(ApiModel):
    """Metrics of one grid (see geogrid.core.plans.impact)."""

    code: str = Field(description="grid code", examples=[_GRID])
    name: str | None = Field(None, description="grid name")
    parent_code: str | None = Field(None, description="its community", examples=[_COMMUNITY])
    households: float | None = Field(None, description="households (prorated from buildings)")
    population: float | None = Field(None, description="residents (prorated from buildings)")
    incidents: int | None = Field(None, description="incidents reported in the window")
    effort: float | None = Field(None, description="sum of their category effort")
    load_index: float | None = Field(None, description="load index (100 = an average grid)")
    area_m2: float | None = Field(None, description="area, m² (metric CRS)")
    polsby_popper: float | None = Field(None, description="compactness 4πA/P² (1 = a disc)")
    hull_ratio: float | None = Field(None, description="area / convex hull area")
    parts: int | None = Field(None, description="polygon parts (1 = contiguous)")


class MetricTotals(ApiModel):
    """Totals of a set of grids."""

    model_config = ConfigDict(extra="allow")

    grids: int = Field(description="number of grids", examples=[4])
    households: float = Field(description="households")
    population: float = Field(description="residents")
    incidents: int = Field(description="incidents in the window")
    effort: float = Field(description="effort of those incidents")
    load_index: float = Field(description="sum of the grids' load index")
    area_m2: float = Field(description="area, m²")
    max_min_ratio: float | None = Field(
        None, description="heaviest / lightest load index (null when one grid has none)"
    )
    cv: float = Field(description="coefficient of variation of the load index")
    mean_polsby_popper: float = Field(description="mean compactness")
    non_contiguous: int = Field(description="grids in more than one piece")


class ImpactSide(ApiModel):
    """Per-grid metrics and their totals."""

    grids: list[GridMetrics] = Field(description="one row per grid, in code order")
    totals: MetricTotals = Field(description="totals and balance")


class StaffingDecision(BaseModel):
    """A planner's decision about a grid with no worker or a worker with no grid."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["assign", "move", "vacancy", "release"] = Field(
        description="``assign``: the worker also works the grid; ``move``: the worker works "
        "only this grid of the plan; ``vacancy``: the grid stays vacant on purpose (its "
        "reports go to the community's admin); ``release``: the worker is left with no grid",
        examples=["assign"],
    )
    grid: str | None = Field(
        None,
        max_length=64,
        description="a grid of the plan (assign, move, vacancy)",
        examples=[_GRID],
    )
    account_id: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="an active worker account (assign, move, release)",
        examples=[5],
    )


class StaffingIn(BaseModel):
    """The staffing decisions of a plan (they replace the earlier ones)."""

    model_config = ConfigDict(extra="forbid")

    decisions: list[StaffingDecision] = Field(
        max_length=1000,
        description="decisions, applied in order",
        examples=[[{"action": "assign", "grid": _GRID, "account_id": 5}]],
    )


class StaffingWorker(ApiModel):
    """A worker account."""

    account_id: int = Field(description="worker account id", examples=[5])
    name: str | None = Field(None, description="their name", examples=["张三"])


class GridStaffing(ApiModel):
    """A plan grid and its workers after the plan."""

    code: str = Field(description="grid code", examples=[_GRID])
    name: str | None = Field(None, description="grid name")
    workers: list[StaffingWorker] = Field(description="its workers after the plan")
    vacant: bool = Field(description="vacant on purpose (a decision)")


class WorkerStaffing(StaffingWorker):
    """A worker's grids before and after the plan."""

    before: list[str] = Field(description="their grids of the plan's communities now")
    after: list[str] = Field(description="their grids after the plan")
    released: bool = Field(description="left with no grid on purpose (a decision)")


class StaffingIssue(ApiModel):
    """Something to decide before publishing."""

    kind: Literal["grid_without_worker", "worker_without_grid"] = Field(description="what")
    grid: str | None = Field(None, description="the grid with no worker")
    account_id: int | None = Field(None, description="the worker with no grid")
    message: str = Field(description="what to do")


class StaffingDecisionOut(ApiModel):
    """A stored staffing decision."""

    action: str = Field(description="assign, move, vacancy or release")
    grid: str | None = Field(None, description="the grid")
    account_id: int | None = Field(None, description="the worker")


class Staffing(ApiModel):
    """Every grid's workers after the plan, and what must be decided before publishing."""

    plan_id: int = Field(description="plan id", examples=[7])
    ready: bool = Field(description="nothing left to decide: staffing allows publishing")
    grids: list[GridStaffing] = Field(description="every grid of the plan")
    workers: list[WorkerStaffing] = Field(description="every worker concerned")
    issues: list[StaffingIssue] = Field(description="undecided: publishing is blocked")
    decisions: list[StaffingDecisionOut] = Field(description="the planner's decisions")


class Impact(ApiModel):
    """The plan's grids beside the published grids of the same communities."""

    plan: ImpactSide = Field(description="the plan's grids")
    published: ImpactSide = Field(description="the base version's grids")
    relocated_points: int = Field(description="points re-located by the last update")
    seconds: float = Field(description="time of the last incremental update, s")
    staffing: Staffing | None = Field(None, description="every grid's workers after the plan")


class PlanDetail(Plan):
    """A plan, its grids and their metrics."""

    grids: FeatureCollection = Field(description="the plan's grids (EPSG:4326)")
    metrics: ImpactSide = Field(description="the grids' metrics for the window")


class EditApplied(ApiModel):
    """What an edit changed."""

    edit_id: int = Field(description="id of the stored edit", examples=[12])
    seq: int = Field(description="its position", examples=[3])
    kind: str = Field(description="edit kind", examples=["split"])
    community: str = Field(description="the community edited", examples=[_COMMUNITY])
    removed: list[str] = Field(description="grid codes that no longer exist")
    added: list[str] = Field(description="new grid codes", examples=[["450902001001005"]])
    modified: list[str] = Field(description="grids kept with a new shape or name")
    grids: int = Field(description="number of grids of the plan after the edit", examples=[5])


class EditToggled(ApiModel):
    """The edit undone or redone."""

    edit_id: int = Field(description="edit id", examples=[12])
    seq: int = Field(description="its position", examples=[3])
    kind: str = Field(description="edit kind", examples=["split"])
    undone: bool = Field(description="true after undo, false after redo")
    grids: int = Field(description="number of grids of the plan now", examples=[4])


class Balance(ApiModel):
    """Load balance of a re-cut community."""

    model_config = ConfigDict(extra="allow")

    n: int = Field(description="grids", examples=[6])
    total: float = Field(description="total load")
    mean: float = Field(description="mean load per grid")
    max: float = Field(description="heaviest grid's load")
    min: float = Field(description="lightest grid's load")
    max_min_ratio: float | None = Field(None, description="max / min (null when min is 0)")
    cv: float = Field(description="coefficient of variation (std / mean)")
    target: float | None = Field(None, description="the target asked for")
    reached: bool | None = Field(None, description="every grid under the target")
    cells_from: str | None = Field(
        None,
        description="what the grids are made of: hex/square cells, reference-line blocks, "
        "or cells cut along reference lines",
    )
    blocks: int | None = Field(None, description="blocks between the reference lines")
    smoothed: bool | None = Field(None, description="stair-steps smoothed")
    compactness_before: float | None = Field(
        None, description="mean Polsby–Popper of the community's grids before (1 = a disc)"
    )
    compactness_unsmoothed: float | None = Field(
        None, description="mean Polsby–Popper of the new grids before smoothing"
    )
    compactness: float | None = Field(None, description="mean Polsby–Popper of the new grids")


class AutoPartitioned(EditApplied):
    """The auto-partition edit and the balance it reached."""

    balance: dict[str, Balance] = Field(description="per community code")


class GridChange(ApiModel):
    """A grid that differs between the base version and the plan."""

    code: str = Field(description="grid code", examples=[_GRID])
    change: Literal["new", "removed", "changed"] = Field(description="what happened to it")
    name: str | None = Field(None, description="grid name")
    area_m2_before: float | None = Field(None, description="area before, m²")
    area_m2_after: float | None = Field(None, description="area after, m²")


class IncidentMove(ApiModel):
    """Incidents moving from one grid to another."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    from_: str | None = Field(None, alias="from", description="grid before")
    to: str | None = Field(None, description="grid after (null: outside every grid)")
    incidents: int = Field(description="how many")


class IncidentMoves(ApiModel):
    """Incidents that change grid."""

    count: int = Field(description="how many incidents change grid")
    moves: list[IncidentMove] = Field(description="counts per (from, to)")
    ids: list[int] = Field(description="ids of (up to 1000 of) the incidents")


class WorkerSuccessor(ApiModel):
    """Where a worker of an old grid goes."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    account_id: int = Field(description="worker account id", examples=[5])
    from_: str = Field(alias="from", description="the old grid", examples=[_GRID])
    to: str | None = Field(None, description="the plan grid overlapping it most")
    overlap_share: float = Field(description="share of the old grid's area in it (0-1)")
    needs_decision: bool = Field(description="a person should decide (split, merge, new grid)")
    reason: str = Field(description="why a decision is needed")


class WorkerMove(WorkerSuccessor):
    """A worker after publishing."""

    reassigned: bool = Field(description="moved to the successor grid (the old one is gone)")


class DiffSummary(ApiModel):
    """Numbers of grids by change."""

    new: int = Field(description="new grids")
    removed: int = Field(description="removed grids")
    changed: int = Field(description="grids with a new shape or name")


class GridChangeFeature(Feature):
    """A changed grid as a GeoJSON Feature (WGS84)."""

    properties: GridChange | None = Field(None, description="the change")  # type: ignore[assignment]  # narrows Feature.properties


class GridChangeCollection(FeatureCollection):
    """The changed grids as a GeoJSON FeatureCollection (EPSG:4326)."""

    features: list[GridChangeFeature] = Field(description="new, removed and changed grids")  # type: ignore[assignment]  # narrows FeatureCollection.features


class PlanDiff(ApiModel):
    """Grids, incidents and workers that change between the base version and the plan."""

    grids: list[GridChange] = Field(description="the grids that change")
    incidents: IncidentMoves = Field(description="incidents that change grid")
    workers: list[WorkerSuccessor] = Field(description="workers of the old grids")
    geojson: GridChangeCollection = Field(description="the changed grids (EPSG:4326)")
    summary: DiffSummary = Field(description="counts")
    staffing: Staffing | None = Field(None, description="every grid's workers after the plan")


class Published(ApiModel):
    """A plan published as a new boundary version."""

    plan_id: int = Field(description="plan id", examples=[7])
    version_id: int = Field(description="the new published boundary version", examples=[4])
    previous_version_id: int = Field(description="the version it replaced", examples=[3])
    grids: int = Field(description="grids of the plan", examples=[6])
    grids_changed: int = Field(0, description="new or changed grids written (new valid_from)")
    grids_unchanged: int = Field(0, description="grids kept as they were (valid_from kept)")
    grids_removed: int = Field(0, description="grids that no longer exist")
    incidents_reattributed: int = Field(description="incidents that changed grid")
    workers: list[WorkerMove] = Field(description="every worker of an old grid")
    workers_needing_decision: list[WorkerMove] = Field(
        description="those whose default successor was ambiguous (split, merge, new grid)"
    )
    staffing: Staffing | None = Field(None, description="every grid's workers after publishing")
    seconds: float = Field(description="time taken, s")
