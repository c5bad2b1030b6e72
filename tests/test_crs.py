"""Tests for geogrid.core.crs: GCJ-02/BD-09 conversions, CRS names, reprojection, metric CRS."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from numpy.testing import assert_allclose
from shapely import LineString, Point, box

from geogrid.core.crs import (
    CRS_NAMES,
    area_m2,
    bd09_to_gcj02,
    bd09_to_wgs84,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    in_china,
    length_m,
    metric_crs,
    metric_crs_of,
    normalize_crs,
    project_xy,
    to_metric,
    to_wgs84,
    to_wgs84_frame,
    transform_geometries,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from geogrid.errors import InvalidInput

#: CGCS2000 / 3-degree Gauss-Kruger CM 111E: the zone of the Yulin test data (109.5-110.9E)
YULIN_METRIC_CRS = "EPSG:4546"
YULIN_DIR = Path(__file__).resolve().parents[1] / "boundaries" / "yulin"

# Reference values for the input point (116.404, 39.915), as printed in the "//result"
# comment of wandergis/coordtransform, test/app.js (the npm package `coordtransform`, from
# which coordTransform_py is ported). Its inverses gcj02towgs84/bd09togcj02 are the
# one-step / closed-form approximations, ours iterate to the exact inverse.
REF_INPUT = (116.404, 39.915)
REF_BD09_TO_GCJ02 = (116.39762729119315, 39.90865673957631)
REF_GCJ02_TO_BD09 = (116.41036949371029, 39.92133699351021)
REF_WGS84_TO_GCJ02 = (116.41024449916938, 39.91640428150164)
REF_GCJ02_TO_WGS84_ONE_STEP = (116.39775550083061, 39.91359571849836)

CONVERSIONS = [
    wgs84_to_gcj02,
    gcj02_to_wgs84,
    gcj02_to_bd09,
    bd09_to_gcj02,
    wgs84_to_bd09,
    bd09_to_wgs84,
]


def _china_points(n: int = 20_000, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(74.0, 135.0, n), rng.uniform(4.0, 53.5, n)


# --------------------------------------------------------------------------- reference points


def test_forward_transforms_match_reference_exactly() -> None:
    assert_allclose(wgs84_to_gcj02(*REF_INPUT), REF_WGS84_TO_GCJ02, rtol=0, atol=1e-12)
    assert_allclose(gcj02_to_bd09(*REF_INPUT), REF_GCJ02_TO_BD09, rtol=0, atol=1e-12)


def test_gcj02_inverse_is_exact_and_near_reference_approximation() -> None:
    lon, lat = gcj02_to_wgs84(*REF_INPUT)
    # The published one-step inverse is off by a few 1e-7 degrees; ours is within 1e-6 of it
    assert_allclose((lon, lat), REF_GCJ02_TO_WGS84_ONE_STEP, rtol=0, atol=1e-6)
    # ... and, unlike it, maps back onto the input.
    ours = np.abs(np.subtract(wgs84_to_gcj02(lon, lat), REF_INPUT)).max()
    theirs = np.abs(np.subtract(wgs84_to_gcj02(*REF_GCJ02_TO_WGS84_ONE_STEP), REF_INPUT)).max()
    assert ours < 1e-9
    assert theirs > 1e-7


def test_bd09_inverse_is_exact_and_near_reference_closed_form() -> None:
    lon, lat = bd09_to_gcj02(*REF_INPUT)
    assert_allclose((lon, lat), REF_BD09_TO_GCJ02, rtol=0, atol=3e-6)
    assert_allclose(gcj02_to_bd09(lon, lat), REF_INPUT, rtol=0, atol=1e-9)


def test_reference_point_composites() -> None:
    assert_allclose(
        wgs84_to_bd09(*REF_INPUT), gcj02_to_bd09(*REF_WGS84_TO_GCJ02), rtol=0, atol=1e-12
    )
    assert_allclose(bd09_to_wgs84(*wgs84_to_bd09(*REF_INPUT)), REF_INPUT, rtol=0, atol=1e-9)


# --------------------------------------------------------------------------- round trips


def test_round_trip_gcj02_over_china() -> None:
    lon, lat = _china_points()
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    err = np.abs(np.subtract(back, (lon, lat))).max()
    assert err < 1e-6
    assert err < 1e-8  # measured: ~1e-11 with the default tol_deg=1e-7


def test_round_trip_bd09_over_china() -> None:
    lon, lat = _china_points(seed=11)
    back = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    err = np.abs(np.subtract(back, (lon, lat))).max()
    assert err < 1e-6
    assert err < 1e-8  # measured: ~1e-10


def test_iteration_parameters() -> None:
    lon, lat = _china_points(2_000)
    g = wgs84_to_gcj02(lon, lat)
    one = gcj02_to_wgs84(*g, max_iter=1)
    err_one = np.abs(np.subtract(one, (lon, lat))).max()
    err_default = np.abs(np.subtract(gcj02_to_wgs84(*g), (lon, lat))).max()
    assert err_default < err_one < 1e-4
    with pytest.raises(InvalidInput, match="tol_deg"):
        gcj02_to_wgs84(110.0, 22.0, tol_deg=0)
    with pytest.raises(InvalidInput, match="max_iter"):
        bd09_to_wgs84(110.0, 22.0, max_iter=0)


# --------------------------------------------------------------------------- shapes, NaN, box


@pytest.mark.parametrize("func", CONVERSIONS)
def test_shapes_are_preserved(func) -> None:
    lon = np.full((3, 4), 110.15)
    lat = np.full((3, 4), 22.63)
    x, y = func(lon, lat)
    assert x.shape == y.shape == (3, 4)
    sx, sy = func(110.15, 22.63)
    assert isinstance(sx, float) and isinstance(sy, float)
    assert_allclose(x, sx)
    # Lists and broadcasting of a scalar latitude.
    lx, ly = func([110.15, 110.2], 22.63)
    assert lx.shape == (2,)


@pytest.mark.parametrize("func", CONVERSIONS)
def test_nan_in_nan_out(func) -> None:
    x, y = func(np.array([np.nan, 110.15, 110.2]), np.array([22.6, np.nan, 22.7]))
    assert np.isnan(x[:2]).all() and np.isnan(y[:2]).all()
    assert np.isfinite(x[2]) and np.isfinite(y[2])


def test_out_of_china_points_unchanged_for_gcj02() -> None:
    # Paris, Tokyo (east of 135.05E), Singapore (south of 3.86N), Moscow.
    lon = np.array([2.3522, 139.6917, 103.8198, 37.6173])
    lat = np.array([48.8566, 35.6895, 1.3521, 55.7558])
    assert not in_china(lon, lat).any()
    assert in_china(110.15, 22.63) is True
    for func in (wgs84_to_gcj02, gcj02_to_wgs84):
        x, y = func(lon, lat)
        assert np.array_equal(x, lon) and np.array_equal(y, lat)
    # BD-09's own offset applies everywhere, and still inverts.
    bx, by = wgs84_to_bd09(lon, lat)
    assert np.all(np.abs(bx - lon) > 1e-3)
    assert_allclose(bd09_to_wgs84(bx, by), (lon, lat), rtol=0, atol=1e-9)


def test_bad_coordinates_raise() -> None:
    with pytest.raises(InvalidInput, match="lon='east'"):
        wgs84_to_gcj02("east", 22.0)
    with pytest.raises(InvalidInput, match="same shape as lon"):
        wgs84_to_gcj02([110.0, 111.0, 112.0], [22.0, 23.0])


# --------------------------------------------------------------------------- CRS names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("wgs84", "wgs84"),
        ("WGS84", "wgs84"),
        ("WGS-84", "wgs84"),
        ("EPSG:4326", "wgs84"),
        ("epsg:4326", "wgs84"),
        ("OGC:CRS84", "wgs84"),
        ("GCJ02", "gcj02"),
        ("gcj-02", "gcj02"),
        ("BD-09", "bd09"),
        ("bd09", "bd09"),
        ("EPSG:4490", "EPSG:4490"),
        ("epsg:4546", "EPSG:4546"),
        ("+proj=utm +zone=49 +datum=WGS84 +units=m +no_defs", "EPSG:32649"),
        (pyproj.CRS.from_epsg(4546), "EPSG:4546"),
    ],
)
def test_normalize_crs(name, expected) -> None:
    assert normalize_crs(name) == expected


@pytest.mark.parametrize("bad", ["mars", "", "EPSG:999999", 4326, None])
def test_normalize_crs_errors(bad) -> None:
    with pytest.raises(InvalidInput, match=r"crs=.*expected wgs84, gcj02, bd09 or an EPSG code"):
        normalize_crs(bad)


def test_crs_names() -> None:
    assert CRS_NAMES == ("wgs84", "gcj02", "bd09")
    assert all(normalize_crs(n) == n for n in CRS_NAMES)


def test_to_and_from_wgs84() -> None:
    lon, lat = np.array([110.15, 109.6]), np.array([22.63, 21.7])
    for crs in ("wgs84", "gcj02", "bd09", "EPSG:4546", "EPSG:4490", "EPSG:3857"):
        x, y = from_wgs84(lon, lat, crs)
        assert_allclose(to_wgs84(x, y, crs), (lon, lat), rtol=0, atol=1e-8)
    assert_allclose(from_wgs84(lon, lat, "gcj02"), wgs84_to_gcj02(lon, lat))
    assert_allclose(from_wgs84(lon, lat, "bd09"), wgs84_to_bd09(lon, lat))
    # CGCS2000 geographic is WGS84 to well under a metre (1e-6 degrees is ~0.1 m).
    assert_allclose(from_wgs84(lon, lat, "EPSG:4490"), (lon, lat), rtol=0, atol=1e-6)
    # EPSG:4546 is CM 111E with a 500 km false easting; output is easting first.
    x, _ = from_wgs84(111.0, 22.6, "EPSG:4546")
    assert x == pytest.approx(500_000.0, abs=1e-6)


# --------------------------------------------------------------------------- geometries


@pytest.fixture(scope="module")
def counties_wgs84() -> gpd.GeoDataFrame:
    return gpd.read_file(YULIN_DIR / "yulin_counties_wgs84.geojson")


@pytest.fixture(scope="module")
def counties_gcj02() -> gpd.GeoDataFrame:
    return gpd.read_file(YULIN_DIR / "yulin_counties_gcj02.geojson")


def _metric_distance_m(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances in metres between WGS84 lon/lat rows of a and b, in metric_crs (EPSG:4546)."""
    crs = metric_crs(float(a[:, 0].mean()))
    ax, ay = project_xy(a[:, 0], a[:, 1], crs)
    bx, by = project_xy(b[:, 0], b[:, 1], crs)
    return np.hypot(ax - bx, ay - by)


def test_real_data_gcj02_pair(counties_wgs84, counties_gcj02) -> None:
    assert list(counties_wgs84["adcode"]) == list(counties_gcj02["adcode"])
    w = shapely.get_coordinates(counties_wgs84.geometry.array)
    g = shapely.get_coordinates(counties_gcj02.geometry.array)
    assert w.shape == g.shape and len(w) > 3000
    # Forward: every WGS84 vertex reproduces its GCJ-02 vertex within 0.01 m.
    fwd = np.column_stack(wgs84_to_gcj02(w[:, 0], w[:, 1]))
    assert _metric_distance_m(fwd, g).max() < 0.01
    # Inverse: every GCJ-02 vertex reproduces its WGS84 vertex within 0.05 m.
    inv = np.column_stack(gcj02_to_wgs84(g[:, 0], g[:, 1]))
    assert _metric_distance_m(inv, w).max() < 0.05
    # The raw shift is the GCJ-02 offset at Yulin, hundreds of metres.
    assert 400 < _metric_distance_m(g, w).mean() < 700


def test_transform_geometries_and_frame(counties_wgs84, counties_gcj02) -> None:
    series = counties_gcj02.geometry.set_axis(counties_gcj02["adcode"].astype(str))
    out = transform_geometries(series, "gcj02")
    assert isinstance(out, gpd.GeoSeries)
    assert list(out.index) == list(series.index)
    assert out.crs == "EPSG:4326"
    got = shapely.get_coordinates(out.array)
    g = shapely.get_coordinates(series.array)
    assert_allclose(got, np.column_stack(gcj02_to_wgs84(g[:, 0], g[:, 1])), rtol=0, atol=0)

    frame = to_wgs84_frame(counties_gcj02, crs="gcj02")
    assert frame.crs == "EPSG:4326"
    assert list(frame["name"]) == list(counties_gcj02["name"])
    coords = shapely.get_coordinates(frame.geometry.array)
    w = shapely.get_coordinates(counties_wgs84.geometry.array)
    assert _metric_distance_m(coords, w).max() < 0.05
    # The input frame is untouched.
    assert_allclose(shapely.get_coordinates(counties_gcj02.geometry.array), g)

    # Arrays, single geometries, EPSG targets, Z and missing values.
    arr = np.array([Point(110.15, 22.63, 5.0), None, LineString([(110, 22), (111, 23)])])
    back = transform_geometries(transform_geometries(arr, "wgs84", "bd09"), "bd-09", "EPSG:4326")
    assert back[1] is None
    assert shapely.get_coordinates(back[0], include_z=True)[0, 2] == 5.0
    assert shapely.equals_exact(back[2], arr[2], tolerance=1e-9)
    p = transform_geometries(Point(111.0, 22.6), "wgs84", YULIN_METRIC_CRS)
    assert p.x == pytest.approx(500_000.0, abs=1e-6)
    with pytest.raises(InvalidInput, match="geoms"):
        transform_geometries(["not a geometry"], "wgs84")


def test_to_wgs84_frame_needs_a_crs() -> None:
    gdf = gpd.GeoDataFrame({"a": [1]}, geometry=[Point(500_000, 2_500_000)])
    with pytest.raises(InvalidInput, match="no CRS set"):
        to_wgs84_frame(gdf)
    out = to_wgs84_frame(gdf.set_crs(YULIN_METRIC_CRS))
    assert out.crs == "EPSG:4326"
    assert out.geometry.iloc[0].x == pytest.approx(111.0)


# --------------------------------------------------------------------------- metric CRS


@pytest.mark.parametrize(
    ("lon", "lat", "expected"),
    [
        (110.15, None, "EPSG:4546"),
        (109.5, None, "EPSG:4546"),  # half-way between CM 108E and 111E goes east
        (110.9, None, "EPSG:4546"),
        (75.0, None, "EPSG:4534"),
        (73.5, None, "EPSG:4534"),
        (135.0, None, "EPSG:4554"),
        (136.5, None, "EPSG:4554"),
        (2.35, 48.86, "EPSG:32631"),  # outside China's longitudes: UTM
        (-70.6, -33.4, "EPSG:32719"),
        (180.0, 10.0, "EPSG:32660"),
    ],
)
def test_metric_crs(lon, lat, expected) -> None:
    assert metric_crs(lon, lat).to_string() == expected


def test_metric_crs_of_a_city_elsewhere_and_of_nothing() -> None:
    assert metric_crs_of([box(116.9, 31.6, 117.5, 32.0)]).to_string() == "EPSG:4548"
    assert "CM 117E" in metric_crs_of([box(116.9, 31.6, 117.5, 32.0)]).name
    frame = gpd.GeoDataFrame(geometry=[box(110.0, 22.5, 110.3, 22.8)], crs="EPSG:4326")
    assert metric_crs_of(frame).to_string() == YULIN_METRIC_CRS
    # nothing to measure: an equal-area CRS, and areas of nothing are 0
    assert metric_crs_of([]).to_string() == "EPSG:6933"
    assert area_m2([shapely.Polygon()]).tolist() == [0.0]


def test_metric_crs_is_cgcs2000_gauss_kruger() -> None:
    crs = metric_crs(110.15)
    assert crs.to_string() == YULIN_METRIC_CRS
    assert "CM 111E" in crs.name and crs.is_projected
    with pytest.raises(InvalidInput, match="lon"):
        metric_crs(200.0)
    with pytest.raises(InvalidInput, match="lon"):
        metric_crs(float("nan"))


def test_area_of_yuzhou_district(counties_wgs84) -> None:
    areas = area_m2(counties_wgs84)
    yuzhou = areas[counties_wgs84["adcode"].astype(str) == "450902"].iloc[0]
    assert yuzhou == pytest.approx(438e6, rel=0.02)
    # Against the geodesic area on the WGS84 ellipsoid (pyproj.Geod) as reference.
    geod = pyproj.Geod(ellps="WGS84")
    geodesic = np.array([abs(geod.geometry_area_perimeter(g)[0]) for g in counties_wgs84.geometry])
    assert_allclose(areas.to_numpy(), geodesic, rtol=2e-3)
    assert list(areas.index) == list(counties_wgs84.index)


def test_length_and_explicit_crs(counties_wgs84) -> None:
    geod = pyproj.Geod(ellps="WGS84")
    perim = np.array([geod.geometry_area_perimeter(g)[1] for g in counties_wgs84.geometry])
    assert_allclose(length_m(counties_wgs84.geometry).to_numpy(), perim, rtol=2e-3)
    a = area_m2(counties_wgs84.geometry.to_numpy(), crs=YULIN_METRIC_CRS)
    assert isinstance(a, np.ndarray)
    assert_allclose(a, area_m2(counties_wgs84).to_numpy())
    with pytest.raises(InvalidInput, match="projected"):
        area_m2(counties_wgs84, crs="EPSG:4490")
    with pytest.raises(InvalidInput, match="projected"):
        length_m(counties_wgs84, crs="gcj02")


def test_to_metric_and_project_xy() -> None:
    cell = box(110.0, 22.0, 110.01, 22.01)
    gdf = gpd.GeoDataFrame({"code": ["x"]}, geometry=[cell], crs="EPSG:4326")
    projected = to_metric(gdf)
    assert projected.crs == YULIN_METRIC_CRS
    assert gdf.crs == "EPSG:4326"  # a copy
    assert projected.area.iloc[0] == pytest.approx(area_m2([cell])[0])
    series = to_metric(gdf.geometry, crs="EPSG:32649")
    assert series.crs == "EPSG:32649"
    x, y = project_xy([110.0, 111.0], [22.0, 22.0], YULIN_METRIC_CRS)
    assert x[1] == pytest.approx(500_000.0, abs=1e-6)
    assert 100_000 < x[1] - x[0] < 105_000  # one degree of longitude at 22N, metres
    with pytest.raises(InvalidInput, match="projected"):
        project_xy(110.0, 22.0, "wgs84")
    assert len(area_m2(np.array([], dtype=object))) == 0
