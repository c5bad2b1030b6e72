"""geogrid.core.heatmap against exact references (direct sum, scipy.stats.gaussian_kde)."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image
from pyproj import Transformer
from scipy import stats

from geogrid.core.heatmap import (
    HeatSource,
    density_grid,
    lonlat_to_3857,
    render_tile,
    tile_bounds_3857,
    tile_pixel_size_3857,
    to_png,
    zoom_scale,
)
from geogrid.errors import InvalidInput

BBOX = (0.0, 0.0, 10_000.0, 10_000.0)  # 64×64 → 156.25 m pixels


def _centres(bbox, shape):
    xmin, ymin, xmax, ymax = bbox
    rows, cols = shape
    cx = xmin + (np.arange(cols) + 0.5) * (xmax - xmin) / cols
    cy = ymax - (np.arange(rows) + 0.5) * (ymax - ymin) / rows  # row 0 = north
    return cx, cy


def direct_sum(x, y, bbox, shape, h, w=None):
    """Exact Σ w·exp(-r²/2h²)/(2πh²) at the pixel centres (the reference)."""
    cx, cy = _centres(bbox, shape)
    w = np.ones(len(x)) if w is None else np.asarray(w, float)
    gx = np.exp(-0.5 * ((cx[None, :] - np.asarray(x)[:, None]) / h) ** 2)
    gy = np.exp(-0.5 * ((cy[None, :] - np.asarray(y)[:, None]) / h) ** 2)
    return np.einsum("k,ki,kj->ij", w, gy, gx) / (2 * math.pi * h * h)


@pytest.fixture(scope="module")
def pts200():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(3000, 600, 120), rng.uniform(-500, 10_500, 80)])
    y = np.concatenate([rng.normal(6000, 900, 120), rng.uniform(-500, 10_500, 80)])
    w = rng.uniform(0.5, 3.0, x.size)
    return x, y, w


# bandwidths covering the three lattice regimes: supersampled (σ_px < 3), pixel lattice,
# coarse lattice + bilinear (σ_px ≥ 12)
@pytest.mark.parametrize("h", [60.0, 150.0, 300.0, 320.0, 400.0, 1000.0, 2500.0, 4000.0])
def test_direct_sum_within_2_percent_of_peak(pts200, h):
    x, y, w = pts200
    ref = direct_sum(x, y, BBOX, (64, 64), h, w)
    got = density_grid(x, y, BBOX, (64, 64), h, w)
    err = np.abs(got - ref).max() / ref.max()
    assert err < 0.02, f"h={h}: max error {err:.4%} of peak"  # measured 0.15–1.0 %


def test_large_raster_correlate_path(pts200):
    """Big rasters blur with ndimage.correlate1d instead of dense matrix products."""
    x, y, w = pts200
    bbox = (0.0, 0.0, 20_480.0, 10_240.0)  # 20 m pixels, h = 3 px
    got = density_grid(x * 2, y, bbox, (512, 1024), 60.0, w)
    ref = direct_sum(x * 2, y, bbox, (512, 1024), 60.0, w)
    assert np.abs(got - ref).max() / ref.max() < 0.02


@pytest.mark.parametrize("h", [320.0, 470.0])  # σ_px = 2.05 and 3.0: pixel lattice
def test_single_point_error_bound(h):
    """Linear binning: ≤ (d/h)²/4 of the kernel peak for one isolated point."""
    rng = np.random.default_rng(3)
    worst = 0.0
    for _ in range(50):
        px, py = rng.uniform(4000, 6000, 2)
        ref = direct_sum([px], [py], BBOX, (64, 64), h)
        got = density_grid([px], [py], BBOX, (64, 64), h)
        worst = max(worst, np.abs(got - ref).max() / ref.max())
    assert worst <= (156.25 / h) ** 2 / 4


def test_nearest_binning_is_first_order(pts200):
    x, y, _ = pts200
    ref = direct_sum(x, y, BBOX, (64, 64), 500.0)
    lin = np.abs(density_grid(x, y, BBOX, (64, 64), 500.0) - ref).max() / ref.max()
    near = np.abs(density_grid(x, y, BBOX, (64, 64), 500.0, binning="nearest") - ref).max()
    near /= ref.max()
    assert lin < near < 0.43 * 156.25 / 500.0  # first-order bound 0.43·d/h


def test_matches_scipy_gaussian_kde_with_weights(pts200):
    """gaussian_kde's covariance is factor²·(weighted data covariance); whiten the data so
    that covariance is c²·I exactly, then factor = h/c gives the isotropic bandwidth h."""
    x, y, w = pts200
    xy = np.vstack([x, y])
    cov = np.cov(xy, aweights=w)
    mean = np.average(xy, axis=1, weights=w)
    c = 1500.0
    white = np.linalg.solve(np.linalg.cholesky(cov), xy - mean[:, None]) * c + 5000.0
    h = 400.0
    kde = stats.gaussian_kde(white, bw_method=h / c, weights=w)
    assert np.allclose(kde.covariance, h * h * np.eye(2), rtol=1e-9, atol=1e-6)
    cx, cy = _centres(BBOX, (64, 64))
    gx, gy = np.meshgrid(cx, cy)
    ref = kde(np.vstack([gx.ravel(), gy.ravel()])).reshape(64, 64) * w.sum()
    got = density_grid(white[0], white[1], BBOX, (64, 64), h, w)
    assert np.abs(got - ref).max() / ref.max() < 0.02


def test_weights_honoured(pts200):
    x, y, w = pts200
    base = density_grid(x, y, BBOX, (64, 64), 400.0)
    np.testing.assert_allclose(
        density_grid(x, y, BBOX, (64, 64), 400.0, 2 * np.ones(200)), 2 * base
    )
    # integer weights = repeated points
    k = np.arange(200) % 3 + 1
    rep = density_grid(np.repeat(x, k), np.repeat(y, k), BBOX, (64, 64), 400.0)
    np.testing.assert_allclose(density_grid(x, y, BBOX, (64, 64), 400.0, k), rep, rtol=1e-12)
    # weighted differs from unweighted
    assert not np.allclose(density_grid(x, y, BBOX, (64, 64), 400.0, w), base)


def test_mass_and_units():
    """Density is per m²: its integral over the raster is the total weight."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(5000, 500, 1000), rng.normal(5000, 500, 1000)
    d = density_grid(x, y, BBOX, (200, 200), 200.0, np.full(1000, 0.5))
    assert d.sum() * (10_000 / 200) ** 2 == pytest.approx(500.0, rel=1e-3)


def test_pixel_size_m_is_scale_invariant(pts200):
    """A plane scaled by k (like Mercator's 1/cos(lat)) with pixel_size_m gives the same
    density per ground m² as the ground plane."""
    x, y, w = pts200
    k = 1.0 / math.cos(math.radians(22.6))
    ground = density_grid(x, y, BBOX, (64, 64), 400.0, w)
    scaled = density_grid(
        x * k, y * k, [v * k for v in BBOX], (64, 64), 400.0, w, pixel_size_m=156.25
    )
    np.testing.assert_allclose(scaled, ground, rtol=1e-9, atol=1e-15)


def test_points_outside_bbox_contribute():
    d = density_grid([-300.0], [5000.0], BBOX, (64, 64), 300.0)
    ref = direct_sum([-300.0], [5000.0], BBOX, (64, 64), 300.0)
    assert d[:, 0].max() > 0
    np.testing.assert_allclose(d, ref, atol=0.03 * ref.max())


# --------------------------------------------------------------------------- tiles


@pytest.fixture(scope="module")
def yulin_source():
    rng = np.random.default_rng(7)
    n = 60_000
    lon = np.concatenate(
        [
            rng.normal(110.15, 0.02, n // 2),
            rng.normal(110.35, 0.04, n // 4),
            rng.uniform(109.55, 110.89, n // 4),
        ]
    )
    lat = np.concatenate(
        [
            rng.normal(22.63, 0.02, n // 2),
            rng.normal(22.70, 0.03, n // 4),
            rng.uniform(21.63, 23.13, n // 4),
        ]
    )
    cat = np.array(["road", "noise", "waste"])[np.arange(n) % 3]
    times = np.arange(n) % 100
    return HeatSource.from_lonlat(lon, lat, weights=None, categories=cat, times=times)


def _tile_of(lon, lat, z):
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def test_lonlat_to_3857_matches_pyproj():
    lon = np.array([109.55, 110.15, 110.89, 0.0, -120.0])
    lat = np.array([21.63, 22.63, 23.13, 0.0, 60.0])
    t = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    ex, ey = t.transform(lon, lat)
    x, y = lonlat_to_3857(lon, lat)
    np.testing.assert_allclose(x, ex, atol=1e-6)
    np.testing.assert_allclose(y, ey, atol=1e-6)


def test_tile_bounds():
    xmin, ymin, xmax, ymax = tile_bounds_3857(1, 1, 0)
    assert (xmin, ymin) == (0.0, 0.0) and xmax == ymax == pytest.approx(20037508.342789244)
    assert tile_pixel_size_3857(0) == pytest.approx(156543.03392804097)
    with pytest.raises(InvalidInput, match="tile indices 0..1"):
        tile_bounds_3857(1, 2, 0)
    with pytest.raises(InvalidInput, match="z=-1"):
        tile_bounds_3857(-1, 0, 0)


@pytest.mark.parametrize(
    ("z", "bw"),
    [(12, 300.0), (10, 300.0), (14, 300.0), (10, 150.0)],  # pixel, pixel, coarse, supersampled
)
def test_adjacent_tiles_have_no_seam(yulin_source, z, bw):
    tx, ty = _tile_of(110.15, 22.63, z)
    a = render_tile(yulin_source, z, tx, ty, bandwidth_m=bw)
    b = render_tile(yulin_source, z, tx + 1, ty, bandwidth_m=bw)
    c = render_tile(yulin_source, z, tx, ty + 1, bandwidth_m=bw)
    x0, y0, _, y1 = tile_bounds_3857(z, tx, ty)
    _, _, x1, _ = tile_bounds_3857(z, tx + 1, ty)
    wide = yulin_source.density((x0, y0, x1, y1), (256, 512), bw)
    assert wide.max() > 0
    np.testing.assert_allclose(np.hstack([a, b]), wide, rtol=1e-9, atol=1e-12 * wide.max())
    _, y2, _, _ = tile_bounds_3857(z, tx, ty + 1)
    tall = yulin_source.density((x0, y2, tile_bounds_3857(z, tx, ty)[2], y1), (512, 256), bw)
    np.testing.assert_allclose(np.vstack([a, c]), tall, rtol=1e-9, atol=1e-12 * tall.max())


def test_tile_matches_direct_sum_in_ground_metres(yulin_source):
    """Tile density per ground m² vs a direct sum in EPSG:3857 with h/cos(ref_lat)."""
    z = 13
    tx, ty = _tile_of(110.15, 22.63, z)
    bbox = tile_bounds_3857(z, tx, ty)
    d = render_tile(yulin_source, z, tx, ty, bandwidth_m=250.0, size=64)
    k = yulin_source.scale_factor
    pad = 6 * 250.0 * k
    x, y, _ = yulin_source.select((bbox[0] - pad, bbox[1] - pad, bbox[2] + pad, bbox[3] + pad))
    ref = direct_sum(x, y, bbox, (64, 64), 250.0 * k) * k * k
    assert np.abs(d - ref).max() / ref.max() < 0.02


def test_select_equals_brute_force(yulin_source):
    z = 11
    tx, ty = _tile_of(110.2, 22.65, z)
    bbox = tile_bounds_3857(z, tx, ty)
    x, y, w = yulin_source.select(bbox)
    m = (
        (yulin_source.x >= bbox[0])
        & (yulin_source.x <= bbox[2])
        & (yulin_source.y >= bbox[1])
        & (yulin_source.y <= bbox[3])
    )
    assert w is None and x.size == m.sum() > 0
    np.testing.assert_array_equal(np.sort(y), np.sort(yulin_source.y[m]))


def test_subset_and_where(yulin_source):
    n = len(yulin_source)
    mask = np.zeros(n, bool)
    mask[: n // 2] = True  # input order: the first cluster
    sub = yulin_source.subset(mask)
    assert len(sub) == n // 2 and sub.ref_lat == yulin_source.ref_lat
    assert np.all(np.diff(sub.x) >= 0) and np.all(sub.index < n // 2)
    roads = yulin_source.where(categories=["road"], time_range=(10, 20))
    assert set(roads.categories) == {"road"}
    assert roads.times.min() >= 10 and roads.times.max() < 20
    with pytest.raises(InvalidInput, match="mask"):
        yulin_source.subset(np.ones(3, bool))


def test_stable_scale_per_zoom(yulin_source):
    z = 12
    vmax = zoom_scale(yulin_source, z, 300.0)
    assert vmax > 0
    assert zoom_scale(yulin_source, z, 300.0) == vmax  # cached, identical for all tiles
    tx, ty = _tile_of(110.15, 22.63, z)
    tiles = [
        render_tile(yulin_source, z, tx + dx, ty, bandwidth_m=300.0, scale=vmax) for dx in (0, 1)
    ]
    raw = [render_tile(yulin_source, z, tx + dx, ty, bandwidth_m=300.0) for dx in (0, 1)]
    for t, r in zip(tiles, raw, strict=True):
        np.testing.assert_allclose(t, r / vmax)
    # the 99.5th percentile is below the global peak, so the cluster core saturates
    assert max(r.max() for r in raw) > vmax


def test_png_rgba_transparent_at_zero(yulin_source):
    z = 12
    tx, ty = _tile_of(110.15, 22.63, z)
    d = render_tile(yulin_source, z, tx, ty, bandwidth_m=300.0)
    d[:10, :10] = 0.0
    png = to_png(d, vmax=zoom_scale(yulin_source, z, 300.0), cmap="YlOrRd")
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.mode == "RGBA" and img.size == (256, 256)
    a = np.asarray(img)
    assert (a[:10, :10, 3] == 0).all()
    assert a[..., 3].max() == round(0.9 * 255)
    empty = np.asarray(Image.open(io.BytesIO(to_png(np.zeros((8, 16)), vmax=1.0))))
    assert empty.shape == (8, 16, 4) and (empty[..., 3] == 0).all()
    with pytest.raises(InvalidInput, match="cmap"):
        to_png(d, vmax=1.0, cmap="no-such-map")


def test_invalid_inputs():
    with pytest.raises(InvalidInput, match="bandwidth_m"):
        density_grid([0], [0], BBOX, (4, 4), 0.0)
    with pytest.raises(InvalidInput, match="bbox"):
        density_grid([0], [0], (1, 0, 0, 1), (4, 4), 10.0)
    with pytest.raises(InvalidInput, match="weights"):
        density_grid([0, 1], [0, 1], BBOX, (4, 4), 10.0, weights=[1.0])
    with pytest.raises(InvalidInput, match="shape"):
        density_grid([0], [0], BBOX, (0, 4), 10.0)
