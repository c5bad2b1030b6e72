"""Boundary plans: draft redraws of part of the city, edited, auto-partitioned, previewed
and published as a new boundary version.

* :mod:`geogrid.core.plans.edits` — pure topology edits on a community's grid coverage;
* :mod:`geogrid.core.plans.partition` — auto-partition of communities into balanced grids;
* :mod:`geogrid.core.plans.impact` — plan metrics, incremental incident re-join, diff;
* :mod:`geogrid.store.plans` — persistence (plans, edits, undo/redo) and publishing.
"""

from geogrid.core.plans.edits import EDIT_KINDS, GRID_SIZE, Coverage, EditResult, apply_edit

__all__ = ["EDIT_KINDS", "GRID_SIZE", "Coverage", "EditResult", "apply_edit"]
