"""geogrid.core.hotspots against esda, scipy and planted space-time patterns."""

from __future__ import annotations

import esda
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from libpysal.weights import W, lat2W
from scipy import sparse, stats

from geogrid.core.hotspots import (
    EMERGING_CATEGORIES,
    EmergingHotSpots,
    GiStar,
    emerging_hotspots,
    gi_star,
    mann_kendall,
    space_time_gi,
    spatial_weights,
)
from geogrid.errors import InvalidInput

SIDE = 50  # 50 × 50 lattice = 2,500 units


@pytest.fixture
def lattice():
    return lat2W(SIDE, SIDE)  # rook


@pytest.fixture(scope="module")
def clustered():
    rng = np.random.default_rng(0)
    g = np.zeros((SIDE, SIDE))
    g[10:20, 10:20] = 4.0  # planted hot cluster
    g[35:45, 30:40] = -2.5  # planted cold cluster
    return np.maximum(rng.poisson(3, SIDE * SIDE) + g.ravel(), 0).astype(float)


def _grid_gdf(side: int, crs="EPSG:4546", x0=500_000.0, y0=2_500_000.0, cell=500.0):
    boxes = [
        shapely.box(x0 + c * cell, y0 - (r + 1) * cell, x0 + (c + 1) * cell, y0 - r * cell)
        for r in range(side)
        for c in range(side)
    ]
    return gpd.GeoDataFrame(
        {"code": [f"g{i}" for i in range(side * side)]}, geometry=boxes, crs=crs
    )


# --------------------------------------------------------------------------- Gi*


@pytest.mark.filterwarnings("ignore:Gi\\* requested:UserWarning")  # esda's own reference
@pytest.mark.parametrize("transform", ["B", "R"])
def test_gi_star_matches_esda(lattice, clustered, transform):
    ref = esda.G_Local(clustered, lat2W(SIDE, SIDE), transform=transform, star=True, permutations=0)
    got = gi_star(clustered, lattice, transform=transform, permutations=0)
    assert lattice.transform == "O"  # the caller's weights are not modified
    np.testing.assert_allclose(got.Zs, ref.Zs, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got.p_norm, ref.p_norm, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got.Gs, ref.Gs, rtol=1e-12)


def test_gi_star_recovers_planted_clusters_and_classes(lattice, clustered):
    r = GiStar(clustered, lattice, permutations=0, fdr=False)
    grid = r.classes.reshape(SIDE, SIDE)
    assert (np.char.startswith(grid[12:18, 12:18].astype(str), "hot")).all()
    assert (np.char.startswith(grid[37:43, 32:38].astype(str), "cold")).mean() > 0.85
    assert (np.char.startswith(grid[:8, :8].astype(str), "not")).mean() > 0.8
    # classes are consistent with z and two-sided p
    z, p = r.Zs, r.p_value
    np.testing.assert_allclose(p, 2 * stats.norm.sf(np.abs(z)))
    expect = np.full(z.shape, "not_significant", dtype=object)
    for a, lab in ((0.10, "90"), (0.05, "95"), (0.01, "99")):
        expect[(p <= a) & (z > 0)] = f"hot_{lab}"
        expect[(p <= a) & (z < 0)] = f"cold_{lab}"
    np.testing.assert_array_equal(r.classes, expect)
    assert set(r.classes[np.abs(z) >= 2.58]) <= {"hot_99", "cold_99"}
    frame = r.to_frame()
    assert list(frame.columns) == ["G", "z", "p_norm", "p_sim", "p_value", "p_fdr", "class"]
    assert list(frame["class"].cat.categories) == [
        "hot_99", "hot_95", "hot_90", "not_significant", "cold_90", "cold_95", "cold_99"
    ]  # fmt: skip


def test_fdr_matches_scipy_and_esda(lattice, clustered):
    r = GiStar(clustered, lattice, permutations=0, fdr=True)
    np.testing.assert_allclose(
        r.p_fdr, stats.false_discovery_control(r.p_value, method="bh"), rtol=1e-12
    )
    # BH-adjusted p ≤ 0.05 ⇔ p ≤ esda.fdr's threshold at 0.05
    thr = esda.fdr(r.p_value, 0.05)
    np.testing.assert_array_equal(r.p_fdr <= 0.05, r.p_value <= thr)
    sig = np.char.startswith(r.classes.astype(str), "hot") | np.char.startswith(
        r.classes.astype(str), "cold"
    )
    np.testing.assert_array_equal(sig, r.p_fdr <= 0.10)
    unadjusted = GiStar(clustered, lattice, permutations=0, fdr=False)
    assert (unadjusted.classes != "not_significant").sum() > sig.sum()


@pytest.mark.slow  # esda's numba permutation kernel compiles on first use (~20-70 s)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_permutation_p_values(lattice, clustered):
    a = GiStar(clustered, lattice, permutations=499, seed=7, fdr=False)
    b = GiStar(clustered, lattice, permutations=499, seed=7, fdr=False)
    np.testing.assert_array_equal(a.p_sim, b.p_sim)  # reproducible with a seed
    ref = esda.G_Local(
        clustered, lattice, transform="B", star=True, permutations=499, seed=7, n_jobs=1
    )
    np.testing.assert_allclose(a.p_sim, ref.p_sim)
    # statistically consistent with the analytic p-values
    # pseudo p-values are noisy (resolution 1/500) but track the analytic ones
    assert stats.spearmanr(a.p_sim, a.p_norm).statistic > 0.6
    agree = ((a.p_value < 0.05) == (2 * a.p_norm < 0.05)).mean()
    assert agree > 0.95
    strong = np.abs(a.Zs) > 4
    assert strong.sum() > 20 and (a.p_value[strong] < 0.01).mean() > 0.9
    assert a.p_sim.min() == pytest.approx(1 / 500)


def test_gi_star_from_polygons_queen_rook_distance():
    gdf = _grid_gdf(20)
    rng = np.random.default_rng(2)
    y = rng.poisson(2, 400).astype(float)
    y[:60] += 5
    for kind, lw_card in (("rook", 4), ("queen", 8)):
        r = gi_star(y, gdf, weights=kind, permutations=0)
        assert max(r.w.cardinalities.values()) == lw_card
        ref = esda.G_Local(y, r.w, transform="B", star=True, permutations=0)
        np.testing.assert_allclose(r.Zs, ref.Zs, atol=1e-10)
    # distance band in metres on centroids: 500 m cells → rook, 710 m → queen
    d = gi_star(y, gdf, weights="distance", threshold_m=710.0, permutations=0)
    q = gi_star(y, gdf, weights="queen", permutations=0)
    np.testing.assert_allclose(d.Zs, q.Zs, atol=1e-10)
    # storage CRS (EPSG:4326) is projected to EPSG:4546 for distances
    d84 = gi_star(y, gdf.to_crs("EPSG:4326"), weights="distance", threshold_m=710.0, permutations=0)
    np.testing.assert_allclose(d84.Zs, q.Zs, atol=1e-10)
    # default threshold: everyone has a neighbour
    w = spatial_weights(gdf, "distance")
    assert min(w.cardinalities.values()) >= 1
    assert gi_star(y, gdf, permutations=0).to_frame().index.equals(gdf.index)


def test_gi_star_invalid_inputs(lattice, clustered):
    with pytest.raises(InvalidInput, match="2500 values"):
        gi_star(clustered[:10], lattice)
    with pytest.raises(InvalidInput, match="weights="):
        gi_star(np.arange(4.0), _grid_gdf(2), weights="king")
    with pytest.raises(InvalidInput, match="constant"):
        gi_star(np.ones(2500), lattice, permutations=0)


# --------------------------------------------------------------------------- Mann-Kendall


def test_mann_kendall_matches_kendalltau():
    rng = np.random.default_rng(4)
    t = np.arange(24)
    x = rng.normal(size=(300, 24)) + np.linspace(0, 1, 300)[:, None] * t / 10
    x[:100] = np.round(x[:100])  # ties
    r = mann_kendall(x, continuity=False)
    for i in range(0, 300, 7):
        res = stats.kendalltau(t, x[i], method="asymptotic")
        n0 = 24 * 23 / 2
        _, counts = np.unique(x[i], return_counts=True)
        n2 = (counts * (counts - 1) / 2).sum()
        s = res.statistic * np.sqrt(n0 * (n0 - n2))  # tau-b → S
        assert r.s[i] == pytest.approx(s, abs=1e-9)
        assert r.p[i] == pytest.approx(res.pvalue, rel=1e-10, abs=1e-14)
    # continuity correction only shrinks |z|
    rc = mann_kendall(x)
    assert np.all(np.abs(rc.z) <= np.abs(r.z) + 1e-15)
    assert np.all(mann_kendall(np.ones((2, 5))).p == 1.0)


# --------------------------------------------------------------------------- space-time


def test_space_time_gi_matches_esda_on_kron_weights(lattice):
    rng = np.random.default_rng(5)
    n, t, k = SIDE * SIDE, 6, 1
    cube = rng.poisson(3, (n, t)).astype(float)
    z = space_time_gi(cube, lattice, neighbour_time_steps=k)
    s = sparse.csr_matrix(lattice.sparse)
    s.setdiag(1.0)
    band = sparse.csr_matrix(np.tri(t, t, 0) - np.tri(t, t, -k - 1))  # s in [t-k, t]
    wst = W.from_sparse(sparse.kron(band, s).tocsr())
    ref = esda.G_Local(cube.T.ravel(), wst, transform="B", star=True, permutations=0)
    np.testing.assert_allclose(z, ref.Zs.reshape(t, n).T, atol=1e-10)
    # spatial-only with per-slice window = esda per slice
    z0 = space_time_gi(cube, lattice, neighbour_time_steps=0, global_window="time_step")
    for j in range(t):
        ref = esda.G_Local(cube[:, j], lattice, transform="B", star=True, permutations=0)
        np.testing.assert_allclose(z0[:, j], ref.Zs, atol=1e-10)


# Planted patterns: a 10 × 10 block of units whose values are shifted at chosen time steps
# on a quiet background (N(10, 1)). FDR over all 50,000 bins keeps chance bins out of the
# bins' histories (with 20 steps at α = 0.05, an unadjusted noise unit has a significant
# bin somewhere ~60 % of the time, which turns "new" into "sporadic"/"oscillating").
BLOCK = (slice(20, 30), slice(20, 30))
CENTRE = [r * SIDE + c for r in range(23, 27) for c in range(23, 27)]
T = 20
HI, LO = 4.0, -4.0

PATTERNS: dict[str, np.ndarray] = {
    "new_hot": np.r_[np.zeros(T - 1), 2 * HI],  # final step only
    "consecutive_hot": np.r_[np.zeros(T - 4), np.full(4, HI)],  # last 4 steps
    "intensifying_hot": np.linspace(2.0, 6.0, T),  # always, rising
    "persistent_hot": np.full(T, HI),  # always, flat
    "diminishing_hot": np.linspace(6.0, 2.0, T),  # always, falling
    "sporadic_hot": np.where(np.arange(T) % 4 == 3, HI, 0.0),  # on/off, final on
    "oscillating_hot": np.r_[np.full(5, LO), np.zeros(T - 7), HI, HI],  # cold, then hot
    "historical_hot": np.r_[np.full(T - 2, HI), 0.0, 0.0],  # 90 % hot, not at the end
    "new_cold": np.r_[np.zeros(T - 1), 2 * LO],
    "consecutive_cold": np.r_[np.zeros(T - 4), np.full(4, LO)],
    "intensifying_cold": np.linspace(-2.0, -6.0, T),
    "persistent_cold": np.full(T, LO),
    "diminishing_cold": np.linspace(-6.0, -2.0, T),
    "sporadic_cold": np.where(np.arange(T) % 4 == 3, LO, 0.0),
    "oscillating_cold": np.r_[np.full(4, HI), np.zeros(T - 6), LO, LO],
    "historical_cold": np.r_[np.full(T - 2, LO), 0.0, 0.0],
}


def _cube(pattern: np.ndarray, seed: int = 11) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(10.0, 1.0, (SIDE, SIDE, T))
    base[BLOCK[0], BLOCK[1], :] += pattern[None, None, :]
    return np.maximum(base, 0.0).reshape(SIDE * SIDE, T)


def test_every_category_is_planted():
    assert set(PATTERNS) | {"no_pattern"} == set(EMERGING_CATEGORIES)


@pytest.mark.parametrize("category", list(PATTERNS))
def test_emerging_categories_of_planted_patterns(lattice, category):
    cube = _cube(PATTERNS[category])
    res = EmergingHotSpots(cube, lattice, neighbour_time_steps=1, fdr=True)
    got = pd.Series(res.categories[CENTRE]).value_counts()
    assert got.index[0] == category, f"{category}: {got.to_dict()}"
    # persistent: the z series of neighbouring bins overlap in time (k = 1), so the
    # Mann-Kendall test is somewhat liberal and a few units show a spurious trend
    assert got.iloc[0] >= 0.75 * len(CENTRE), got.to_dict()
    # the background (far from the block) shows no pattern
    far = res.categories.reshape(SIDE, SIDE)[:10, :10].ravel()
    assert (far == "no_pattern").mean() > 0.95


def test_emerging_frame_and_long_input(lattice):
    cube = _cube(PATTERNS["intensifying_hot"])
    long = pd.DataFrame(
        {
            "unit": np.repeat(np.arange(SIDE * SIDE), T),
            "time": np.tile(pd.date_range("2024-01-01", periods=T, freq="W"), SIDE * SIDE),
            "count": cube.ravel(),
        }
    ).sample(frac=1.0, random_state=1)
    long = long[long["count"] > 0]  # empty bins may be missing: filled with 0
    df = emerging_hotspots(long, lattice)
    wide = EmergingHotSpots(cube, lattice).to_frame()
    np.testing.assert_array_equal(df["category"].to_numpy(), wide["category"].to_numpy())
    np.testing.assert_allclose(df["trend_z"].to_numpy(), wide["trend_z"].to_numpy())
    assert list(df.columns) == [
        "category", "n_hot", "n_cold", "final_z", "final_p", "trend_s", "trend_z", "trend_p",
        "value_trend_z", "value_trend_p",
    ]  # fmt: skip
    assert set(df["category"].cat.categories) == set(EMERGING_CATEGORIES)
    row = df.iloc[CENTRE[0]]
    assert row["n_hot"] == T and row["trend_z"] > 0 and row["trend_p"] < 0.05


def test_emerging_invalid_inputs(lattice):
    cube = _cube(PATTERNS["new_hot"])
    with pytest.raises(InvalidInput, match="neighbour_time_steps"):
        EmergingHotSpots(cube, lattice, global_window="time_step")
    with pytest.raises(InvalidInput, match="2500 units"):
        EmergingHotSpots(cube[:10], lattice)
    with pytest.raises(InvalidInput, match="at least 3 time steps"):
        EmergingHotSpots(cube[:, :2], lattice)
