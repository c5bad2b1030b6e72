"""Hot spots: Getis-Ord Gi*, FDR, and emerging hot spot analysis (space-time Gi* + Mann-Kendall).

Gi* per unit
------------
:class:`GiStar` wraps :class:`esda.G_Local` (``star=True``) — the reference
implementation, used as is — and adds what geogrid needs on top: neighbours built from
unit polygons (queen / rook contiguity, or a distance band in metres on centroids in a
metric CRS, e.g. EPSG:4546 for a city at 111°E), two-sided p-values, Benjamini–Hochberg FDR, and the
seven ArcGIS-style confidence classes (``hot_99`` … ``cold_99``).

Emerging hot spot analysis
--------------------------
:class:`EmergingHotSpots` follows ArcGIS Pro's *Emerging Hot Spot Analysis* on a
space-time cube of ``n_units × n_times`` bins (e.g. grid × week):

1. **Space-time Gi\\*** per bin (written here, vectorised with one sparse product: esda
   has no space-time neighbourhoods). The neighbours of bin (i, t) are the spatial
   neighbours of i *and i itself*, at time t and at the ``neighbour_time_steps`` previous
   steps (t-1 … t-k; fewer at the start of the series), all with binary weight 1 — the
   ArcGIS "Neighborhood Time Step" definition. The global mean and variance are those of
   the entire cube (ArcGIS's default global window); ``global_window="time_step"`` uses
   each time slice alone (spatial-only Gi*, requires ``neighbour_time_steps=0``) and is
   then identical to ``esda.G_Local(slice, w, transform="B", star=True)``.
   A bin is a *hot* (*cold*) spot when z > 0 (< 0) and the two-sided p-value
   ``2·Φ(-|z|)`` is < ``alpha`` (optionally after Benjamini–Hochberg over all bins).
2. **Mann-Kendall trend test** on each unit's series of Gi* z-scores (and, reported
   alongside, on its raw values): ``S = Σ_{i<j} sign(x_j - x_i)``,
   ``Var S = [n(n-1)(2n+5) - Σ_g t_g(t_g-1)(2t_g+5)] / 18`` (ties correction),
   ``z = (S - sign S)/√Var S`` (continuity correction), two-sided p.
3. **Categories**, after the definitions of ArcGIS Pro "How Emerging Hot Spot Analysis
   works" (paraphrased; "90 %" means at least 90 % of all time steps; "trend" is the
   Mann-Kendall test on the Gi* z-scores at level ``alpha``):

   * ``new_hot`` — hot in the final time step and never hot before.
   * ``consecutive_hot`` — a single uninterrupted run of at least two hot bins ending at
     the final time step, never hot before the run, and less than 90 % of all bins hot.
   * ``intensifying_hot`` — hot in at least 90 % of the time steps including the final
     one, and the clustering intensity increases significantly (trend z > 0).
   * ``persistent_hot`` — hot in at least 90 % of the time steps including the final one,
     no significant trend.
   * ``diminishing_hot`` — hot in at least 90 % of the time steps including the final
     one, and the intensity decreases significantly (trend z < 0).
   * ``sporadic_hot`` — hot in the final time step, an on-again off-again history of hot
     bins, less than 90 % hot, and never a significant cold spot.
   * ``oscillating_hot`` — hot in the final time step, a significant cold spot in at least
     one prior step, and less than 90 % hot.
   * ``historical_hot`` — not hot in the final time step, but hot in at least 90 % of the
     time steps.
   * the ``*_cold`` counterparts with hot and cold exchanged ("intensifying cold": the z
     trend is significantly *downwards*), and ``no_pattern`` otherwise.

   Choices where the ArcGIS wording leaves room (documented here, tested):
   ``new``, ``consecutive`` and ``sporadic`` additionally require the location never to
   have been a significant spot of the opposite kind — a location with a cold history
   that turns hot is ``oscillating`` (as in R ``sfdep``). ``persistent`` requires the
   final step hot, so it cannot overlap ``historical``. Patterns ending hot/cold are
   tested before the ``historical`` ones.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse, stats

from geogrid.core.crs import metric_crs_of
from geogrid.errors import InvalidInput

__all__ = [
    "EMERGING_CATEGORIES",
    "GI_CLASSES",
    "EmergingHotSpots",
    "GiStar",
    "MannKendall",
    "emerging_hotspots",
    "gi_star",
    "mann_kendall",
    "space_time_gi",
    "spatial_weights",
]


GI_CLASSES = (
    "hot_99",
    "hot_95",
    "hot_90",
    "not_significant",
    "cold_90",
    "cold_95",
    "cold_99",
)

EMERGING_CATEGORIES = (
    "new_hot",
    "consecutive_hot",
    "intensifying_hot",
    "persistent_hot",
    "diminishing_hot",
    "sporadic_hot",
    "oscillating_hot",
    "historical_hot",
    "new_cold",
    "consecutive_cold",
    "intensifying_cold",
    "persistent_cold",
    "diminishing_cold",
    "sporadic_cold",
    "oscillating_cold",
    "historical_cold",
    "no_pattern",
)


# --------------------------------------------------------------------------- weights


def spatial_weights(
    geoms: Any,
    kind: str = "queen",
    *,
    threshold_m: float | None = None,
    metric_crs: str | None = None,
):
    """Binary libpysal weights for unit polygons (ids 0..n-1 in row order).

    Parameters
    ----------
    geoms : GeoDataFrame or GeoSeries
        Unit polygons, any CRS (EPSG:4326 storage is fine).
    kind : {"queen", "rook", "distance"}
        Queen (shared vertex or edge) or rook (shared edge) contiguity, or a distance band
        on polygon centroids.
    threshold_m : float, optional
        Distance band in metres (``kind="distance"``). Default: the smallest distance at
        which every unit has a neighbour (``libpysal.weights.min_threshold_distance``).
    metric_crs : str, optional
        CRS the centroids are computed in when ``geoms`` is in a geographic CRS (e.g. the
        city's ``settings.city.metric_crs``). Default: the CGCS2000 3° Gauss-Kruger zone of
        the units' centre (:func:`geogrid.core.crs.metric_crs_of`).
    """
    # libpysal is heavy (~2 s to import): loaded when weights are built, not on import
    from libpysal import weights as lw

    if isinstance(geoms, gpd.GeoSeries):
        geoms = gpd.GeoDataFrame(geometry=geoms)
    if not isinstance(geoms, gpd.GeoDataFrame):
        raise InvalidInput(
            "w_or_geoms", type(geoms).__name__, "a libpysal W/Graph or a GeoDataFrame"
        )
    gdf = geoms.reset_index(drop=True)
    if kind in ("queen", "rook"):
        cls = lw.Queen if kind == "queen" else lw.Rook
        return cls.from_dataframe(gdf, use_index=False, silence_warnings=True)
    if kind != "distance":
        raise InvalidInput("weights", kind, '"queen", "rook" or "distance"')
    if gdf.crs is None:
        raise InvalidInput("geoms.crs", None, "a GeoDataFrame with a CRS (distance in metres)")
    if gdf.crs.is_geographic:
        gdf = gdf.to_crs(metric_crs if metric_crs is not None else metric_crs_of(gdf))
    c = gdf.geometry.centroid
    coords = np.column_stack([c.x.to_numpy(), c.y.to_numpy()])
    if threshold_m is None:
        threshold_m = float(lw.min_threshold_distance(coords)) * (1 + 1e-9)
    if not (np.isfinite(threshold_m) and threshold_m > 0):
        raise InvalidInput("threshold_m", threshold_m, "a positive distance in metres")
    return lw.DistanceBand(coords, threshold=threshold_m, binary=True, silence_warnings=True)


def _resolve_weights(w_or_geoms: Any, kind: str, threshold_m: float | None, metric_crs: str | None):
    if hasattr(w_or_geoms, "sparse") and hasattr(w_or_geoms, "n"):
        if threshold_m is not None:
            raise InvalidInput("threshold_m", threshold_m, "None when weights are given")
        # esda sets `w.transform` in place: work on a copy, never mutate the caller's W
        w = copy.deepcopy(w_or_geoms)
        if getattr(w, "transform", None) == "O" and np.all(w.sparse.data == 1.0):
            # binary weights: say so, so esda's Gi* puts 1 on the diagonal before any
            # row-standardisation (instead of warning and guessing the row maximum)
            w.transform = "B"
        return w
    return spatial_weights(w_or_geoms, kind, threshold_m=threshold_m, metric_crs=metric_crs)


def _binary_star(w) -> sparse.csr_matrix:
    """Binary sparse weights with a unit diagonal (Gi* includes the unit itself)."""
    s = sparse.csr_matrix(w.sparse, dtype=np.float64, copy=True)
    s.data[:] = 1.0
    s.setdiag(1.0)
    s.eliminate_zeros()
    return s


def _level_labels(alpha_levels: Sequence[float]) -> list[tuple[float, str]]:
    levels = sorted({float(a) for a in alpha_levels}, reverse=True)
    if not levels or not all(0.0 < a < 1.0 for a in levels):
        raise InvalidInput("alpha_levels", alpha_levels, "significance levels in (0, 1)")
    return [(a, f"{round((1.0 - a) * 100):d}") for a in levels]


def _classes(z: np.ndarray, p: np.ndarray, alpha_levels: Sequence[float]) -> np.ndarray:
    out = np.full(z.shape, "not_significant", dtype=object)
    for a, label in _level_labels(alpha_levels):  # loosest first, strictest overrides
        sig = np.nan_to_num(p, nan=1.0) <= a
        out[sig & (z > 0)] = f"hot_{label}"
        out[sig & (z < 0)] = f"cold_{label}"
    return out


# --------------------------------------------------------------------------- Gi*


class GiStar:
    """Getis-Ord Gi* hot spots per unit, fitted at construction.

    Parameters
    ----------
    y : array-like, shape (n,)
        Value per unit (e.g. incidents per grid, or per 1,000 residents).
    w_or_geoms : libpysal W or Graph, or GeoDataFrame/GeoSeries of unit polygons
        Spatial weights aligned with ``y``, or polygons to build them from.
    weights : {"queen", "rook", "distance"}
        How to build the weights from polygons (see :func:`spatial_weights`).
    threshold_m : float, optional
        Distance band in metres for ``weights="distance"``.
    transform : {"B", "R"}
        Binary (ArcGIS, the default) or row-standardised weights, as in esda.
    permutations : int
        Conditional permutations for ``p_sim`` (0 = analytic only).
    seed : int, optional
        Seed of the permutations (reproducible ``p_sim``).
    fdr : bool
        Classify with Benjamini–Hochberg adjusted p-values (``p_fdr``).
    alpha_levels : sequence of float
        Significance levels of the classes (0.10, 0.05, 0.01 → 90/95/99).
    n_jobs : int
        Processes for esda's permutation engine.

    Attributes
    ----------
    Gs, Zs : numpy.ndarray
        Gi* statistic and its z-score (esda ``G_Local(..., star=True)``).
    p_norm : numpy.ndarray
        One-sided analytic p-value ``Φ(-|z|)``, exactly esda's ``p_norm``.
    p_sim : numpy.ndarray or None
        esda's one-sided (folded) conditional-permutation pseudo p-value.
    p_value : numpy.ndarray
        Two-sided p-value used for the classes: ``min(1, 2·p_sim)`` with permutations,
        else ``2·p_norm`` (so ``hot_95`` ⇔ z ≥ 1.96, the ArcGIS convention).
    p_fdr : numpy.ndarray
        Benjamini–Hochberg adjusted ``p_value`` (``scipy.stats.false_discovery_control``).
    classes : numpy.ndarray of str
        ``hot_99``, ``hot_95``, ``hot_90``, ``not_significant``, ``cold_90`` …
        from ``p_fdr`` if ``fdr`` else ``p_value``, and the sign of ``Zs``.
    """

    def __init__(
        self,
        y: Any,
        w_or_geoms: Any,
        *,
        weights: str = "queen",
        threshold_m: float | None = None,
        transform: str = "B",
        permutations: int = 999,
        seed: int | None = None,
        fdr: bool = True,
        alpha_levels: Sequence[float] = (0.10, 0.05, 0.01),
        metric_crs: str | None = None,
        n_jobs: int = 1,
    ):
        # esda is heavy (~2 s to import): loaded when a statistic is fitted, not on import
        import esda

        y = np.asarray(y, dtype=np.float64).ravel()
        if not np.isfinite(y).all():
            raise InvalidInput("y", "non-finite values", "finite numbers, one per unit")
        if transform.upper() not in ("B", "R"):
            raise InvalidInput("transform", transform, '"B" or "R"')
        if permutations < 0:
            raise InvalidInput("permutations", permutations, "0 or a positive integer")
        self.index = getattr(w_or_geoms, "index", None)
        w = _resolve_weights(w_or_geoms, weights, threshold_m, metric_crs)
        if w.n != y.size:
            raise InvalidInput("y", y.size, f"{w.n} values, one per unit of the weights")
        if np.ptp(y) == 0:
            raise InvalidInput("y", "constant", "values that vary between units")
        _level_labels(alpha_levels)
        self.y, self.w = y, w
        self.permutations, self.fdr = int(permutations), bool(fdr)
        self.alpha_levels = tuple(alpha_levels)
        g = esda.G_Local(
            y,
            w,
            transform=transform.upper(),
            permutations=int(permutations),
            star=True,
            keep_simulations=False,
            n_jobs=n_jobs,
            seed=seed,
        )
        self.Gs, self.EGs, self.VGs, self.Zs = g.Gs, g.EGs, g.VGs, g.Zs
        self.p_norm = g.p_norm
        self.p_sim = g.p_sim if permutations else None
        if self.p_sim is not None:
            self.p_value = np.minimum(1.0, 2.0 * self.p_sim)
        else:
            self.p_value = np.minimum(1.0, 2.0 * self.p_norm)
        # a unit whose G* has no variance (e.g. every unit its neighbour) is not significant
        self.p_value = np.where(np.isnan(self.p_value), 1.0, self.p_value)
        self.p_fdr = stats.false_discovery_control(self.p_value, method="bh")
        self.classes = _classes(self.Zs, self.p_fdr if fdr else self.p_value, alpha_levels)

    def __repr__(self) -> str:
        hot = int(np.char.startswith(self.classes.astype(str), "hot").sum())
        cold = int(np.char.startswith(self.classes.astype(str), "cold").sum())
        return f"GiStar(n={self.y.size}, hot={hot}, cold={cold}, fdr={self.fdr})"

    def to_frame(self) -> pd.DataFrame:
        """One row per unit: ``G, z, p_norm, p_sim, p_value, p_fdr, class``."""
        return pd.DataFrame(
            {
                "G": self.Gs,
                "z": self.Zs,
                "p_norm": self.p_norm,
                "p_sim": self.p_sim if self.p_sim is not None else np.nan,
                "p_value": self.p_value,
                "p_fdr": self.p_fdr,
                "class": pd.Categorical(self.classes, categories=_class_order(self.alpha_levels)),
            },
            index=self.index,
        )


def _class_order(alpha_levels: Sequence[float]) -> list[str]:
    labels = [lab for _, lab in _level_labels(alpha_levels)]
    return (
        [f"hot_{lab}" for lab in reversed(labels)]
        + ["not_significant"]
        + [f"cold_{lab}" for lab in labels]
    )


def gi_star(y: Any, w_or_geoms: Any, **kwargs: Any) -> GiStar:
    """Getis-Ord Gi* per unit; see :class:`GiStar` for the parameters and attributes."""
    return GiStar(y, w_or_geoms, **kwargs)


# --------------------------------------------------------------------------- Mann-Kendall


@dataclass(frozen=True)
class MannKendall:
    """Mann-Kendall trend test results, one value per series (row).

    ``s`` is the Kendall S statistic; ``var_s`` its variance with ties correction;
    ``z`` the standard normal score; ``p`` the two-sided p-value; ``tau`` = S / (n(n-1)/2).
    """

    s: np.ndarray
    var_s: np.ndarray
    z: np.ndarray
    p: np.ndarray
    tau: np.ndarray


def mann_kendall(x: Any, *, continuity: bool = True, chunk: int = 4096) -> MannKendall:
    """Vectorised Mann-Kendall test along the last axis of ``x`` (time in order).

    ``S`` equals the numerator of Kendall's tau between time and the series, so with
    ``continuity=False`` ``p`` equals ``scipy.stats.kendalltau(t, x, method="asymptotic")``.

    >>> r = mann_kendall([[1, 2, 3, 4, 5], [5, 4, 4, 2, 1]])
    >>> r.s.tolist()
    [10.0, -9.0]
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] < 3:
        raise InvalidInput("x", x.shape, "series of at least 3 time steps (units × times)")
    if not np.isfinite(x).all():
        raise InvalidInput("x", "non-finite values", "finite numbers")
    m, n = x.shape
    s = np.zeros(m)
    for k in range(1, n):
        s += np.sign(x[:, k:] - x[:, :-k]).sum(axis=1)
    ties = np.empty(m)
    for a in range(0, m, chunk):  # size of each element's tie group: Σ_e (t_e-1)(2t_e+5)
        blk = x[a : a + chunk]
        t = (blk[:, :, None] == blk[:, None, :]).sum(axis=2).astype(np.float64)
        ties[a : a + chunk] = ((t - 1.0) * (2.0 * t + 5.0)).sum(axis=1)
    var_s = (n * (n - 1) * (2 * n + 5) - ties) / 18.0
    num = s - np.sign(s) if continuity else s
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var_s > 0, num / np.sqrt(var_s), 0.0)
    p = 2.0 * stats.norm.sf(np.abs(z))
    return MannKendall(s=s, var_s=var_s, z=z, p=p, tau=s / (n * (n - 1) / 2.0))


# --------------------------------------------------------------------------- space-time


def space_time_gi(
    cube: np.ndarray,
    w: Any,
    *,
    neighbour_time_steps: int = 1,
    global_window: str = "cube",
) -> np.ndarray:
    """Space-time Gi* z-scores, shape ``(n_units, n_times)`` (see the module docstring).

    Written here (not esda) because esda has no time-lagged neighbourhoods; for
    ``neighbour_time_steps=0, global_window="time_step"`` it equals esda's G_Local per
    slice, and for ``global_window="cube"`` it equals esda's G_Local on the flattened cube
    with the space-time weights ``kron(T, W*)`` (tests/test_hotspots.py).
    Bins of a slice (window) with zero variance get z = NaN (never significant).
    """
    x = np.asarray(cube, dtype=np.float64)
    n, t = x.shape
    k = int(neighbour_time_steps)
    if k < 0:
        raise InvalidInput("neighbour_time_steps", neighbour_time_steps, "0 or more steps")
    if global_window not in ("cube", "time_step"):
        raise InvalidInput("global_window", global_window, '"cube" or "time_step"')
    if global_window == "time_step" and k:
        raise InvalidInput(
            "neighbour_time_steps", k, '0 with global_window="time_step" (spatial-only Gi*)'
        )
    s = _binary_star(w)
    if s.shape[0] != n:
        raise InvalidInput("cube", x.shape, f"{s.shape[0]} units (rows), one per unit of w")
    lag_s = np.asarray(s @ x)  # Σ_j w_ij x_jt
    deg = np.asarray(s.sum(axis=1)).ravel()
    # window sums over time t-k..t via a cumulative sum
    c = np.cumsum(np.pad(lag_s, ((0, 0), (1, 0))), axis=1)
    lo = np.maximum(np.arange(t) - k, 0)
    lag = c[:, np.arange(t) + 1] - c[:, lo]
    wi = deg[:, None] * (np.arange(t) - lo + 1)[None, :]  # Σ_j w_ij (binary: = Σ w_ij²)
    if global_window == "cube":
        nn = float(x.size)
        mean = x.mean()
        sd = x.std()  # population standard deviation, as Getis & Ord (1995) and esda
    else:
        nn = float(n)
        mean = x.mean(axis=0)[None, :]
        sd = x.std(axis=0)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (lag - mean * wi) / (sd * np.sqrt((nn * wi - wi**2) / (nn - 1.0)))
    z[~np.isfinite(z)] = np.nan
    return z


def _final_run(flags: np.ndarray) -> np.ndarray:
    """Length of the run of True values ending at the last column."""
    rev = flags[:, ::-1]
    first_false = np.where(rev.all(axis=1), flags.shape[1], np.argmin(rev, axis=1))
    return first_false


class EmergingHotSpots:
    """Emerging hot spot analysis of a space-time cube, fitted at construction.

    Parameters
    ----------
    cube : ndarray (n_units, n_times) or DataFrame
        Counts (or any value) per unit and time step, time steps in order. A long
        DataFrame with columns ``unit_col``, ``time_col``, ``value_col`` is pivoted
        (missing bins = 0); its units are put in ``w.id_order`` when every unit label is
        found there, else in sorted order (which must then match ``w``).
    w : libpysal W or Graph, or GeoDataFrame of unit polygons
        Spatial neighbours (binarised; each unit is its own neighbour, Gi*).
    weights, threshold_m, metric_crs :
        Used to build ``w`` from polygons (see :func:`spatial_weights`).
    neighbour_time_steps : int
        k previous time steps in the neighbourhood (ArcGIS "Neighborhood Time Step").
    alpha : float
        Significance level of the hot/cold bins and of the Mann-Kendall trend.
    global_window : {"cube", "time_step"}
        Where the Gi* mean and variance come from (see module docstring).
    fdr : bool
        Benjamini–Hochberg over all bins before testing the bins at ``alpha``.

    Attributes
    ----------
    z, p : ndarray (n_units, n_times)
        Space-time Gi* z-scores and two-sided p-values.
    hot, cold : ndarray of bool (n_units, n_times)
    trend : MannKendall
        Trend of each unit's Gi* z series (NaN z treated as 0).
    value_trend : MannKendall
        Trend of each unit's raw values.
    categories : ndarray of str
        One of :data:`EMERGING_CATEGORIES` per unit.
    units, times : Index
        Row and column labels.
    """

    def __init__(
        self,
        cube: Any,
        w: Any,
        *,
        weights: str = "queen",
        threshold_m: float | None = None,
        metric_crs: str | None = None,
        neighbour_time_steps: int = 1,
        alpha: float = 0.05,
        global_window: str = "cube",
        fdr: bool = False,
        unit_col: str = "unit",
        time_col: str = "time",
        value_col: str = "count",
    ):
        if not 0.0 < alpha < 1.0:
            raise InvalidInput("alpha", alpha, "a significance level in (0, 1)")
        self.w = _resolve_weights(w, weights, threshold_m, metric_crs)
        x, self.units, self.times = _as_cube(cube, self.w, unit_col, time_col, value_col)
        n, t = x.shape
        if t < 3:
            raise InvalidInput("cube", x.shape, "at least 3 time steps")
        self.values = x
        self.alpha = float(alpha)
        self.neighbour_time_steps = int(neighbour_time_steps)
        self.z = space_time_gi(
            x, self.w, neighbour_time_steps=neighbour_time_steps, global_window=global_window
        )
        p = 2.0 * stats.norm.sf(np.abs(self.z))
        if fdr:
            flat = np.where(np.isnan(p), 1.0, p).ravel()
            p = stats.false_discovery_control(flat, method="bh").reshape(p.shape)
        self.p = p
        sig = np.nan_to_num(p, nan=1.0) < alpha
        self.hot = sig & (self.z > 0)
        self.cold = sig & (self.z < 0)
        self.trend = mann_kendall(np.nan_to_num(self.z, nan=0.0))
        self.value_trend = mann_kendall(x)
        self.categories = _categorise(self.hot, self.cold, self.trend, alpha)

    def to_frame(self) -> pd.DataFrame:
        """Per unit: category, n_hot, n_cold, final z/p, trend z/p (Gi* and values)."""
        return pd.DataFrame(
            {
                "category": pd.Categorical(self.categories, categories=list(EMERGING_CATEGORIES)),
                "n_hot": self.hot.sum(axis=1),
                "n_cold": self.cold.sum(axis=1),
                "final_z": self.z[:, -1],
                "final_p": self.p[:, -1],
                "trend_s": self.trend.s,
                "trend_z": self.trend.z,
                "trend_p": self.trend.p,
                "value_trend_z": self.value_trend.z,
                "value_trend_p": self.value_trend.p,
            },
            index=self.units,
        )


def _as_cube(cube, w, unit_col, time_col, value_col):
    if isinstance(cube, pd.DataFrame):
        missing = {unit_col, time_col, value_col} - set(cube.columns)
        if missing:
            raise InvalidInput("cube", sorted(cube.columns), f"columns {sorted(missing)} too")
        wide = cube.pivot_table(
            index=unit_col, columns=time_col, values=value_col, aggfunc="sum", fill_value=0
        ).sort_index(axis=1)
        ids = list(getattr(w, "id_order", []) or [])
        if ids and set(wide.index) <= set(ids):
            wide = wide.reindex(ids, fill_value=0)
        return wide.to_numpy(dtype=np.float64), wide.index, wide.columns
    x = np.asarray(cube, dtype=np.float64)
    if x.ndim != 2:
        raise InvalidInput("cube", x.shape, "a 2-D array (n_units, n_times) or a long DataFrame")
    if not np.isfinite(x).all():
        raise InvalidInput("cube", "non-finite values", "finite numbers")
    return x, pd.RangeIndex(x.shape[0], name="unit"), pd.RangeIndex(x.shape[1], name="time")


def _categorise(hot: np.ndarray, cold: np.ndarray, trend: MannKendall, alpha: float):
    n, t = hot.shape
    out = np.full(n, "no_pattern", dtype=object)
    trend_sig = trend.p < alpha
    decided = np.zeros(n, dtype=bool)

    def put(mask, name):
        nonlocal decided
        m = mask & ~decided
        out[m] = name
        decided |= m

    def final_patterns(a: np.ndarray, b: np.ndarray, kind: str, up: np.ndarray):
        """Patterns whose final bin is an `a` spot (a = hot, b = the opposite kind)."""
        n_a = a.sum(axis=1)
        mostly = n_a >= 0.9 * t - 1e-9
        final = a[:, -1]
        never_b = ~b.any(axis=1)
        run = _final_run(a)
        put(final & (n_a == 1) & never_b, f"new_{kind}")
        put(final & (run >= 2) & (n_a == run) & ~mostly & never_b, f"consecutive_{kind}")
        put(final & mostly & trend_sig & up, f"intensifying_{kind}")
        put(final & mostly & ~trend_sig, f"persistent_{kind}")
        put(final & mostly & trend_sig & ~up, f"diminishing_{kind}")
        put(final & ~mostly & never_b, f"sporadic_{kind}")
        put(final & ~mostly & b.any(axis=1), f"oscillating_{kind}")

    final_patterns(hot, cold, "hot", trend.z > 0)
    final_patterns(cold, hot, "cold", trend.z < 0)  # colder = z trending down
    put(~hot[:, -1] & (hot.sum(axis=1) >= 0.9 * t - 1e-9), "historical_hot")
    put(~cold[:, -1] & (cold.sum(axis=1) >= 0.9 * t - 1e-9), "historical_cold")
    return out


def emerging_hotspots(cube: Any, w: Any, **kwargs: Any) -> pd.DataFrame:
    """Emerging hot spot categories per unit (DataFrame); see :class:`EmergingHotSpots`."""
    return EmergingHotSpots(cube, w, **kwargs).to_frame()
