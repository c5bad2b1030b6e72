"""Boundary plans: draft redraws of part of the city, edited, auto-partitioned, previewed
and published as a new boundary version.

* :mod:`geogrid.plans.edits` — pure topology edits on a community's grid coverage;
* :mod:`geogrid.plans.partition` — auto-partition of communities into balanced grids;
* :mod:`geogrid.plans.impact` — plan metrics, incremental incident re-join, diff;
* :mod:`geogrid.store.plans` — persistence (plans, edits, undo/redo) and publishing.
"""

from geogrid.plans.edits import EDIT_KINDS, GRID_SIZE, Coverage, EditResult, apply_edit

__all__ = ["EDIT_KINDS", "GRID_SIZE", "Coverage", "EditResult", "apply_edit"]
