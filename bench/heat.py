"""Heat-map tile benchmark: geogrid.core.heatmap vs datashader.

    python -m bench.heat [--points 1000000] [--bandwidth 300] [--repeat 7]

1M clustered incidents over Yulin (lon 109.55–110.89, lat 21.63–23.13; clusters around
the city centre 110.15,22.63, Fumian 110.35,22.70 and the county seats). For 2×2 tiles
of 256×256 at z12 and at z10 around the city centre, in one run:

* geogrid ``render_tile`` (point selection on x-sorted points + linear binning +
  Gaussian kernel, density per ground m², no seams),
* datashader ``Canvas(256, 256).points(df, "x", "y", agg=ds.count())`` on the same tile
  extents with the same Web-Mercator points (counts only; scans all points),
* datashader + ``scipy.ndimage.gaussian_filter`` (sigma = bandwidth in pixels; no
  padding, so tiles have seams — shown for cost only).

Median milliseconds per tile; ratios geogrid / datashader. Timings on a shared machine
are noisy.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from geogrid.core.heatmap import HeatSource, render_tile, tile_bounds_3857, tile_pixel_size_3857

# (lon, lat, share of points, sigma in degrees)
_CLUSTERS = [
    (110.15, 22.63, 0.30, 0.025),  # Yuzhou, city centre
    (110.35, 22.70, 0.15, 0.030),  # Fumian
    (110.35, 22.71, 0.05, 0.015),
    (110.56, 22.86, 0.08, 0.030),  # Beiliu
    (110.26, 22.33, 0.08, 0.030),  # Luchuan
    (109.98, 22.27, 0.08, 0.030),  # Bobai
    (109.87, 22.74, 0.06, 0.030),  # Xingye
    (110.20, 22.85, 0.05, 0.060),  # Rongxian direction
]
BBOX = (109.55, 21.63, 110.89, 23.13)


def yulin_points(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` WGS84 points: Gaussian clusters plus ~15 % uniform over the Yulin bbox."""
    rng = np.random.default_rng(seed)
    lons: list[np.ndarray] = []
    lats: list[np.ndarray] = []
    used = 0
    for cx, cy, share, sd in _CLUSTERS:
        k = int(n * share)
        lons.append(rng.normal(cx, sd, k))
        lats.append(rng.normal(cy, sd, k))
        used += k
    lons.append(rng.uniform(BBOX[0], BBOX[2], n - used))
    lats.append(rng.uniform(BBOX[1], BBOX[3], n - used))
    lon, lat = np.concatenate(lons), np.concatenate(lats)
    lon = np.clip(lon, BBOX[0], BBOX[2])
    lat = np.clip(lat, BBOX[1], BBOX[3])
    perm = rng.permutation(n)
    return lon[perm], lat[perm]


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def _median_ms(repeat: int, fn, *args, **kwargs) -> float:
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args, **kwargs)
        ts.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(ts)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--bandwidth", type=float, default=300.0, help="metres (ground)")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)

    lon, lat = yulin_points(args.points)
    t0 = time.perf_counter()
    src = HeatSource.from_lonlat(lon, lat)
    build_ms = 1000.0 * (time.perf_counter() - t0)
    bw = args.bandwidth
    print(
        f"points={len(src):,}  bandwidth={bw:g} m  HeatSource build (project+sort) "
        f"{build_ms:.0f} ms  ref_lat={src.ref_lat:.3f}"
    )
    tiles = []
    for z in (12, 10):
        cx, cy = tile_of(110.15, 22.63, z)
        for tx, ty in ((cx, cy), (cx + 1, cy), (cx, cy + 1), (cx + 1, cy + 1)):
            tiles.append((z, tx, ty, tile_bounds_3857(z, tx, ty)))

    def geogrid_times() -> list[float]:
        out = []
        for z, tx, ty, _ in tiles:
            render_tile(src, z, tx, ty, bandwidth_m=bw)  # warm the per-zoom matrix cache
            out.append(_median_ms(args.repeat, render_tile, src, z, tx, ty, bandwidth_m=bw))
        return out

    # Phase 1: geogrid alone (as in the API process, which does not import datashader).
    geo = geogrid_times()

    # Phase 2: datashader on the same Web-Mercator points and tile extents.
    import datashader as ds  # optional [bench] dependency, imported after phase 1 on purpose

    df = pd.DataFrame({"x": src.x, "y": src.y})

    def ds_count(b):
        cv = ds.Canvas(plot_width=256, plot_height=256, x_range=(b[0], b[2]), y_range=(b[1], b[3]))
        return cv.points(df, "x", "y", agg=ds.count())

    def ds_blur(b, sigma_px):
        agg = ds_count(b).values.astype(np.float64)
        return gaussian_filter(agg, sigma_px, mode="constant")

    ds_count(tiles[0][3])  # numba warm-up
    dsc, dsb = [], []
    for z, _, _, b in tiles:
        sigma_px = bw * src.scale_factor / tile_pixel_size_3857(z)
        dsc.append(_median_ms(args.repeat, ds_count, b))
        dsb.append(_median_ms(args.repeat, ds_blur, b, sigma_px))

    # Phase 3: geogrid again in the same process, after datashader (and xarray) imports.
    geo2 = geogrid_times()

    header = (
        f"{'zoom':>4} {'tile':>10} {'pts in tile':>11} {'geogrid ms':>10} {'(after ds)':>10} "
        f"{'ds count ms':>11} {'ds+blur ms':>10} {'geo/ds':>7} {'geo/ds+blur':>11}"
    )
    print(header)
    print("-" * len(header))
    for i, (z, tx, ty, b) in enumerate(tiles):
        n_in = src.select(b)[0].size
        print(
            f"{z:>4} {f'{tx}/{ty}':>10} {n_in:>11,} {geo[i]:>10.1f} {geo2[i]:>10.1f} "
            f"{dsc[i]:>11.1f} {dsb[i]:>10.1f} {geo[i] / dsc[i]:>7.2f} {geo[i] / dsb[i]:>11.2f}"
        )
    print()
    for z in (12, 10):
        idx = [i for i, t in enumerate(tiles) if t[0] == z]
        g, g2, d, db = (statistics.median(v[i] for i in idx) for v in (geo, geo2, dsc, dsb))
        sigma_px = bw * src.scale_factor / tile_pixel_size_3857(z)
        print(
            f"z{z}: bandwidth {sigma_px:.1f} px; median per tile: geogrid {g:.1f} ms "
            f"({g2:.1f} ms after datashader import), datashader count {d:.1f} ms, "
            f"datashader+blur {db:.1f} ms; ratio geogrid/datashader = {g / d:.2f}, "
            f"geogrid/(datashader+blur) = {g / db:.2f}"
        )


if __name__ == "__main__":
    main()
