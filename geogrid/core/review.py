"""The year-end review of grid workers (issue 14): the scoring scheme, load normalisation,
ranking and the shortlist for outstanding worker of the year (pure; the data are read by
:mod:`geogrid.services.review`). The method, with a worked example, is ``docs/review.md``.

Components (each 0–1, NaN when the worker has no data for it)
------------------------------------------------------------
* ``activity`` — register activity relative to the volume expected for the worker's load:
  ``a = reported + handled + register entries``; the worker's load ``L`` is the sum of
  their grids' load index (:mod:`geogrid.core.loadindex`, the city's mean grid = 100; a
  grid shared by k workers counts 1/k to each), at least ``load_floor``; the rate
  ``r = a / (L / 100)`` is activity per mean-grid-equivalent; ``activity = min(1, r / m)``
  with ``m`` the median rate of the workers reviewed who have any activity. A worker in a heavy grid is
  expected to do more in absolute terms, and is not rewarded or punished for the volume
  itself.
* ``handling`` — handled incidents resolved by their due time / handled (a share, which
  does not grow with volume).
* ``satisfaction`` — (mean satisfaction score of the worker's incidents − 1) / 4.
* ``evaluation`` — (mean evaluation score of rounds naming the worker − 1) / 4.
* ``patrol`` — mean patrol coverage of the worker's grids (patrol × grid rows, 0–1).

Score
-----
``score = clip(100 · Σ w_k c_k / Σ w_k − complaint_points · complaints, 0, 100)``, the sums
over the components the worker has data for (a missing component neither adds nor
subtracts; the minimum-data rules keep thin files off the shortlist). Rounded to 2
decimals; equal rounded scores are ties.

Ranking and shortlist
---------------------
Ranks within the worker's community, street and district: competition ranking ("1, 2, 2,
4") by score, ties sharing a rank. The shortlist: workers meeting the minimum-data rules
(:meth:`ReviewScheme.eligible`), best first; ``n = max(shortlist_min, ceil(shortlist_share
· eligible))``; every eligible worker scoring at least the n-th score is on it, so a tie at
the cut takes all tied workers. Order among ties: satisfaction component, then handled
incidents, then account id (for display only: tied workers are all in).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final

import numpy as np
import pandas as pd

from geogrid.errors import InvalidInput

__all__ = [
    "COMPONENTS",
    "COMPONENT_NAMES",
    "RECORD_KINDS",
    "RECORD_KIND_NAMES",
    "INPUT_COLUMNS",
    "ReviewScheme",
    "worker_load",
    "score_workers",
    "rank_workers",
    "shortlist",
]

#: the components of the score, code → (中文, English)
COMPONENT_NAMES: Final[dict[str, tuple[str, str]]] = {
    "activity": ("工作量(按负荷)", "activity for the load"),
    "handling": ("按时办结率", "on-time handling"),
    "satisfaction": ("群众满意度", "residents' satisfaction"),
    "evaluation": ("群众测评", "residents' evaluation"),
    "patrol": ("巡查覆盖率", "patrol coverage"),
}
COMPONENTS: Final[tuple[str, ...]] = tuple(COMPONENT_NAMES)
#: the kinds of the worker's file records (``worker_record``), code → (中文, English)
RECORD_KIND_NAMES: Final[dict[str, tuple[str, str]]] = {
    "training": ("培训", "training"),
    "award": ("表彰", "award"),
    "note": ("备注", "note"),
    "complaint": ("投诉", "complaint"),
}
RECORD_KINDS: Final[tuple[str, ...]] = tuple(RECORD_KIND_NAMES)
#: the per-worker inputs of :func:`score_workers`
INPUT_COLUMNS: Final[tuple[str, ...]] = (
    "account_id",
    "load",
    "reported",
    "handled",
    "on_time",
    "entries",
    "sat_n",
    "sat_sum",
    "eval_n",
    "eval_sum",
    "patrol_n",
    "patrol_coverage",
    "complaints",
)
_DEFAULT_WEIGHTS: Final[dict[str, float]] = {
    "activity": 0.25,
    "handling": 0.25,
    "satisfaction": 0.20,
    "evaluation": 0.20,
    "patrol": 0.10,
}


@dataclass(frozen=True)
class ReviewScheme:
    """The scoring scheme (setting ``review_scheme``: any of these fields).

    weights : component → weight (non-negative, not all 0; only ratios matter)
    complaint_points : points deducted per verified complaint
    load_floor : the smallest load a worker is measured against (of 100 = the mean grid)
    shortlist_share, shortlist_min : the shortlist's size (share of the eligible, at least)
    min_handled, min_satisfaction, min_evaluations : minimum data for the shortlist
        (handled incidents, satisfaction answers, evaluation answers)
    min_components : components with data, at least
    complaints_exclude : a worker with a verified complaint is not shortlisted

    >>> ReviewScheme.from_mapping({"weights": {"patrol": 0}}).weights["patrol"]
    0.0
    >>> ReviewScheme.from_mapping({"weights": {"speed": 1}})
    Traceback (most recent call last):
    ...
    geogrid.errors.InvalidInput: review_scheme.weights='speed' is not valid: expected \
components among activity, handling, satisfaction, evaluation, patrol
    """

    weights: Mapping[str, float] = field(default_factory=lambda: dict(_DEFAULT_WEIGHTS))
    complaint_points: float = 5.0
    load_floor: float = 25.0
    shortlist_share: float = 0.10
    shortlist_min: int = 1
    min_handled: int = 5
    min_satisfaction: int = 3
    min_evaluations: int = 1
    min_components: int = 3
    complaints_exclude: bool = True

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> ReviewScheme:
        """The defaults with ``values`` over them (weights merged), checked."""
        if not values:
            return cls()
        known = {f.name for f in fields(cls)}
        bad = sorted(set(values) - known)
        if bad:
            raise InvalidInput(
                "review_scheme", ",".join(bad), "fields among " + ", ".join(sorted(known))
            )
        weights = dict(_DEFAULT_WEIGHTS)
        given = values.get("weights") or {}
        unknown = sorted(set(given) - set(COMPONENTS))
        if unknown:
            raise InvalidInput(
                "review_scheme.weights",
                ",".join(unknown),
                "components among " + ", ".join(COMPONENTS),
            )
        weights.update({k: float(v) for k, v in given.items()})
        if (
            any(not math.isfinite(v) or v < 0 for v in weights.values())
            or sum(weights.values()) <= 0
        ):
            raise InvalidInput("review_scheme.weights", weights, "non-negative numbers, not all 0")
        rest = {k: v for k, v in values.items() if k != "weights"}
        return replace(cls(), weights=weights, **rest)

    def eligible(self, row: Mapping[Any, Any]) -> bool:
        """Does a scored worker meet the minimum-data rules of the shortlist?"""
        have = sum(1 for c in COMPONENTS if pd.notna(row.get(c)))
        return bool(
            int(row["handled"]) >= self.min_handled
            and int(row["sat_n"]) >= self.min_satisfaction
            and int(row["eval_n"]) >= self.min_evaluations
            and have >= self.min_components
            and not (self.complaints_exclude and int(row["complaints"]) > 0)
            and pd.notna(row["score"])
        )


def worker_load(
    grid_loads: Mapping[str, float], grids: list[str], sharing: Mapping[str, int]
) -> float:
    """A worker's load: Σ over their grids of the grid's load index / the number of
    workers sharing it.

    >>> worker_load({"g1": 160.0, "g2": 70.0}, ["g1", "g2"], {"g1": 1, "g2": 2})
    195.0
    """
    return float(sum(grid_loads.get(g, 0.0) / max(1, int(sharing.get(g, 1))) for g in grids))


def score_workers(inputs: pd.DataFrame, scheme: ReviewScheme | None = None) -> pd.DataFrame:
    """Each worker's components, deduction and score (see the module notes).

    ``inputs`` has :data:`INPUT_COLUMNS` (and any other columns, kept). Adds
    ``activity_raw``, ``activity_rate``, ``expected_activity``, the components,
    ``weight_used``, ``base_score``, ``deduction`` and ``score``.

    >>> df = pd.DataFrame({"account_id": [1, 2], "load": [200.0, 100.0], "reported": [8, 4],
    ...     "handled": [4, 2], "on_time": [4, 1], "entries": [0, 0], "sat_n": [1, 0],
    ...     "sat_sum": [5.0, 0.0], "eval_n": [0, 0], "eval_sum": [0.0, 0.0], "patrol_n": [0, 0],
    ...     "patrol_coverage": [np.nan, np.nan], "complaints": [0, 1]})
    >>> out = score_workers(df, ReviewScheme(weights={"activity": 1, "handling": 1,
    ...     "satisfaction": 0, "evaluation": 0, "patrol": 0}))
    >>> out[["activity", "handling", "score"]].values.tolist()
    [[1.0, 1.0, 100.0], [1.0, 0.5, 70.0]]
    """
    s = scheme or ReviewScheme()
    df = inputs.copy()
    missing = [c for c in INPUT_COLUMNS if c not in df.columns]
    if missing:
        raise InvalidInput("inputs", ",".join(missing), "columns " + ", ".join(INPUT_COLUMNS))
    load = np.maximum(df["load"].astype(float).fillna(0.0), s.load_floor)
    df["activity_raw"] = (df["reported"] + df["handled"] + df["entries"]).astype(int)
    df["activity_rate"] = df["activity_raw"] / (load / 100.0)
    active = df.loc[df["activity_raw"] > 0, "activity_rate"]
    median = float(active.median()) if len(active) else 0.0
    df["expected_activity"] = median * load / 100.0
    df["activity"] = np.minimum(1.0, df["activity_rate"] / median) if median > 0 else np.nan
    df["handling"] = (df["on_time"] / df["handled"].where(df["handled"] > 0)).astype(float)
    df["satisfaction"] = ((df["sat_sum"] / df["sat_n"].where(df["sat_n"] > 0) - 1) / 4).astype(
        float
    )
    df["evaluation"] = ((df["eval_sum"] / df["eval_n"].where(df["eval_n"] > 0) - 1) / 4).astype(
        float
    )
    df["patrol"] = df["patrol_coverage"].where(df["patrol_n"] > 0).astype(float)
    w = pd.Series({c: float(s.weights.get(c, 0.0)) for c in COMPONENTS})
    comp = df[list(COMPONENTS)]
    have = comp.notna()
    df["weight_used"] = have.mul(w, axis=1).sum(axis=1)
    weighted = comp.fillna(0.0).mul(w, axis=1).sum(axis=1)
    df["base_score"] = (100.0 * weighted / df["weight_used"].where(df["weight_used"] > 0)).astype(
        float
    )
    df["deduction"] = s.complaint_points * df["complaints"].astype(float)
    df["score"] = (df["base_score"] - df["deduction"]).clip(0.0, 100.0).round(2)
    return df


def rank_workers(scored: pd.DataFrame) -> pd.DataFrame:
    """``rank_community``, ``rank_street``, ``rank_district``: competition ranks by score
    (ties share a rank; workers without a score are not ranked).

    >>> df = pd.DataFrame({"account_id": [1, 2, 3], "score": [80.0, 90.0, 80.0],
    ...     "community_code": ["c", "c", "c"], "street_code": ["s", "s", "s"],
    ...     "district_code": ["d", "d", "d"]})
    >>> rank_workers(df)["rank_community"].tolist()
    [2, 1, 2]
    """
    out = scored.copy()
    for level in ("community", "street", "district"):
        col = f"{level}_code"
        ranks = out.groupby(col, dropna=False)["score"].rank(method="min", ascending=False)
        out[f"rank_{level}"] = ranks.astype("Int64")
    return out


def shortlist(scored: pd.DataFrame, scheme: ReviewScheme | None = None) -> pd.DataFrame:
    """The outstanding-worker shortlist of a scored population (``eligible`` added to
    every row; the shortlisted rows returned, best first, ties ordered by satisfaction,
    handled, account id).

    >>> df = pd.DataFrame({"account_id": [1, 2, 3], "score": [90.0, 90.0, 80.0],
    ...     "handled": [9, 9, 9], "sat_n": [5, 5, 5], "eval_n": [2, 2, 2], "complaints": [0, 0, 0],
    ...     "activity": [1.0] * 3, "handling": [1.0] * 3, "satisfaction": [0.9, 0.8, 0.9],
    ...     "evaluation": [1.0] * 3, "patrol": [np.nan] * 3})
    >>> shortlist(df, ReviewScheme(shortlist_share=0.1))["account_id"].tolist()
    [1, 2]
    """
    s = scheme or ReviewScheme()
    scored = scored.copy()
    eligible = np.array([s.eligible(r) for r in scored.to_dict("records")], dtype=bool)
    scored["eligible"] = eligible
    pool = scored.loc[eligible].sort_values(
        ["score", "satisfaction", "handled", "account_id"],
        ascending=[False, False, False, True],
        na_position="last",
    )
    if pool.empty:
        return pool
    n = max(int(s.shortlist_min), math.ceil(s.shortlist_share * len(pool)))
    cut = float(pool["score"].iloc[min(n, len(pool)) - 1])
    return pool[pool["score"] >= cut].reset_index(drop=True)
