"""The planner as a service: draft plans of new grids, edited, previewed and published.

A plan redraws the grids of some communities on the published boundary version. Every
function takes the :class:`~geogrid.services.context.AppContext` of the running service
(its engine, settings and ``ctx.plans``, the :class:`PlanSessions` that keeps replayed
coverages and impact sessions) and a plan id:

* :mod:`~geogrid.services.plans.drafts` — create, list, read, edit, undo, redo;
* :mod:`~geogrid.services.plans.impact` — the impact preview and the diff;
* :mod:`~geogrid.services.plans.autopartition` — re-cut communities into balanced grids;
* :mod:`~geogrid.services.plans.staffing` — every grid's workers after the plan and the
  planner's staffing decisions;
* :mod:`~geogrid.services.plans.reference` — reference line layers (roads, rivers) that
  auto-partition cuts along;
* :mod:`~geogrid.services.plans.publish` — publish as a new boundary version.

The pure parts are in :mod:`geogrid.core.plans`, the rows in :mod:`geogrid.store.plans`.
"""

from geogrid.services.plans.autopartition import autopartition_plan
from geogrid.services.plans.drafts import (
    add_edit,
    create_plan,
    delete_plan,
    get_plan,
    list_plans,
    plan_coverage,
    plan_geojson,
    redo,
    undo,
)
from geogrid.services.plans.impact import diff, impact, impact_session, plan_data, plan_detail
from geogrid.services.plans.publish import publish_plan
from geogrid.services.plans.reference import import_reference
from geogrid.services.plans.sessions import PlanSessions
from geogrid.services.plans.staffing import get_staffing, set_staffing

__all__ = [
    "PlanSessions",
    "create_plan",
    "list_plans",
    "get_plan",
    "plan_detail",
    "delete_plan",
    "plan_coverage",
    "plan_geojson",
    "add_edit",
    "undo",
    "redo",
    "plan_data",
    "impact_session",
    "impact",
    "diff",
    "autopartition_plan",
    "publish_plan",
    "get_staffing",
    "set_staffing",
    "import_reference",
]
