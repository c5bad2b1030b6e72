"""The load index: how much work a unit carries, relative to the city's average grid.

For grid *i* with effort-weighted incidents ``E_i`` (Σ of the category ``effort`` over the
window's incidents), households ``H_i`` and area ``A_i`` (km², in the city's metric CRS)::

    load_index_i = 100 · (w_E·E_i/Ē + w_H·H_i/H̄ + w_A·A_i/Ā) / (w_E + w_H + w_A)

where Ē, H̄, Ā are the means over all grids of the boundary version (same window and
categories): the *reference*. Each term averages 1 over the grids, so **the city's mean
grid is exactly 100**; a grid at 200 carries twice an average grid's load. A term whose
weight or mean is 0 (e.g. no incidents) is left out of both sums. At upper levels the same
formula is applied to the unit's sums with the *grid* means, which makes it additive: a
community's index is the sum of its grids' (1,200 = the load of twelve average grids).

Weights: :class:`LoadWeights` (default 0.6 incidents, 0.3 households, 0.1 area). Used by
:func:`geogrid.services.metrics.load_metrics` and by plan impact
(:mod:`geogrid.core.plans.impact`).

>>> ref = grid_reference([1.0, 3.0], [10.0, 30.0], [1.0, 1.0])
>>> ref
(2.0, 20.0, 1.0)
>>> load_score([1, 3], [10, 30], [1, 1], reference=ref).round(1).tolist()
[55.0, 145.0]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geogrid.errors import InvalidInput

__all__ = ["LoadWeights", "as_weights", "grid_reference", "load_parts", "load_score"]

ArrayLike = npt.ArrayLike


@dataclass(frozen=True)
class LoadWeights:
    """Weights of the load index terms (any non-negative numbers, not all 0; only their
    ratios matter).

    Attributes
    ----------
    incidents : float
        Weight of effort-weighted incidents (Σ category ``effort``).
    households : float
        Weight of resident households.
    area : float
        Weight of the area in km².

    >>> LoadWeights(incidents=1, households=0, area=0).incidents
    1
    >>> LoadWeights(0, 0, 0)
    Traceback (most recent call last):
    ...
    geogrid.errors.InvalidInput: ...
    """

    incidents: float = 0.6
    households: float = 0.3
    area: float = 0.1

    def __post_init__(self) -> None:
        vals = (self.incidents, self.households, self.area)
        if not all(np.isfinite(v) and v >= 0 for v in vals) or sum(vals) <= 0:
            raise InvalidInput("weights", vals, "non-negative numbers, not all 0")


def as_weights(weights: LoadWeights | Mapping[str, float] | None) -> LoadWeights:
    """``weights`` as :class:`LoadWeights` (None: the defaults; a mapping with keys
    ``incidents``, ``households``, ``area``).

    >>> as_weights({"incidents": 1.0}).households
    0.3
    """
    if weights is None:
        return LoadWeights()
    if isinstance(weights, LoadWeights):
        return weights
    if isinstance(weights, Mapping):
        try:
            return LoadWeights(**{str(k): float(v) for k, v in weights.items()})
        except (TypeError, ValueError):
            pass
    raise InvalidInput(
        "weights", weights, "a LoadWeights or a mapping of incidents, households, area to numbers"
    )


def grid_reference(
    effort_incidents: ArrayLike, households: ArrayLike, area_km2: ArrayLike
) -> tuple[float, float, float]:
    """The reference (Ē, H̄, Ā): means over *all* grids of a version of their effort-weighted
    incidents, households and area (km²). No grids: ``(0, 0, 0)``.

    >>> grid_reference([], [], [])
    (0.0, 0.0, 0.0)
    """
    e = np.asarray(effort_incidents, dtype=float)
    n = e.size
    if n == 0:
        return (0.0, 0.0, 0.0)
    return (
        float(e.sum() / n),
        float(np.asarray(households, dtype=float).sum() / n),
        float(np.asarray(area_km2, dtype=float).sum() / n),
    )


def _terms(
    effort_incidents: ArrayLike,
    households: ArrayLike,
    area_km2: ArrayLike,
    reference: tuple[float, float, float],
    weights: LoadWeights,
) -> tuple[list[tuple[str, float, np.ndarray, float]], float]:
    terms = [
        ("incidents", weights.incidents, np.asarray(effort_incidents, dtype=float), reference[0]),
        ("households", weights.households, np.asarray(households, dtype=float), reference[1]),
        ("area", weights.area, np.asarray(area_km2, dtype=float), reference[2]),
    ]
    total = sum(wk for _, wk, _, mean in terms if wk > 0 and mean > 0)
    return terms, float(total)


def load_parts(
    effort_incidents: ArrayLike,
    households: ArrayLike,
    area_km2: ArrayLike,
    *,
    reference: tuple[float, float, float],
    weights: LoadWeights | None = None,
) -> dict[str, np.ndarray]:
    """Each term's contribution to the load index, in index points (they add up to
    :func:`load_score`; a term left out contributes 0).

    Returns
    -------
    dict with keys ``incidents``, ``households``, ``area`` → float arrays (NaN everywhere
    when every term is left out).

    >>> p = load_parts([1, 3], [10, 30], [1, 1], reference=(2, 20, 1))
    >>> [round(float(v[1]), 1) for v in p.values()]
    [90.0, 45.0, 10.0]
    """
    w = weights or LoadWeights()
    terms, total = _terms(effort_incidents, households, area_km2, reference, w)
    shape = terms[0][2].shape
    out: dict[str, np.ndarray] = {}
    for name, wk, x, mean in terms:
        if total == 0:
            out[name] = np.full(shape, np.nan)
        elif wk > 0 and mean > 0:
            out[name] = 100.0 * wk * x / mean / total
        else:
            out[name] = np.zeros(shape)
    return out


def load_score(
    effort_incidents: ArrayLike,
    households: ArrayLike,
    area_km2: ArrayLike,
    *,
    reference: tuple[float, float, float],
    weights: LoadWeights | None = None,
) -> np.ndarray:
    """The load index of units from their sums (vectorised).

    Parameters
    ----------
    effort_incidents, households, area_km2 : array-like
        The units' effort-weighted incidents, households and area (km²).
    reference : (float, float, float)
        The grid means (Ē, H̄, Ā) the terms are divided by (:func:`grid_reference`); terms
        with a zero mean are left out.
    weights : LoadWeights, optional
        Default ``LoadWeights()``.

    Returns
    -------
    numpy.ndarray of float: index points (the mean grid = 100); NaN when every term is
    left out.

    >>> load_score([1, 3], [10, 30], [1, 1], reference=(2, 20, 1)).round(1).tolist()
    [55.0, 145.0]
    >>> load_score([1.0], [1.0], [1.0], reference=(0, 0, 0)).tolist()
    [nan]
    """
    parts = load_parts(effort_incidents, households, area_km2, reference=reference, weights=weights)
    return parts["incidents"] + parts["households"] + parts["area"]
