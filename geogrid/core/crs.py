"""Coordinate systems for Chinese data: WGS84, GCJ-02, BD-09, EPSG codes and metric CRSs.

Three *named* coordinate systems appear in Chinese data:

``"wgs84"``
    WGS 84 geographic longitude/latitude in degrees (EPSG:4326, GPS, OSM, PostGIS 4326).
``"gcj02"``
    GCJ-02 ("Mars coordinates", 国测局坐标): WGS84 with the published obfuscation offset
    (a few hundred metres), used by AMap/高德, Tencent and Google China.
``"bd09"``
    BD-09 (百度坐标): GCJ-02 with Baidu's further offset, used by Baidu Maps.

Any other CRS is named by a string pyproj understands (``"EPSG:4490"``, ``"EPSG:4548"``...)
and is handled by pyproj. All functions take and return **longitude first** (x, y order).

GCJ-02 is only applied inside the usual out-of-China bounding box used by the public
reference implementations (wandergis/coordtransform): a point is "in China" when
``73.66 < lon < 135.05`` and ``3.86 < lat < 53.55`` (degrees, strict). Points outside that
box are returned unchanged by every GCJ-02 conversion; BD-09's own offset is applied
everywhere, as Baidu does. NaN in gives NaN out.

Areas and lengths are computed in a metric CRS: :func:`metric_crs` returns the CGCS2000
3-degree Gauss-Kruger zone of a longitude (e.g. EPSG:4548, central meridian 117E, for a city
at 116-118E); :func:`metric_crs_of` the zone of a set of geometries' centre. A service
measures in its city's CRS (``settings.city.metric_crs``, or the zone of the published
boundaries) and passes it as ``crs``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from pyproj.exceptions import CRSError

from geogrid.errors import InvalidInput

__all__ = [
    "CRS_NAMES",
    "wgs84_to_gcj02",
    "gcj02_to_wgs84",
    "gcj02_to_bd09",
    "bd09_to_gcj02",
    "wgs84_to_bd09",
    "bd09_to_wgs84",
    "in_china",
    "normalize_crs",
    "to_wgs84",
    "from_wgs84",
    "transform_geometries",
    "to_wgs84_frame",
    "metric_crs",
    "metric_crs_of",
    "project_xy",
    "to_metric",
    "area_m2",
    "length_m",
]

CRS_NAMES: tuple[str, str, str] = ("wgs84", "gcj02", "bd09")
"""The named (non-EPSG) coordinate systems."""


_CRS_ALLOWED = "wgs84, gcj02, bd09 or an EPSG code"

_ALIASES: dict[str, str] = {
    "wgs84": "wgs84",
    "wgs-84": "wgs84",
    "wgs_84": "wgs84",
    "wgs 84": "wgs84",
    "epsg:4326": "wgs84",
    "4326": "wgs84",
    "crs84": "wgs84",
    "ogc:crs84": "wgs84",
    "gcj02": "gcj02",
    "gcj-02": "gcj02",
    "gcj_02": "gcj02",
    "gcj": "gcj02",
    "bd09": "bd09",
    "bd-09": "bd09",
    "bd_09": "bd09",
    "bd09ll": "bd09",
}

# Constants of the public GCJ-02 / BD-09 algorithms (Krasovsky 1940 ellipsoid).
_A = 6378245.0  # semi-major axis, m
_EE = 0.00669342162296594323  # first eccentricity squared
_X_PI = math.pi * 3000.0 / 180.0

# The usual out-of-China box (degrees, strict inequalities inside).
_CHINA_LON = (73.66, 135.05)
_CHINA_LAT = (3.86, 53.55)

# CGCS2000 3-degree Gauss-Kruger zones: EPSG:4534 (CM 75E) ... EPSG:4554 (CM 135E).
_GK_FIRST_EPSG = 4534
_GK_FIRST_CM = 75
_GK_ZONES = 21
_GK_LON_RANGE = (73.5, 136.5)
# WGS 84 / NSIDC EASE-Grid 2.0 Global (equal-area): the CRS of "nothing to measure"
_EMPTY_METRIC_EPSG = 6933

ArrayLike = Any
"""A float, a sequence of floats or a NumPy array (degrees unless stated)."""


# --------------------------------------------------------------------------- helpers


def _as_arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray, bool]:
    """Float arrays of the same shape, and whether both inputs were scalars."""
    arrays = []
    for name, value in (("lon", lon), ("lat", lat)):
        try:
            arrays.append(np.asarray(value, dtype=float))
        except (TypeError, ValueError):
            raise InvalidInput(name, value, "a number or an array of numbers (degrees)") from None
    try:
        x, y = np.broadcast_arrays(*arrays)
    except ValueError:
        raise InvalidInput(
            "lat",
            f"array of shape {arrays[1].shape}",
            f"an array of the same shape as lon {arrays[0].shape}",
        ) from None
    scalar = x.ndim == 0
    return np.array(x, dtype=float), np.array(y, dtype=float), scalar


def _nan_pairs(x: np.ndarray, y: np.ndarray) -> None:
    """A point with one NaN coordinate is no point: make both coordinates NaN (in place)."""
    bad = np.isnan(x) | np.isnan(y)
    if bad.any():
        x[bad] = np.nan
        y[bad] = np.nan


def _out(x: np.ndarray, y: np.ndarray, scalar: bool) -> tuple[Any, Any]:
    if scalar:
        return float(x), float(y)
    return x, y


def in_china(lon: ArrayLike, lat: ArrayLike) -> np.ndarray | bool:
    """Whether points fall in the out-of-China box inside which GCJ-02 applies.

    Parameters
    ----------
    lon, lat : float or array-like
        Longitude and latitude in degrees (WGS84 or GCJ-02; the box is coarse).

    Returns
    -------
    bool or numpy.ndarray of bool
        True inside ``73.66 < lon < 135.05`` and ``3.86 < lat < 53.55``; False outside and
        for NaN.

    Examples
    --------
    >>> bool(in_china(110.15, 22.63)), bool(in_china(2.35, 48.86))
    (True, False)
    """
    x, y, scalar = _as_arrays(lon, lat)
    mask = _in_china(x, y)
    return bool(mask) if scalar else mask


def _in_china(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x > _CHINA_LON[0]) & (x < _CHINA_LON[1]) & (y > _CHINA_LAT[0]) & (y < _CHINA_LAT[1])


def _check_iteration(tol_deg: float, max_iter: int) -> None:
    if isinstance(tol_deg, bool) or not (isinstance(tol_deg, (int, float)) and tol_deg > 0):
        raise InvalidInput("tol_deg", tol_deg, "a positive number of degrees")
    if isinstance(max_iter, bool) or not (isinstance(max_iter, int) and max_iter >= 1):
        raise InvalidInput("max_iter", max_iter, "a positive integer")


def _gcj_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 minus WGS84 offset (degrees) at WGS84 points, without the China test."""
    x = lon - 105.0
    y = lat - 35.0
    pi = math.pi
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    dlat += common
    dlat += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    dlon += common
    dlon += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(radlat) * pi)
    return dlon, dlat


# --------------------------------------------------------------------------- GCJ-02 / BD-09


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """Convert WGS84 coordinates to GCJ-02.

    Parameters
    ----------
    lon, lat : float or array-like
        WGS84 (EPSG:4326) longitude and latitude in degrees; broadcast to one shape.

    Returns
    -------
    (lon, lat) : floats or numpy.ndarray
        GCJ-02 longitude and latitude in degrees, same shape as the input. Points outside
        the out-of-China box (see :func:`in_china`) are returned unchanged; NaN stays NaN.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(116.404, 39.915)
    >>> round(lon, 6), round(lat, 6)
    (116.410244, 39.916404)
    """
    x, y, scalar = _as_arrays(lon, lat)
    _nan_pairs(x, y)
    mask = _in_china(x, y)
    if mask.any():
        dlon, dlat = _gcj_offset(x[mask], y[mask])
        x[mask] += dlon
        y[mask] += dlat
    return _out(x, y, scalar)


def gcj02_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, *, tol_deg: float = 1e-7, max_iter: int = 20
) -> tuple[Any, Any]:
    """Convert GCJ-02 coordinates to WGS84 by fixed-point iteration of the forward transform.

    Starting from the one-step approximation ``w = g - offset(g)``, the estimate is
    corrected by ``w -= wgs84_to_gcj02(w) - g`` until the residual
    ``|wgs84_to_gcj02(w) - g|`` is below ``tol_deg`` in both coordinates for every point
    (the offset is a contraction: each step gains about three decimal digits, so the result
    is typically within 1e-9 degrees, about 0.1 mm).

    Parameters
    ----------
    lon, lat : float or array-like
        GCJ-02 longitude and latitude in degrees; broadcast to one shape.
    tol_deg : float, default 1e-7
        Largest accepted forward residual, degrees (1e-7 degrees is about 1 cm).
    max_iter : int, default 20
        Largest number of corrections; the best estimate is returned if the tolerance is
        not reached (it is reached in 2-4 steps everywhere in China).

    Returns
    -------
    (lon, lat) : floats or numpy.ndarray
        WGS84 (EPSG:4326) longitude and latitude in degrees, same shape as the input.
        Points whose GCJ-02 coordinates lie outside the out-of-China box are returned
        unchanged; NaN stays NaN.

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(*wgs84_to_gcj02(110.15, 22.63))
    >>> round(lon, 9), round(lat, 9)
    (110.15, 22.63)
    """
    _check_iteration(tol_deg, max_iter)
    x, y, scalar = _as_arrays(lon, lat)
    _nan_pairs(x, y)
    mask = _in_china(x, y)
    if mask.any():
        gx, gy = x[mask], y[mask]
        dlon, dlat = _gcj_offset(gx, gy)
        wx, wy = gx - dlon, gy - dlat
        for _ in range(max_iter):
            dlon, dlat = _gcj_offset(wx, wy)
            rx = wx + dlon - gx
            ry = wy + dlat - gy
            wx -= rx
            wy -= ry
            if max(np.max(np.abs(rx)), np.max(np.abs(ry))) < tol_deg:
                break
        x[mask], y[mask] = wx, wy
    return _out(x, y, scalar)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """Convert GCJ-02 coordinates to BD-09 (Baidu).

    Parameters
    ----------
    lon, lat : float or array-like
        GCJ-02 longitude and latitude in degrees.

    Returns
    -------
    (lon, lat) : floats or numpy.ndarray
        BD-09 longitude and latitude in degrees, same shape. Baidu's offset is applied
        everywhere (no China test); NaN stays NaN.
    """
    x, y, scalar = _as_arrays(lon, lat)
    return _out(*_gcj_to_bd(x, y), scalar)


def _gcj_to_bd(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(
    lon: ArrayLike, lat: ArrayLike, *, tol_deg: float = 1e-7, max_iter: int = 20
) -> tuple[Any, Any]:
    """Convert BD-09 (Baidu) coordinates to GCJ-02 by fixed-point iteration.

    The closed-form inverse published with the algorithm is only good to about 2e-6 degrees
    (0.2 m); it is used as the start and corrected by ``g -= gcj02_to_bd09(g) - b`` until
    the residual is below ``tol_deg`` in both coordinates.

    Parameters
    ----------
    lon, lat : float or array-like
        BD-09 longitude and latitude in degrees.
    tol_deg : float, default 1e-7
        Largest accepted forward residual, degrees.
    max_iter : int, default 20
        Largest number of corrections (2-3 are needed).

    Returns
    -------
    (lon, lat) : floats or numpy.ndarray
        GCJ-02 longitude and latitude in degrees, same shape; NaN stays NaN.
    """
    _check_iteration(tol_deg, max_iter)
    bx, by, scalar = _as_arrays(lon, lat)
    x = bx - 0.0065
    y = by - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    gx, gy = z * np.cos(theta), z * np.sin(theta)
    finite = np.isfinite(bx) & np.isfinite(by)
    for _ in range(max_iter):
        fx, fy = _gcj_to_bd(gx, gy)
        rx, ry = fx - bx, fy - by
        gx = gx - rx
        gy = gy - ry
        if (
            not finite.any()
            or max(np.max(np.abs(rx[finite])), np.max(np.abs(ry[finite]))) < tol_deg
        ):
            break
    return _out(gx, gy, scalar)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Any, Any]:
    """Convert WGS84 coordinates to BD-09 (through GCJ-02).

    Parameters
    ----------
    lon, lat : float or array-like
        WGS84 (EPSG:4326) longitude and latitude in degrees.

    Returns
    -------
    (lon, lat) : floats or numpy.ndarray
        BD-09 longitude and latitude in degrees, same shape. Outside the out-of-China box
        only Baidu's own offset is applied.
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, *, tol_deg: float = 1e-7, max_iter: int = 20
) -> tuple[Any, Any]:
    """Convert BD-09 coordinates to WGS84 (through GCJ-02, iterative GCJ-02 inverse).

    Parameters
    ----------
    lon, lat : float or array-like
        BD-09 longitude and latitude in degrees.
    tol_deg, max_iter
        Passed to :func:`bd09_to_gcj02` and :func:`gcj02_to_wgs84`.

    Returns
    -------
    (lon, lat) : floats or numpy.ndarray
        WGS84 (EPSG:4326) longitude and latitude in degrees, same shape.
    """
    gx, gy = bd09_to_gcj02(lon, lat, tol_deg=tol_deg, max_iter=max_iter)
    return gcj02_to_wgs84(gx, gy, tol_deg=tol_deg, max_iter=max_iter)


# --------------------------------------------------------------------------- CRS names


def normalize_crs(name: str | pyproj.CRS) -> str:
    """Canonical name of a coordinate system.

    Parameters
    ----------
    name : str or pyproj.CRS
        ``"wgs84"``, ``"gcj02"``, ``"bd09"`` in any case, an alias (``"WGS-84"``,
        ``"EPSG:4326"``, ``"gcj-02"``, ``"bd-09"`` ...), or anything pyproj understands
        (``"EPSG:4490"``, ``"epsg:4546"``, a WKT or PROJ string with a known authority).

    Returns
    -------
    str
        One of :data:`CRS_NAMES`, or an authority string such as ``"EPSG:4490"``.
        WGS 84 geographic in any spelling (EPSG:4326, OGC:CRS84) becomes ``"wgs84"``.

    Raises
    ------
    InvalidInput
        ``parameter="crs"`` when the name is neither known nor understood by pyproj.

    Examples
    --------
    >>> normalize_crs("GCJ-02"), normalize_crs("EPSG:4326"), normalize_crs("epsg:4546")
    ('gcj02', 'wgs84', 'EPSG:4546')
    """
    if isinstance(name, pyproj.CRS):
        return _normalize_pyproj(name, name)
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("crs", name, _CRS_ALLOWED)
    key = name.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    return _normalize_user_crs(name.strip())


@lru_cache(maxsize=128)
def _normalize_user_crs(name: str) -> str:
    try:
        crs = pyproj.CRS.from_user_input(name)
    except CRSError:
        raise InvalidInput("crs", name, _CRS_ALLOWED) from None
    return _normalize_pyproj(crs, name)


def _normalize_pyproj(crs: pyproj.CRS, original: Any) -> str:
    if crs.equals(_WGS84, ignore_axis_order=True):
        return "wgs84"
    auth = crs.to_authority() or crs.to_authority(min_confidence=70)
    if auth is None:
        raise InvalidInput(
            "crs",
            original,
            _CRS_ALLOWED,
            message=(
                f"crs={original!r} is not valid: pyproj reads it but finds no authority code; "
                f"expected {_CRS_ALLOWED}"
            ),
        )
    return f"{auth[0]}:{auth[1]}"


_WGS84 = pyproj.CRS.from_epsg(4326)


@lru_cache(maxsize=64)
def _transformer(src: str, dst: str) -> pyproj.Transformer:
    """Cached pyproj transformer (lon/lat, easting/northing order) between authority codes."""
    src_crs = "EPSG:4326" if src == "wgs84" else src
    dst_crs = "EPSG:4326" if dst == "wgs84" else dst
    return pyproj.Transformer.from_crs(src_crs, dst_crs, always_xy=True)


def to_wgs84(lon: ArrayLike, lat: ArrayLike, crs: str | pyproj.CRS) -> tuple[Any, Any]:
    """Convert coordinates in any supported CRS to WGS84.

    Parameters
    ----------
    lon, lat : float or array-like
        x and y in ``crs`` (degrees for geographic CRSs, metres for projected ones; easting
        first whatever the CRS's axis order).
    crs : str or pyproj.CRS
        ``"wgs84"``, ``"gcj02"``, ``"bd09"`` or any CRS pyproj understands (EPSG:4490,
        CGCS2000, is converted by pyproj; it equals WGS84 to well under a metre).

    Returns
    -------
    (lon, lat) : floats or numpy.ndarray
        WGS84 (EPSG:4326) longitude and latitude in degrees, same shape (a copy).
    """
    return _convert(lon, lat, normalize_crs(crs), "wgs84")


def from_wgs84(lon: ArrayLike, lat: ArrayLike, crs: str | pyproj.CRS) -> tuple[Any, Any]:
    """Convert WGS84 coordinates to any supported CRS.

    Parameters
    ----------
    lon, lat : float or array-like
        WGS84 (EPSG:4326) longitude and latitude in degrees.
    crs : str or pyproj.CRS
        Target: ``"wgs84"``, ``"gcj02"``, ``"bd09"`` or any CRS pyproj understands.

    Returns
    -------
    (x, y) : floats or numpy.ndarray
        Coordinates in ``crs`` (easting/longitude first), same shape (a copy).
    """
    return _convert(lon, lat, "wgs84", normalize_crs(crs))


_NAMED_TO_WGS84: dict[str, Callable[..., tuple[Any, Any]]] = {
    "gcj02": gcj02_to_wgs84,
    "bd09": bd09_to_wgs84,
}
_NAMED_FROM_WGS84: dict[str, Callable[..., tuple[Any, Any]]] = {
    "gcj02": wgs84_to_gcj02,
    "bd09": wgs84_to_bd09,
}


def _convert(lon: ArrayLike, lat: ArrayLike, src: str, dst: str) -> tuple[Any, Any]:
    """Convert between normalised CRS names (through WGS84 unless both are EPSG codes)."""
    x, y, scalar = _as_arrays(lon, lat)
    if src == dst:
        return _out(x, y, scalar)
    if src not in _NAMED_TO_WGS84 and dst not in _NAMED_FROM_WGS84:
        tx, ty = _transformer(src, dst).transform(x, y)
        return _out(np.asarray(tx, dtype=float), np.asarray(ty, dtype=float), scalar)
    # Through WGS84.
    if src in _NAMED_TO_WGS84:
        x, y = _NAMED_TO_WGS84[src](x, y)
    elif src != "wgs84":
        x, y = _transformer(src, "wgs84").transform(x, y)
    if dst in _NAMED_FROM_WGS84:
        x, y = _NAMED_FROM_WGS84[dst](x, y)
    elif dst != "wgs84":
        x, y = _transformer("wgs84", dst).transform(x, y)
    return _out(np.asarray(x, dtype=float), np.asarray(y, dtype=float), scalar)


# --------------------------------------------------------------------------- geometries


def _pyproj_crs_or_none(name: str) -> pyproj.CRS | None:
    """The pyproj CRS for a normalised name (None for gcj02/bd09, which have no EPSG code)."""
    if name == "wgs84":
        return _WGS84
    if name in ("gcj02", "bd09"):
        return None
    return pyproj.CRS.from_user_input(name)


def transform_geometries(
    geoms: Any, from_crs: str | pyproj.CRS, to_crs: str | pyproj.CRS = "wgs84"
) -> Any:
    """Reproject shapely geometries between any two supported coordinate systems.

    Parameters
    ----------
    geoms : shapely geometry, array-like of geometries, or geopandas.GeoSeries
        Geometries whose coordinates are in ``from_crs`` (None and empty geometries pass
        through; Z values are kept unchanged).
    from_crs, to_crs : str or pyproj.CRS
        ``"wgs84"``, ``"gcj02"``, ``"bd09"`` or any CRS pyproj understands. GCJ-02/BD-09
        use the vectorised functions of this module, EPSG codes use pyproj.

    Returns
    -------
    Same kind as ``geoms``
        New geometries in ``to_crs``. A GeoSeries keeps its index and gets ``crs=to_crs``
        (``None`` for gcj02/bd09, which have no EPSG code); arrays come back as NumPy
        object arrays of the same shape.
    """
    src = normalize_crs(from_crs)
    dst = normalize_crs(to_crs)

    def _fn(x: np.ndarray, y: np.ndarray, z: np.ndarray | None = None) -> tuple:
        nx, ny = _convert(x, y, src, dst)
        return (nx, ny) if z is None else (nx, ny, z)

    def _apply(values: Any) -> Any:
        return shapely.transform(values, _fn, include_z=None, interleaved=False)

    if isinstance(geoms, gpd.GeoDataFrame):
        raise InvalidInput(
            "geoms", "GeoDataFrame", "a GeoSeries or geometry array (use to_wgs84_frame)"
        )
    if isinstance(geoms, gpd.GeoSeries):
        values = np.asarray(geoms.array, dtype=object)
        out = values.copy() if src == dst else _apply(values)
        return gpd.GeoSeries(out, index=geoms.index, crs=_pyproj_crs_or_none(dst), name=geoms.name)
    if isinstance(geoms, shapely.Geometry):
        return geoms if src == dst else _apply(geoms)
    values = np.asarray(geoms, dtype=object)
    if values.size and not np.all(shapely.is_geometry(values) | shapely.is_missing(values)):
        raise InvalidInput("geoms", type(geoms).__name__, "shapely geometries or a GeoSeries")
    return values.copy() if src == dst else _apply(values)


def to_wgs84_frame(gdf: gpd.GeoDataFrame, crs: str | pyproj.CRS | None = None) -> gpd.GeoDataFrame:
    """A copy of a GeoDataFrame in EPSG:4326 (WGS84 lon/lat degrees).

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        The frame to convert (its active geometry column is converted).
    crs : str or pyproj.CRS, optional
        The CRS its coordinates are really in. Required when ``gdf.crs`` is unset, and for
        GCJ-02/BD-09 data (GeoJSON files of AMap/Baidu data claim EPSG:4326 but hold
        ``"gcj02"`` or ``"bd09"`` coordinates); when given it overrides ``gdf.crs``.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy with ``crs`` EPSG:4326.

    Raises
    ------
    InvalidInput
        When neither ``crs`` nor ``gdf.crs`` says what the coordinates are.
    """
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InvalidInput("gdf", type(gdf).__name__, "a geopandas GeoDataFrame")
    source = crs if crs is not None else gdf.crs
    if source is None:
        raise InvalidInput("crs", None, _CRS_ALLOWED + " (the frame has no CRS set)")
    src = normalize_crs(source)
    out = gdf.copy()
    geom = out.geometry
    values = np.asarray(geom.array, dtype=object)
    out[geom.name] = gpd.GeoSeries(
        transform_geometries(values, src, "wgs84"), index=out.index, crs=_WGS84
    )
    return out.set_crs(_WGS84, allow_override=True)


# --------------------------------------------------------------------------- metric CRS


@lru_cache(maxsize=128)
def _crs_from_epsg(code: int) -> pyproj.CRS:
    return pyproj.CRS.from_epsg(code)


def metric_crs(lon: float, lat: float | None = None) -> pyproj.CRS:
    """The metric (projected) CRS for areas and distances at a longitude.

    Inside 73.5-136.5E (China's longitudes) this is the CGCS2000 3-degree Gauss-Kruger
    zone whose central meridian is nearest: EPSG:4534 (CM 75E) ... EPSG:4554 (CM 135E),
    one code per 3 degrees (axes in metres, easting without zone prefix): e.g. EPSG:4546
    (CM 111E) at 109.5-112.5E, EPSG:4548 (CM 117E) at 115.5-118.5E. A longitude half-way
    between two central meridians goes east.

    Outside that range it falls back to the WGS 84 / UTM zone of the longitude
    (EPSG:326zz north, EPSG:327zz when ``lat < 0``).

    Parameters
    ----------
    lon : float
        Longitude in degrees (WGS84 or CGCS2000), -180..180.
    lat : float, optional
        Latitude in degrees; only used to choose the UTM hemisphere (north by default).

    Returns
    -------
    pyproj.CRS

    Examples
    --------
    >>> metric_crs(110.15).to_string()
    'EPSG:4546'
    >>> metric_crs(117.2).to_string()
    'EPSG:4548'
    >>> metric_crs(2.35, 48.86).to_string()
    'EPSG:32631'
    """
    try:
        value = float(lon)
    except (TypeError, ValueError):
        raise InvalidInput("lon", lon, "a longitude in degrees, -180..180") from None
    if not (math.isfinite(value) and -180.0 <= value <= 180.0):
        raise InvalidInput("lon", lon, "a longitude in degrees, -180..180")
    if _GK_LON_RANGE[0] <= value <= _GK_LON_RANGE[1]:
        zone = math.floor((value - _GK_FIRST_CM) / 3.0 + 0.5)
        zone = min(max(zone, 0), _GK_ZONES - 1)
        return _crs_from_epsg(_GK_FIRST_EPSG + zone)
    utm_zone = min(int((value + 180.0) // 6.0) + 1, 60)
    south = lat is not None and float(lat) < 0
    return _crs_from_epsg((32700 if south else 32600) + utm_zone)


def _metric_target(crs: str | pyproj.CRS | None, geoms: Any, source: str) -> pyproj.CRS:
    """The metric CRS to use: the given one (checked) or metric_crs of the data's centre."""
    if crs is not None:
        name = normalize_crs(crs)
        target = _pyproj_crs_or_none(name)
        if target is None or not target.is_projected:
            raise InvalidInput("crs", crs, "a projected (metric) CRS such as EPSG:4548")
        return target
    return _centre_metric_crs(geoms, source)


def _centre_metric_crs(geoms: Any, source: str) -> pyproj.CRS:
    values = np.asarray(geoms.array if isinstance(geoms, gpd.GeoSeries) else geoms, dtype=object)
    bounds = shapely.total_bounds(values) if values.size else np.full(4, np.nan)
    if not np.all(np.isfinite(bounds)):
        # nothing to measure (no or only empty geometries): any metric CRS gives 0
        return _crs_from_epsg(_EMPTY_METRIC_EPSG)
    cx, cy = (bounds[0] + bounds[2]) / 2.0, (bounds[1] + bounds[3]) / 2.0
    cx, cy = _convert(cx, cy, source, "wgs84")
    return metric_crs(cx, cy)


def metric_crs_of(geoms: Any) -> pyproj.CRS:
    """The metric CRS of a set of geometries: :func:`metric_crs` of the centre of their
    bounding box (the zone a city's areas are measured in when its CRS is not configured).

    Parameters
    ----------
    geoms : GeoDataFrame, GeoSeries or array-like of shapely geometries
        Geometries in their ``.crs``, or in EPSG:4326 when it is unset / for plain arrays.

    Returns
    -------
    pyproj.CRS
        A CGCS2000 3-degree Gauss-Kruger zone inside China's longitudes, else a UTM zone;
        EPSG:6933 (an equal-area world CRS) when there is nothing to measure.

    Examples
    --------
    >>> from shapely import box
    >>> metric_crs_of([box(116.8, 31.6, 117.6, 32.1)]).to_string()
    'EPSG:4548'
    """
    series = geoms.geometry if isinstance(geoms, gpd.GeoDataFrame) else geoms
    return _centre_metric_crs(series, _source_of(series))


def _source_of(geoms: Any) -> str:
    own = getattr(geoms, "crs", None)
    return "wgs84" if own is None else normalize_crs(own)


def to_metric(geoms_or_gdf: Any, crs: str | pyproj.CRS | None = None) -> Any:
    """Project geometries to a metric CRS.

    Parameters
    ----------
    geoms_or_gdf : GeoDataFrame, GeoSeries or array-like of shapely geometries
        Geometries in their ``.crs``, or in EPSG:4326 when it is unset / for plain arrays.
    crs : str or pyproj.CRS, optional
        The projected CRS; default ``metric_crs`` of the centre of the data's bounding box.

    Returns
    -------
    Same kind as the input
        A projected copy (coordinates in metres); frames and series carry the new ``crs``.
    """
    if isinstance(geoms_or_gdf, gpd.GeoDataFrame):
        source = _source_of(geoms_or_gdf)
        target = _metric_target(crs, geoms_or_gdf.geometry, source)
        out = geoms_or_gdf if geoms_or_gdf.crs is not None else geoms_or_gdf.set_crs(_WGS84)
        return out.to_crs(target)
    source = _source_of(geoms_or_gdf)
    target = _metric_target(crs, geoms_or_gdf, source)
    return transform_geometries(geoms_or_gdf, source, target)


def _measure(geoms: Any, crs: Any, func: Callable[[np.ndarray], np.ndarray]) -> Any:
    series = geoms.geometry if isinstance(geoms, gpd.GeoDataFrame) else geoms
    if isinstance(series, gpd.GeoSeries):
        projected = to_metric(series, crs)
        return pd.Series(func(np.asarray(projected.array, dtype=object)), index=series.index)
    projected = to_metric(geoms, crs)
    return func(np.asarray(projected, dtype=object))


def area_m2(geoms: Any, crs: str | pyproj.CRS | None = None) -> Any:
    """Areas in square metres.

    Parameters
    ----------
    geoms : GeoDataFrame, GeoSeries or array-like of shapely geometries
        Geometries in EPSG:4326 (or in their ``.crs`` when set).
    crs : str or pyproj.CRS, optional
        The projected CRS to measure in; default :func:`metric_crs` of the centre of the
        data's bounding box (a Gauss-Kruger zone: scale error below 0.03% within 1.5 degrees
        of its central meridian).

    Returns
    -------
    pandas.Series (for frames and series, same index) or numpy.ndarray of float
        Areas in m²; 0 for empty geometries, NaN for missing ones.

    Examples
    --------
    >>> from shapely import box
    >>> round(float(area_m2([box(110.0, 22.0, 110.01, 22.01)])[0]))
    1143683
    """
    return _measure(geoms, crs, shapely.area)


def length_m(geoms: Any, crs: str | pyproj.CRS | None = None) -> Any:
    """Lengths (perimeters for polygons) in metres.

    Parameters
    ----------
    geoms : GeoDataFrame, GeoSeries or array-like of shapely geometries
        Geometries in EPSG:4326 (or in their ``.crs`` when set).
    crs : str or pyproj.CRS, optional
        The projected CRS to measure in; default as in :func:`area_m2`.

    Returns
    -------
    pandas.Series (for frames and series, same index) or numpy.ndarray of float
        Lengths in metres.
    """
    return _measure(geoms, crs, shapely.length)


def project_xy(lon: ArrayLike, lat: ArrayLike, crs: str | pyproj.CRS) -> tuple[Any, Any]:
    """Project WGS84 coordinates to a metric CRS.

    Parameters
    ----------
    lon, lat : float or array-like
        WGS84 (EPSG:4326) longitude and latitude in degrees.
    crs : str or pyproj.CRS
        A projected CRS, e.g. ``metric_crs(lon)`` or the city's ``"EPSG:4548"``.

    Returns
    -------
    (x, y) : floats or numpy.ndarray
        Easting and northing in metres, same shape.
    """
    name = normalize_crs(crs)
    target = _pyproj_crs_or_none(name)
    if target is None or not target.is_projected:
        raise InvalidInput("crs", crs, "a projected (metric) CRS such as EPSG:4548")
    return _convert(lon, lat, "wgs84", name)
