"""The city as served: its configuration (:class:`geogrid.settings.City`) completed from the
published boundaries, and the client configuration of ``GET /config``.

A field left out of the city's configuration is derived:

``metric_crs``  the CGCS2000 3-degree Gauss-Kruger zone of the centre of the published
                boundaries' bounding box (:func:`geogrid.core.crs.metric_crs`), the same
                rule :func:`geogrid.services.boundaries.import_layer` measures areas by;
``name_zh``,    the name of the top unit when the top level has exactly one unit, else
``name_en``     ``"geogrid"``;
``center``,     the centre of the boundaries' bounding box, and the zoom that fits it in a
``zoom``        1000 × 700 px map;
``source``      ``"geogrid"``.

The profile is computed once per published boundary version and kept on the service's
:class:`~geogrid.services.context.AppContext` (``ctx.city_cache``).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine

from geogrid.core.catalogue import load_categories
from geogrid.core.crs import metric_crs
from geogrid.core.hierarchy import CODE_LENGTH, LEVEL_NAMES, LEVELS
from geogrid.core.lifecycle import STATUSES
from geogrid.core.metric_catalogue import METRICS
from geogrid.core.service_register import SERVICE_KINDS
from geogrid.services.incidents import list_categories, save_categories
from geogrid.settings import City, Settings
from geogrid.store import units as store_units
from geogrid.store.engine import connection

__all__ = [
    "FALLBACK_NAME",
    "CityCache",
    "CityContext",
    "CityProfile",
    "city_config",
    "city_profile",
    "derive_profile",
    "fit_zoom",
    "install_categories",
    "profile_for",
]

#: the name shown when neither the configuration nor the boundaries give one
FALLBACK_NAME = "geogrid"
_MAP_PX = (1000.0, 700.0)  # the map size the derived zoom fits the boundaries into
_TILE_PX = 512.0  # MapLibre's tile size


@dataclass(frozen=True)
class CityProfile:
    """The city as served: every field set (configured, else derived).

    Attributes
    ----------
    code : str or None
        Administrative code, when configured.
    name_zh, name_en : str
        Display names.
    timezone : str
        IANA zone in which times are shown and naive times read.
    metric_crs : str or None
        ``"EPSG:n"``: the CRS of lengths and areas (None: not configured and no boundaries
        published yet).
    center : tuple of float
        Default map centre, WGS84 (lon, lat).
    zoom : float
        Default map zoom (Web Mercator).
    source : str
        The data's source line (map attribution).
    """

    code: str | None
    name_zh: str
    name_en: str
    timezone: str
    metric_crs: str | None
    center: tuple[float, float]
    zoom: float
    source: str


class CityCache:
    """The profile of the published version, computed once per version (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entry: tuple[int | None, CityProfile] | None = None

    def get(self, version_id: int | None) -> CityProfile | None:
        """The cached profile of ``version_id``, or None."""
        with self._lock:
            if self._entry is not None and self._entry[0] == version_id:
                return self._entry[1]
            return None

    def put(self, version_id: int | None, profile: CityProfile) -> None:
        """Remember the profile of ``version_id`` (replacing any other)."""
        with self._lock:
            self._entry = (version_id, profile)

    def clear(self) -> None:
        """Forget the cached profile."""
        with self._lock:
            self._entry = None


def fit_zoom(
    bounds: tuple[float, float, float, float], size_px: tuple[float, float] = _MAP_PX
) -> float:
    """The Web Mercator zoom (quarter steps, 1..18) at which ``bounds`` (WGS84 min lon,
    min lat, max lon, max lat) fits a map of ``size_px`` (width, height) pixels.

    >>> fit_zoom((109.5, 21.6, 110.9, 23.1))
    8.0
    """
    x0, y0, x1, y1 = bounds

    def merc_y(lat: float) -> float:
        lat = max(min(lat, 85.0), -85.0)
        return math.degrees(math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)))

    span_x = max(x1 - x0, 1e-6)
    span_y = max(merc_y(y1) - merc_y(y0), 1e-6)
    scale = min(size_px[0] / span_x, size_px[1] / span_y) * 360.0 / _TILE_PX
    zoom = math.floor(math.log2(scale) * 4) / 4
    return float(min(max(zoom, 1.0), 18.0))


def derive_profile(
    city: City,
    bounds: tuple[float, float, float, float] | None,
    top_units: list[tuple[str, str]],
) -> CityProfile:
    """Complete a city's configuration from its boundaries (pure).

    Parameters
    ----------
    city : City
        The configuration.
    bounds : tuple of float or None
        Bounding box of the published boundaries (WGS84 min lon, min lat, max lon, max lat);
        None when nothing is published.
    top_units : list of (code, name)
        The units of the top level present.

    Examples
    --------
    >>> p = derive_profile(City(timezone="Asia/Urumqi"), (117.0, 31.7, 117.4, 32.0),
    ...                    [("340101", "测试区")])
    >>> p.name_zh, p.metric_crs, p.center, p.timezone
    ('测试区', 'EPSG:4548', (117.2, 31.85), 'Asia/Urumqi')
    """
    if bounds is not None:
        cx, cy = (bounds[0] + bounds[2]) / 2.0, (bounds[1] + bounds[3]) / 2.0
        derived_crs = metric_crs(cx, cy).to_string()
        derived_center = (round(cx, 6), round(cy, 6))
        derived_zoom = fit_zoom(bounds)
    else:
        derived_center, derived_crs, derived_zoom = (0.0, 0.0), None, 2.0
    lone = top_units[0][1] if len(top_units) == 1 else None
    center = city.center if city.center is not None else derived_center
    return CityProfile(
        code=city.code,
        name_zh=city.name_zh or city.name_en or lone or FALLBACK_NAME,
        name_en=city.name_en or city.name_zh or lone or FALLBACK_NAME,
        timezone=city.timezone,
        metric_crs=city.metric_crs or derived_crs,
        center=(float(center[0]), float(center[1])),
        zoom=float(city.zoom) if city.zoom is not None else derived_zoom,
        source=city.source or FALLBACK_NAME,
    )


def profile_for(engine: Engine, city: City) -> tuple[int | None, CityProfile]:
    """The published version's id and the profile of ``city`` over it (not cached).

    When nothing is published and no ``metric_crs`` is configured, the profile's
    ``metric_crs`` is None.
    """
    with connection(engine) as conn:
        vid = store_units.published_version_id(conn)
        bounds = store_units.version_extent(conn, vid) if vid is not None else None
        top: list[tuple[str, str]] = []
        if vid is not None:
            for level in LEVELS:
                top = store_units.level_names(conn, vid, level)
                if top:
                    break
    return vid, derive_profile(city, bounds, top)


class CityContext(Protocol):
    """What the city functions need of a service's context
    (:class:`~geogrid.services.context.AppContext` has it)."""

    engine: Engine
    settings: Settings
    city_cache: CityCache


def city_profile(ctx: CityContext) -> CityProfile:
    """The served city's profile (cached on ``ctx`` per published boundary version)."""
    return _cached_profile(ctx.engine, ctx.settings, ctx.city_cache)


def _cached_profile(engine: Engine, settings: Settings, cache: CityCache) -> CityProfile:
    with connection(engine) as conn:
        vid = store_units.published_version_id(conn)
    found = cache.get(vid)
    if found is not None:
        return found
    vid, profile = profile_for(engine, settings.city)
    if vid is not None:  # an empty database is not cached: boundaries may arrive
        cache.put(vid, profile)
    return profile


def city_config(ctx: CityContext) -> dict[str, Any]:
    """What a client needs to know about the service's city (``GET /config``).

    Returns
    -------
    dict
        ``city`` (``code``, ``name_zh``, ``name_en``, ``timezone``, ``metric_crs`` (the
        effective one), ``center`` [lon, lat], ``zoom``, ``source``), ``levels`` (``key``,
        ``name_zh``, ``name_en``, ``code_length``, district first), ``metrics`` (``key``,
        ``description``), ``statuses`` (the incident lifecycle, in order) and
        ``categories`` (the active incident categories: ``code``, ``name_zh``,
        ``name_en``), ``service_kinds`` (the daily service register's kinds) and ``patrol``
        (the phone's GPS sampling: ``interval_s``, ``max_accuracy_m``).
    """
    profile = city_profile(ctx)
    categories = list_categories(ctx.engine)
    return {
        "city": {
            "code": profile.code,
            "name_zh": profile.name_zh,
            "name_en": profile.name_en,
            "timezone": profile.timezone,
            "metric_crs": profile.metric_crs,
            "center": list(profile.center),
            "zoom": profile.zoom,
            "source": profile.source,
        },
        "levels": [
            {
                "key": lv,
                "name_zh": LEVEL_NAMES[lv]["zh"],
                "name_en": LEVEL_NAMES[lv]["en"],
                "code_length": CODE_LENGTH[lv],
            }
            for lv in LEVELS
        ],
        "metrics": [{"key": k, "description": d} for k, d in METRICS.items()],
        "statuses": list(STATUSES),
        "categories": [
            {"code": c["code"], "name_zh": c["name_zh"], "name_en": c["name_en"]}
            for c in categories
        ],
        # issue 13 (TERM-B): the phone app's register kinds and patrol sampling
        "service_kinds": [
            {"code": k.code, "name_zh": k.name_zh, "name_en": k.name_en} for k in SERVICE_KINDS
        ],
        "patrol": {
            "interval_s": ctx.settings.patrol_min_interval_s,
            "max_accuracy_m": ctx.settings.patrol_max_accuracy_m,
        },
    }


def install_categories(engine: Engine, city: City) -> int:
    """Store the city's incident category catalogue (``city.categories``, else the shipped
    one; ``GEOGRID_CATEGORIES`` overrides the shipped one) in the database, inserting or
    updating by code. Returns the number of categories."""
    cats = load_categories(city.categories)
    save_categories(engine, cats)
    return len(cats)
