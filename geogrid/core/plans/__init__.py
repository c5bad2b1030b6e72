"""Boundary plans: draft redraws of part of the city, edited, auto-partitioned, previewed
and published as a new boundary version.

* :mod:`geogrid.core.plans.edits` — pure topology edits on a community's grid coverage;
* :mod:`geogrid.core.plans.partition` — auto-partition of communities into balanced grids;
* :mod:`geogrid.core.plans.impact` — plan metrics, incremental incident re-join, diff;
* :mod:`geogrid.core.plans.publish` — publish findings, prorated grid units, re-attribution
  and worker moves;
* :mod:`geogrid.core.plans.staffing` — every grid's workers after a plan, and the
  decisions still needed;
* :mod:`geogrid.core.plans.reference` — cutting communities along reference lines (roads,
  rivers) and smoothing stair-stepped edges;
* :mod:`geogrid.services.plans` — the workflows (plans, edits, undo/redo, impact sessions,
  publishing); :mod:`geogrid.store.plans` — their rows.
"""

from geogrid.core.plans.edits import EDIT_KINDS, GRID_SIZE, Coverage, EditResult, apply_edit

__all__ = ["EDIT_KINDS", "GRID_SIZE", "Coverage", "EditResult", "apply_edit"]
