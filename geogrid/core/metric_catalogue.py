"""The catalogue of per-unit load metrics: their names, meanings and units.

The map page, the vector tiles, TileJSON, OGC collections and
:func:`geogrid.services.metrics.load_metrics` all describe metrics with this one table.
The definitions behind the numbers (windows, state at ``t = min(end, now)``, roll-ups) are
in :mod:`geogrid.services.metrics`; the load index formula is in :mod:`geogrid.core.loadindex`.

>>> METRIC_COLUMNS[:4]
['code', 'name', 'level', 'parent_code']
>>> set(METRICS) <= set(METRIC_COLUMNS)
True
"""

from __future__ import annotations

__all__ = ["METRICS", "METRIC_COLUMNS", "NUMERIC_METRICS", "UNIT_COLUMNS"]

#: metric name → description with units (for the UI, TileJSON and OGC collections)
METRICS: dict[str, str] = {
    "population": "Residents (persons)",
    "households": "Households (count)",
    "area_m2": "Area (m², in the city's metric CRS, e.g. EPSG:4546 Gauss-Kruger)",
    "incidents": "Incidents reported in the window (count)",
    "open_backlog": "Incidents open at the end of the window (count)",
    "overdue": "Open incidents past their due time at the end of the window (count)",
    "per_1000_residents": "Incidents in the window per 1,000 residents",
    "per_km2": "Incidents in the window per km²",
    "median_hours_to_resolve": "Median time from report to resolution of the window's "
    "resolved incidents (hours)",
    "p90_hours_to_resolve": "90th percentile time from report to resolution (hours)",
    "resolved_within_limit_share": "Share of decided incidents (resolved, or open past due) "
    "resolved within the category's time limit (0–1)",
    "workers": "Grid workers serving the unit (full-time equivalents: a worker with k grids "
    "counts 1/k in each)",
    "incidents_per_worker": "Incidents in the window per worker FTE",
    "previous_incidents": "Incidents in the previous window of the same length (count)",
    "change": "Incidents minus previous_incidents (count)",
    "change_pct": "Change against the previous window (%)",
    "load_index": "Workload index: effort-weighted incidents, households and area; the "
    "city's mean grid = 100 (upper levels: sum of their grids)",
    # issue 14: residents' satisfaction and evaluation (answers given in the window; upper
    # levels recompute the means from their units' sums)
    "satisfaction": "Mean residents' satisfaction (1–5) with handled incidents, over the "
    "incidents' current verdicts given in the window",
    "satisfaction_answers": "Satisfaction answers in the window (links and follow-up calls; count)",
    "evaluation_score": "Mean residents' evaluation score of the grid workers (1–5, 群众测评), "
    "answers given in the window",
    "evaluation_answers": "Evaluation answers in the window (households; count)",
}

#: the identifying columns of every unit row, before its metrics
UNIT_COLUMNS: list[str] = ["code", "name", "level", "parent_code"]

#: the columns of a metrics frame, in order (the unit, its metrics, its geometry)
METRIC_COLUMNS: list[str] = [*UNIT_COLUMNS, *METRICS, "geometry"]

#: every metric is a number (counts are ints, rates floats; NaN where undefined)
NUMERIC_METRICS: tuple[str, ...] = tuple(METRICS)
