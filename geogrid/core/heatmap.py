"""Gaussian kernel density of incidents, rendered to arrays and PNG map tiles.

The density of a set of points with weights :math:`w_k` at location :math:`s` is

.. math:: f(s) = \\sum_k w_k \\, \\frac{1}{2\\pi h^2} \\exp\\left(-\\frac{|s - s_k|^2}{2h^2}\\right)

with an isotropic bandwidth ``h`` in ground metres; ``f`` is in (weight units) per m², so
with unit weights it integrates to the number of incidents. This is exactly
``scipy.stats.gaussian_kde`` with covariance ``h²·I`` multiplied by the total weight.

How it is computed (no per-point loop)
--------------------------------------
1. The raster is extended by a margin of ``4h`` (plus two lattice cells) on every side, so
   points outside the bbox still contribute: adjacent tiles agree to float precision at
   their common edge (no seams).
2. Points are *linearly binned* (cloud-in-cell) onto a lattice aligned with the output
   pixels: each weight is shared between the four nearest lattice nodes, bilinearly.
3. The lattice is convolved with the exact Gaussian kernel (separable, two
   ``scipy.ndimage.correlate1d`` passes, kernel truncated at 4 bandwidths: the mass lost
   is < 7e-5 of each point's weight), and the result is sampled at the output pixel
   centres.

The lattice spacing follows the bandwidth in lattice cells, σ = h / spacing:

* σ_px = h / pixel < 2: supersampling, the lattice is the pixel grid subdivided by an odd
  factor ``s`` (≤ 7) so that σ ≥ 2 where possible; pixel centres are lattice nodes.
* 2 ≤ σ_px < 12: the lattice is the pixel grid.
* σ_px ≥ 12: the lattice is coarser by a power of two ``c`` (6 ≤ σ < 12), and the
  lattice is interpolated bilinearly to the pixel centres. This keeps the cost of a
  256×256 tile independent of zoom.

Binning error. Moving a point to its nearest node (``binning="nearest"``, the classic
"point moved to the pixel centre") displaces it by up to ``d/√2`` for a lattice spacing
``d`` and changes its kernel by up to ``e^{-1/2}·d/(√2 h) ≈ 0.43·d/h`` of the kernel peak
(first order). Linear binning is second order: the error is at most ``(d/h)²/4`` of the
peak of one kernel (6.25 % at σ = 2, 2.8 % at σ = 3, 0.7 % at σ = 6), and bilinear
interpolation from a coarse lattice adds at most the same bound again (≤ 0.7 %). These
are worst cases for a single isolated point evaluated next to it (measured: 5.4 % at
σ = 2.05, 2.5 % at σ = 3); with many points the errors average out: against a direct sum
of 200 clustered points on 64×64 pixels the max error is 0.15–1.0 % of the peak density
for bandwidths of 0.6–26 pixels (tests/test_heatmap.py asserts < 2 %).

Coordinates and Web Mercator
----------------------------
:func:`density_grid` works in any metric plane. In EPSG:3857 one *ground* metre is
``1/cos(lat)`` Mercator metres (1.084 at 22.6°N), so a bandwidth in ground metres
is ``bandwidth_m / cos(lat)`` Mercator metres, and a density per Mercator m² is
multiplied by ``1/cos²(lat)`` to get a density per ground m². Pass ``pixel_size_m`` (the
*ground* size of one pixel) and :func:`density_grid` does both conversions.
:class:`HeatSource` uses one reference latitude for all tiles (the middle of its points'
latitude range; within a city spanning 21.6°–23.1°N, the scale varies by ±0.55 %), so that every
tile of every zoom uses the same kernel and tiles join without seams.

Rasters are returned with row 0 at the north (``ymax``) edge, like images.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from geogrid.errors import InvalidInput

__all__ = [
    "EARTH_RADIUS_M",
    "HeatSource",
    "density_grid",
    "lonlat_to_3857",
    "render_tile",
    "tile_bounds_3857",
    "tile_pixel_size_3857",
    "to_png",
    "zoom_scale",
]

EARTH_RADIUS_M = 6378137.0
_ORIGIN_SHIFT = math.pi * EARTH_RADIUS_M
_TRUNCATE = 4.0  # kernel radius in bandwidths
_SIGMA_FINE_MIN = 2.0  # supersample below this many lattice cells per bandwidth
_SIGMA_COARSE_MIN = 6.0  # coarsen above 2× this, keeping at least this many cells
_MAX_SUPERSAMPLE = 7


# --------------------------------------------------------------------------- helpers


def lonlat_to_3857(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 longitude/latitude (degrees) to Web Mercator EPSG:3857 x/y (metres).

    Closed form (spherical Mercator, as EPSG:3857 defines it), vectorised; equal to
    pyproj to < 1e-6 m.

    >>> x, y = lonlat_to_3857([110.15], [22.63])
    >>> round(float(x[0]), 1), round(float(y[0]), 1)
    (12261841.9, 2587334.3)
    """
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    x = np.radians(lon) * EARTH_RADIUS_M
    y = np.log(np.tan(np.pi / 4.0 + np.radians(lat) / 2.0)) * EARTH_RADIUS_M
    return x, y


def _lat_of_3857_y(y: float) -> float:
    return math.degrees(2.0 * math.atan(math.exp(y / EARTH_RADIUS_M)) - math.pi / 2.0)


def tile_bounds_3857(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Bounds ``(xmin, ymin, xmax, ymax)`` of XYZ tile ``z/x/y`` in EPSG:3857 metres.

    Tile ``y`` counts from the north (the XYZ / "slippy map" convention).

    >>> tile_bounds_3857(0, 0, 0) == (-20037508.342789244, -20037508.342789244,
    ...                               20037508.342789244, 20037508.342789244)
    True
    """
    for name, value in (("z", z), ("x", x), ("y", y)):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise InvalidInput(name, value, "a non-negative integer")
    if z > 30:
        raise InvalidInput("z", z, "a zoom level 0..30")
    n = 1 << int(z)
    if x >= n or y >= n:
        raise InvalidInput("x/y", (x, y), f"tile indices 0..{n - 1} at zoom {z}")
    res = 2.0 * _ORIGIN_SHIFT / n
    xmin = -_ORIGIN_SHIFT + x * res
    ymax = _ORIGIN_SHIFT - y * res
    return (xmin, ymax - res, xmin + res, ymax)


def tile_pixel_size_3857(z: int, size: int = 256) -> float:
    """Size of one pixel of a ``size``-pixel tile at zoom ``z``, in EPSG:3857 metres."""
    return 2.0 * _ORIGIN_SHIFT / ((1 << int(z)) * size)


def _plan_axis(sigma_px: float) -> tuple[int, int]:
    """(supersample s, coarsen c) for one axis; lattice spacing = pixel · c / s."""
    if sigma_px < _SIGMA_FINE_MIN:
        s = math.ceil(_SIGMA_FINE_MIN / sigma_px)
        s = min(s + (1 - s % 2), _MAX_SUPERSAMPLE)  # odd: pixel centres stay lattice nodes
        return s, 1
    if sigma_px >= 2.0 * _SIGMA_COARSE_MIN:
        c = 1 << int(math.floor(math.log2(sigma_px / _SIGMA_COARSE_MIN)))
        return 1, c
    return 1, 1


def _gauss_kernel(sigma: float) -> np.ndarray:
    r = int(math.ceil(_TRUNCATE * sigma))
    i = np.arange(-r, r + 1, dtype=np.float64)
    return np.exp(-0.5 * (i / sigma) ** 2)


def _sampler(n: int, s: int, c: int, pad: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Lattice index (and bilinear fraction, or None if exact) of each output pixel centre."""
    if c == 1:
        return np.arange(n) * s + (s - 1) // 2 + pad, None
    u = (np.arange(n) + 0.5) / c - 0.5 + pad
    i0 = np.floor(u).astype(np.intp)
    return i0, u - i0


@functools.lru_cache(maxsize=64)
def _blur_sample_matrix(n: int, m: int, s: int, c: int, pad: int, sigma: float) -> np.ndarray:
    """(m, n) matrix: truncated Gaussian around the lattice node of each output pixel
    centre (bilinear between two nodes on a coarse lattice). Cached: every tile of a zoom
    with the same bandwidth uses the same matrices."""
    kernel = _gauss_kernel(sigma)
    i0, frac = _sampler(m, s, c, pad)
    r = kernel.size // 2
    d = np.arange(n)[None, :] - i0[:, None]
    a = np.where(np.abs(d) <= r, kernel[np.clip(d + r, 0, 2 * r)], 0.0)
    if frac is not None:
        d1 = d - 1
        a1 = np.where(np.abs(d1) <= r, kernel[np.clip(d1 + r, 0, 2 * r)], 0.0)
        a = a * (1.0 - frac)[:, None] + a1 * frac[:, None]
    a.flags.writeable = False
    return a


@functools.cache
def _blas_controller() -> Any:
    try:
        # optional dependency: without it BLAS keeps its own thread count
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is optional
        return None
    return ThreadpoolController()


@contextlib.contextmanager
def _single_thread_blas():
    """Tile-sized products are fastest on one thread; multi-threaded BLAS on a busy server
    (or next to numba's pool in the same process) was measured 2–10× slower."""
    ctl = _blas_controller()
    if ctl is None:
        yield
        return
    with ctl.limit(limits=1, user_api="blas"):
        yield


def _check_bbox(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    try:
        xmin, ymin, xmax, ymax = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise InvalidInput("bbox", bbox, "(xmin, ymin, xmax, ymax) numbers") from None
    if not (np.isfinite([xmin, ymin, xmax, ymax]).all() and xmax > xmin and ymax > ymin):
        raise InvalidInput(
            "bbox", bbox, "finite (xmin, ymin, xmax, ymax) with xmax>xmin, ymax>ymin"
        )
    return xmin, ymin, xmax, ymax


# --------------------------------------------------------------------------- density


def density_grid(
    x: Any,
    y: Any,
    bbox: Sequence[float],
    shape: tuple[int, int],
    bandwidth_m: float,
    weights: Any = None,
    *,
    pixel_size_m: float | None = None,
    binning: str = "linear",
) -> np.ndarray:
    """Gaussian kernel density of points on a raster, per square *ground* metre.

    Parameters
    ----------
    x, y : array-like
        Point coordinates in a metric projected CRS (metres; e.g. EPSG:3857 for tiles,
        EPSG:4546 for analysis). Points with NaN coordinates are ignored.
    bbox : (xmin, ymin, xmax, ymax)
        Raster extent in the same CRS as ``x``/``y``.
    shape : (rows, cols)
        Raster size. Row 0 is the north edge (``ymax``); column 0 the west edge.
    bandwidth_m : float
        Kernel standard deviation ``h`` in ground metres (isotropic Gaussian).
    weights : array-like, optional
        Weight of each point (default 1). The result is the sum of weights × kernel.
    pixel_size_m : float, optional
        Ground size of one pixel along x, in metres. Default: the projected pixel size
        ``(xmax - xmin) / cols`` (i.e. the CRS units are ground metres). For EPSG:3857
        pass ``projected pixel size × cos(lat)``: the bandwidth is then converted to
        Mercator metres (× ``1/cos(lat)``) and the density returned per ground m².
    binning : {"linear", "nearest"}
        Linear (cloud-in-cell, second-order error) or nearest-node binning (first
        order). See the module docstring for the error bounds.

    Returns
    -------
    numpy.ndarray, float64, shape ``shape``
        Density (weight per ground m²) at the pixel centres; max error vs the exact
        direct sum ≈ 1 % of the peak for many points (see the module docstring).

    Examples
    --------
    >>> d = density_grid([0.0], [0.0], (-50, -50, 50, 50), (1, 1), bandwidth_m=10.0)
    >>> round(float(d[0, 0]) * 2 * math.pi * 100, 3)  # kernel peak is 1/(2π h²)
    1.0
    """
    rows, cols = (int(v) for v in shape)
    if rows <= 0 or cols <= 0 or len(shape) != 2:
        raise InvalidInput("shape", shape, "(rows, cols) positive integers")
    xmin, ymin, xmax, ymax = _check_bbox(bbox)
    if not (np.isfinite(bandwidth_m) and bandwidth_m > 0):
        raise InvalidInput("bandwidth_m", bandwidth_m, "a positive number of metres")
    if binning not in ("linear", "nearest"):
        raise InvalidInput("binning", binning, '"linear" or "nearest"')
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise InvalidInput("x/y", (x.size, y.size), "arrays of the same length")
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64).ravel()
        if weights.shape != x.shape:
            raise InvalidInput("weights", weights.size, f"{x.size} values, one per point")

    px = (xmax - xmin) / cols
    py = (ymax - ymin) / rows
    if pixel_size_m is None:
        k = 1.0  # projected metres per ground metre
    else:
        if not (np.isfinite(pixel_size_m) and pixel_size_m > 0):
            raise InvalidInput("pixel_size_m", pixel_size_m, "a positive number of metres")
        k = px / float(pixel_size_m)
    h = bandwidth_m * k  # bandwidth in projected units

    sx, cx = _plan_axis(h / px)
    sy, cy = _plan_axis(h / py)
    dx, dy = px * cx / sx, py * cy / sy  # lattice spacing
    sigx, sigy = h / dx, h / dy
    padx = int(math.ceil(_TRUNCATE * sigx)) + 2
    pady = int(math.ceil(_TRUNCATE * sigy)) + 2
    nx = math.ceil(cols * sx / cx) + 2 * padx + 1
    ny = math.ceil(rows * sy / cy) + 2 * pady + 1

    # lattice coordinates: node j sits at xmin + (j - pad + 0.5)·d (rows from ymax down)
    gx = (x - xmin) / dx + (padx - 0.5)
    gy = (ymax - y) / dy + (pady - 0.5)
    if binning == "nearest":
        gx = np.floor(gx + 0.5)
        gy = np.floor(gy + 0.5)
    keep = (gx >= 0) & (gx < nx - 1) & (gy >= 0) & (gy < ny - 1)
    if not keep.all():
        gx, gy = gx[keep], gy[keep]
        if weights is not None:
            weights = weights[keep]
    m = nx * ny
    lattice: np.ndarray
    if not gx.size:
        lattice = np.zeros(m, dtype=np.float64)
    else:
        jx = gx.astype(np.intp)
        jy = gy.astype(np.intp)
        flat = jy * nx + jx
        if binning == "nearest":
            lattice = np.bincount(flat, weights, minlength=m).astype(np.float64)
        else:
            # four bincounts on the same index, shifted afterwards (cheaper than 4 indices)
            fx = gx - jx
            fy = gy - jy
            wy1 = fy if weights is None else weights * fy
            wy0 = (1.0 - fy) if weights is None else weights - wy1
            a = wy0 * fx
            b = wy1 * fx
            lattice = np.bincount(flat, wy0 - a, minlength=m)
            lattice[1:] += np.bincount(flat, a, minlength=m - 1)
            lattice[nx:] += np.bincount(flat, wy1 - b, minlength=m - nx)
            lattice[nx + 1 :] += np.bincount(flat, b, minlength=m - nx - 1)
    lattice = lattice.reshape(ny, nx)
    ky, kx = _gauss_kernel(sigy), _gauss_kernel(sigx)
    # Blur + sample (+ bilinear interpolation) is linear and separable: out = Ay @ L @ Ax.T.
    # For tile-sized outputs two dense BLAS products are several times faster than
    # correlating the whole (supersampled) lattice; for big rasters correlate1d wins.
    if rows * nx * (ny + cols) < 8 * nx * ny * (kx.size + ky.size):
        ay = _blur_sample_matrix(ny, rows, sy, cy, pady, sigy)
        ax = _blur_sample_matrix(nx, cols, sx, cx, padx, sigx)
        with _single_thread_blas():
            out = (ay @ lattice) @ ax.T
    else:
        lattice = ndimage.correlate1d(lattice, ky, axis=0, mode="constant")
        lattice = ndimage.correlate1d(lattice, kx, axis=1, mode="constant")
        iy, fy_ = _sampler(rows, sy, cy, pady)
        ix, fx_ = _sampler(cols, sx, cx, padx)
        if fy_ is None:
            out = lattice[iy, :]
        else:
            out = lattice[iy, :] * (1.0 - fy_)[:, None] + lattice[iy + 1, :] * fy_[:, None]
        if fx_ is None:
            out = out[:, ix]
        else:
            out = out[:, ix] * (1.0 - fx_) + out[:, ix + 1] * fx_
    # Σ w·exp(-r²/2h²)/(2πh²) in projected units, × k² for ground m²: = /(2π h_ground²)
    out *= 1.0 / (2.0 * math.pi * bandwidth_m * bandwidth_m)
    return np.ascontiguousarray(out)


# --------------------------------------------------------------------------- sources


class HeatSource:
    """Incident points held in Web Mercator, sorted by x, for fast per-tile selection.

    Each tile only touches the points inside its padded bbox: a ``searchsorted`` on the
    sorted x coordinates gives a contiguous slice, then a y mask on that slice only
    (measured: ~10× cheaper than boolean masks over all points at 1M points).

    Parameters
    ----------
    x, y : array-like
        EPSG:3857 coordinates in metres (use :meth:`from_lonlat` for WGS84).
    weights : array-like, optional
        Weight per point (default 1).
    categories, times : array-like, optional
        Carried along (sorted with the points) for :meth:`where`.
    ref_lat : float, optional
        Latitude (degrees) whose Mercator scale ``1/cos(lat)`` converts bandwidths and
        densities for every tile. Default: middle of the points' latitude range.

    Attributes
    ----------
    x, y, weights, categories, times : numpy.ndarray or None
        Sorted by x.
    index : numpy.ndarray
        Position of each sorted point in the input order.
    scale_factor : float
        Mercator metres per ground metre at ``ref_lat``.
    """

    def __init__(
        self,
        x: Any,
        y: Any,
        weights: Any = None,
        *,
        categories: Any = None,
        times: Any = None,
        ref_lat: float | None = None,
        _sorted: bool = False,
        _index: np.ndarray | None = None,
    ):
        x = np.asarray(x, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
        if x.shape != y.shape:
            raise InvalidInput("x/y", (x.size, y.size), "arrays of the same length")
        n = x.size
        arrays = {"weights": weights, "categories": categories, "times": times}
        for name, arr in arrays.items():
            if arr is not None:
                arr = np.asarray(arr)
                if arr.shape != (n,):
                    raise InvalidInput(name, arr.shape, f"{n} values, one per point")
                arrays[name] = arr
        if arrays["weights"] is not None:
            arrays["weights"] = arrays["weights"].astype(np.float64)
        if _sorted:
            order = None
            self.index = np.arange(n) if _index is None else _index
        else:
            ok = np.isfinite(x) & np.isfinite(y)
            order = np.argsort(np.where(ok, x, np.inf), kind="stable")[: int(ok.sum())]
            self.index = order
        take = (lambda a: a) if order is None else (lambda a: a[order])
        self.x = take(x)
        self.y = take(y)
        self.weights = None if arrays["weights"] is None else take(arrays["weights"])
        self.categories = None if arrays["categories"] is None else take(arrays["categories"])
        self.times = None if arrays["times"] is None else take(arrays["times"])
        if ref_lat is None:
            ref_lat = (
                _lat_of_3857_y(0.5 * (float(self.y.min()) + float(self.y.max())))
                if self.y.size
                else 0.0
            )
        if not -85.06 < ref_lat < 85.06:
            raise InvalidInput("ref_lat", ref_lat, "a latitude in (-85.06, 85.06) degrees")
        self.ref_lat = float(ref_lat)
        self.scale_factor = 1.0 / math.cos(math.radians(self.ref_lat))
        self._scale_cache: dict[tuple, float] = {}

    @classmethod
    def from_lonlat(
        cls,
        lon: Any,
        lat: Any,
        weights: Any = None,
        categories: Any = None,
        times: Any = None,
        *,
        ref_lat: float | None = None,
    ) -> HeatSource:
        """Build from WGS84 (EPSG:4326) longitude/latitude in degrees."""
        x, y = lonlat_to_3857(lon, lat)
        return cls(x, y, weights, categories=categories, times=times, ref_lat=ref_lat)

    def __len__(self) -> int:
        return int(self.x.size)

    def __repr__(self) -> str:
        return f"HeatSource(n={len(self)}, ref_lat={self.ref_lat:.3f})"

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the points in EPSG:3857 metres."""
        if not len(self):
            raise InvalidInput("source", "empty", "at least one point")
        return (float(self.x[0]), float(self.y.min()), float(self.x[-1]), float(self.y.max()))

    def subset(self, mask: Any) -> HeatSource:
        """A new source with the points where ``mask`` (in *input order*) is true.

        The reference latitude is kept so that filtered maps use the same scale.
        """
        mask = np.asarray(mask, dtype=bool)
        n_in = int(self.index.max()) + 1 if self.index.size else 0
        if mask.ndim != 1 or mask.size < n_in:
            raise InvalidInput("mask", mask.shape, f"a boolean array of {n_in} values")
        keep = mask[self.index]
        return self._take(keep)

    def where(
        self,
        *,
        categories: Any = None,
        time_range: tuple[Any, Any] | None = None,
    ) -> HeatSource:
        """Points whose category is in ``categories`` and time in ``[start, end)``."""
        keep = np.ones(len(self), dtype=bool)
        if categories is not None:
            if self.categories is None:
                raise InvalidInput("categories", categories, "a source built with categories")
            keep &= np.isin(self.categories, np.asarray(list(categories)))
        if time_range is not None:
            if self.times is None:
                raise InvalidInput("time_range", time_range, "a source built with times")
            start, end = time_range
            if start is not None:
                keep &= self.times >= start
            if end is not None:
                keep &= self.times < end
        return self._take(keep)

    def _take(self, keep: np.ndarray) -> HeatSource:
        def t(a):
            return None if a is None else a[keep]

        return HeatSource(
            self.x[keep],
            self.y[keep],
            t(self.weights),
            categories=t(self.categories),
            times=t(self.times),
            ref_lat=self.ref_lat,
            _sorted=True,
            _index=self.index[keep],
        )

    def select(self, bbox: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """x, y, weights of the points inside ``bbox`` (EPSG:3857), inclusive."""
        xmin, ymin, xmax, ymax = _check_bbox(bbox)
        i0 = int(np.searchsorted(self.x, xmin, side="left"))
        i1 = int(np.searchsorted(self.x, xmax, side="right"))
        ys = self.y[i0:i1]
        m = (ys >= ymin) & (ys <= ymax)
        w = None if self.weights is None else self.weights[i0:i1][m]
        return self.x[i0:i1][m], ys[m], w

    def density(
        self, bbox: Sequence[float], shape: tuple[int, int], bandwidth_m: float, **kwargs: Any
    ) -> np.ndarray:
        """:func:`density_grid` over an EPSG:3857 ``bbox``, per ground m² (see class doc)."""
        xmin, ymin, xmax, ymax = _check_bbox(bbox)
        rows, cols = shape
        px = (xmax - xmin) / cols
        h = bandwidth_m * self.scale_factor
        margin = (_TRUNCATE + 1.0) * h + 3.0 * max(px, (ymax - ymin) / rows)
        x, y, w = self.select((xmin - margin, ymin - margin, xmax + margin, ymax + margin))
        return density_grid(
            x, y, bbox, shape, bandwidth_m, w, pixel_size_m=px / self.scale_factor, **kwargs
        )


# --------------------------------------------------------------------------- tiles


def render_tile(
    source: HeatSource,
    z: int,
    x: int,
    y: int,
    *,
    bandwidth_m: float,
    size: int = 256,
    scale: float | None = None,
) -> np.ndarray:
    """Density raster of XYZ tile ``z/x/y``, ``size``×``size``, row 0 north.

    Returns the density per ground m² (float64), or, if ``scale`` is given (e.g. from
    :func:`zoom_scale`), the density divided by ``scale`` (1.0 = top of the colour scale;
    not clipped).
    """
    if not isinstance(size, (int, np.integer)) or size <= 0:
        raise InvalidInput("size", size, "a positive number of pixels")
    d = source.density(tile_bounds_3857(z, x, y), (size, size), bandwidth_m)
    if scale is not None:
        if not (np.isfinite(scale) and scale > 0):
            raise InvalidInput("scale", scale, "a positive density")
        d /= scale
    return d


def zoom_scale(
    source: HeatSource,
    z: int,
    bandwidth_m: float,
    *,
    percentile: float = 99.5,
    max_pixels: int = 1024,
) -> float:
    """Fixed top of the colour scale for every tile of zoom ``z`` (density per ground m²).

    The density is computed once over the whole extent of ``source`` (padded by 3
    bandwidths) at the pixel size of zoom ``z`` — or coarser, so that the grid has at
    most ``max_pixels`` on its long side — and the ``percentile`` of the values that are
    not negligible (> 1e-6 × max) is returned and cached on the source. Adjacent tiles
    normalised by it share one colour scale. 0.0 for an empty source.
    """
    key = (int(z), float(bandwidth_m), float(percentile), int(max_pixels))
    cached = source._scale_cache.get(key)
    if cached is not None:
        return cached
    if not len(source):
        return 0.0
    xmin, ymin, xmax, ymax = source.bounds
    pad = 3.0 * bandwidth_m * source.scale_factor
    xmin, ymin, xmax, ymax = xmin - pad, ymin - pad, xmax + pad, ymax + pad
    px = max(tile_pixel_size_3857(z), max(xmax - xmin, ymax - ymin) / max_pixels)
    cols = max(1, math.ceil((xmax - xmin) / px))
    rows = max(1, math.ceil((ymax - ymin) / px))
    d = source.density((xmin, ymax - rows * px, xmin + cols * px, ymax), (rows, cols), bandwidth_m)
    vals = d[d > d.max() * 1e-6]
    value = float(np.percentile(vals, percentile)) if vals.size else 0.0
    source._scale_cache[key] = value
    return value


# --------------------------------------------------------------------------- PNG


def to_png(
    density: np.ndarray,
    *,
    vmax: float,
    cmap: Any = "inferno",
    min_alpha: float = 0.25,
    max_alpha: float = 0.9,
    threshold: float = 0.01,
    gamma: float = 0.5,
    compress_level: int = 3,
) -> bytes:
    """Colour a density raster into RGBA PNG bytes (Pillow).

    ``t = clip(density / vmax, 0, 1)`` selects the colour from ``cmap`` (a matplotlib
    colormap name such as ``"inferno"`` or ``"YlOrRd"``, or a Colormap). Pixels with
    ``t <= threshold`` are fully transparent; above it alpha rises from ``min_alpha`` to
    ``max_alpha`` as ``t**gamma``. A ``vmax`` ≤ 0 gives a fully transparent image.
    """
    # matplotlib is heavy to import (~0.3 s) and only its colormaps are needed, for PNGs
    import matplotlib

    density = np.asarray(density, dtype=np.float64)
    if density.ndim != 2:
        raise InvalidInput("density", density.shape, "a 2-D raster")
    if not 0.0 <= min_alpha <= max_alpha <= 1.0:
        raise InvalidInput("min_alpha/max_alpha", (min_alpha, max_alpha), "0 ≤ min ≤ max ≤ 1")
    if not np.isfinite(vmax):
        raise InvalidInput("vmax", vmax, "a finite density")
    if isinstance(cmap, str):
        try:
            cm = matplotlib.colormaps[cmap]
        except KeyError:
            raise InvalidInput("cmap", cmap, "a matplotlib colormap name") from None
    else:
        cm = cmap
    if vmax > 0:
        t = np.nan_to_num(density / vmax, nan=0.0, posinf=1.0, neginf=0.0)
        np.clip(t, 0.0, 1.0, out=t)
    else:
        t = np.zeros_like(density)
    lut = (np.asarray(cm(np.linspace(0.0, 1.0, 256)))[:, :3] * 255.0 + 0.5).astype(np.uint8)
    rgba = np.empty(density.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = lut[(t * 255.0 + 0.5).astype(np.intp)]
    alpha = (min_alpha + (max_alpha - min_alpha) * t**gamma) * 255.0 + 0.5
    rgba[..., 3] = np.where(t > threshold, alpha, 0.0).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()
