"""The impact preview of a plan: its grids' metrics beside the published ones, and the diff.

The incidents and buildings of the plan's communities are read once per plan and
incident window into an :class:`~geogrid.core.plans.impact.ImpactSession`, kept on
``ctx.plans`` and updated incrementally after every edit (see
:mod:`geogrid.core.plans.impact` for the metrics). The window ``[start, end)`` defaults to
the 365 days up to now, read in the city's time zone (``ctx.settings.city.timezone``);
windows given to the day share a session.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import shapely

from geogrid.core.loadindex import LoadWeights
from geogrid.core.plans.edits import Coverage, coverage_change
from geogrid.core.plans.impact import ImpactSession, PlanData, diff_plan, points_within
from geogrid.core.scope import Scope
from geogrid.core.timewindow import resolve_window
from geogrid.services.plans.drafts import base_coverage, disclose_plan, get_plan, plan_coverage
from geogrid.services.plans.staffing import get_staffing
from geogrid.store import plans as store

if TYPE_CHECKING:  # the context holds the plan sessions: a type-only import, no cycle
    from geogrid.services.context import AppContext

__all__ = [
    "IMPACT_DAYS",
    "impact_window",
    "plan_data",
    "impact_session",
    "impact",
    "diff",
    "plan_detail",
]

#: default length of the incident window of an impact preview, days
IMPACT_DAYS = 365


def impact_window(ctx: AppContext, start: Any = None, end: Any = None) -> tuple[datetime, datetime]:
    """The incident window ``[start, end)`` of an impact preview as aware datetimes
    (default: the :data:`IMPACT_DAYS` days up to now; naive values in the city's zone)."""
    s, e, _ = resolve_window(
        start, end, tz=ctx.settings.city.timezone, days=IMPACT_DAYS, names=("start", "end")
    )
    return s, e


def plan_data(
    ctx: AppContext,
    plan_id: int,
    *,
    start: Any = None,
    end: Any = None,
    weights: LoadWeights | None = None,
) -> PlanData:
    """Read a plan's :class:`~geogrid.core.plans.impact.PlanData`: every incident of its
    base grids (``in_window`` for ``[start, end)``), the buildings inside its communities,
    the workers of its base grids and the load-index reference (grid means of the base
    version over the window)."""
    s, e = impact_window(ctx, start, end)
    with ctx.engine.connect() as conn:
        plan = store.plan_row(conn, plan_id)
        cov = base_coverage(ctx, conn, plan)
        vid = int(plan["base_version_id"])
        codes = cov.grids["code"].tolist()
        incidents = store.window_incidents(conn, codes, s, e)
        xmin, ymin, xmax, ymax = (float(v) for v in cov.communities.total_bounds)
        buildings = store.buildings_in_bbox(conn, (xmin, ymin, xmax, ymax))
        workers = store.grid_workers(conn, codes)
        effort, households, area_m2, n_grids = store.load_reference(conn, vid, s, e)
    n = max(n_grids, 1)
    reference = (effort / n, households / n, area_m2 / 1e6 / n)
    return PlanData(
        cov.communities,
        cov.grids.copy(),
        incidents,
        points_within(cov.communities.geometry, buildings),
        workers,
        reference,
        weights,
        (s, e),
    )


def _same_grids(session: ImpactSession, cov: Coverage) -> bool:
    grids = cov.grids.reset_index(drop=True)
    return bool(session.grids["code"].equals(grids["code"])) and all(
        shapely.equals_exact(a, b, 0.0)
        for a, b in zip(session.grids.geometry, grids.geometry, strict=True)
    )


def impact_session(
    ctx: AppContext, plan_id: int, *, start: Any = None, end: Any = None
) -> ImpactSession:
    """The plan's impact session for the window (made on first use, then kept on
    ``ctx.plans`` and brought up to date with the plan's current grids)."""
    s, e = impact_window(ctx, start, end)
    window = f"{s.date()}/{e.date()}"
    _, cov = plan_coverage(ctx, plan_id)
    sess = ctx.plans.impact(plan_id, window)
    if sess is None:
        made = ImpactSession(plan_data(ctx, plan_id, start=s, end=e), cov.grids)
        with ctx.plans.lock:
            sess = ctx.plans.impact(plan_id, window)
            if sess is None:
                ctx.plans.keep_impact(plan_id, window, made)
                return made
    with ctx.plans.lock:
        if not _same_grids(sess, cov):
            sess.update(cov.grids, coverage_change(Coverage(cov.communities, sess.grids), cov))
    return sess


def impact(
    ctx: AppContext,
    plan_id: int,
    *,
    start: Any = None,
    end: Any = None,
    viewer: Scope | None = None,
) -> dict[str, Any]:
    """Per-grid metrics and totals of the plan and of the published grids side by side
    (:meth:`~geogrid.core.plans.impact.ImpactSession.report`), with ``staffing``: every
    grid's workers after the plan (names masked unless ``viewer`` has a plan role; None:
    the command line)."""
    sess = impact_session(ctx, plan_id, start=start, end=end)
    with ctx.plans.lock:
        out = sess.report()
    out["staffing"] = _staffing(ctx, plan_id, viewer)
    return out


def diff(
    ctx: AppContext,
    plan_id: int,
    *,
    start: Any = None,
    end: Any = None,
    viewer: Scope | None = None,
) -> dict[str, Any]:
    """Grids, incidents and workers that change between the base version and the plan
    (:func:`~geogrid.core.plans.impact.diff_plan`), with ``staffing``: every grid's
    workers after the plan (:func:`~geogrid.services.plans.staffing.get_staffing`; names
    masked unless ``viewer`` has a plan role)."""
    sess = impact_session(ctx, plan_id, start=start, end=end)
    with ctx.plans.lock:
        out = diff_plan(sess.data, sess)
    out["staffing"] = _staffing(ctx, plan_id, viewer)
    return out


def _staffing(ctx: AppContext, plan_id: int, viewer: Scope | None) -> dict[str, Any]:
    out = get_staffing(ctx, plan_id, viewer=viewer)
    out.pop("successors", None)
    return out


def plan_detail(
    ctx: AppContext,
    plan_id: int,
    *,
    start: Any = None,
    end: Any = None,
    viewer: Scope | None = None,
) -> dict[str, Any]:
    """The plan (:func:`~geogrid.services.plans.drafts.get_plan`) with ``grids``, its grids
    as GeoJSON (EPSG:4326), and ``metrics``, their metrics and totals for the window
    (authors hidden from anonymous ``viewer``s:
    :func:`~geogrid.services.plans.drafts.disclose_plan`)."""
    out = get_plan(ctx, plan_id)
    sess = impact_session(ctx, plan_id, start=start, end=end)
    with ctx.plans.lock:
        out["grids"] = json.loads(sess.grids.to_json(drop_id=True))
        out["metrics"] = sess.report()["plan"]
    return disclose_plan(out, viewer)
