"""The leader's map from a database: read the metrics, incidents and hot spots of a window
and draw them with :func:`geogrid.core.maps.leader_map` (pure, over frames)."""

from __future__ import annotations

from typing import Any

import folium
from sqlalchemy import Connection, Engine

from geogrid.core import maps
from geogrid.services import metrics as gm
from geogrid.services.unitcache import UnitCache
from geogrid.settings import get_settings

__all__ = ["MARKER_COLUMNS", "leader_map"]

#: the incident columns the heat map and the markers need
MARKER_COLUMNS = ["lon", "lat", "category", "status", "reported_at"]


def leader_map(
    engine: Engine | Connection,
    level: str = "grid",
    metric: str = "incidents",
    start: Any = None,
    end: Any = None,
    categories: Any = None,
    *,
    now: Any = None,
    version: int | None = None,
    heat: bool = True,
    hotspots: bool = True,
    markers: bool = True,
    max_markers: int = 5000,
    tiles: str | None = None,
    tz: str | None = None,
    cache: UnitCache | None = None,
) -> folium.Map:
    """The leader's map of a window: a choropleth of ``metric`` per unit of ``level``, an
    incident heat map, Gi* hot spots of the metric and clustered incident markers (capped).

    Parameters
    ----------
    engine, level, start, end, categories, now, version, tz, cache
        As :func:`geogrid.services.metrics.load_metrics`.
    metric : str
        A metric of :data:`geogrid.core.metric_catalogue.METRICS`.
    heat, hotspots, markers : bool
        Which layers to draw.
    max_markers : int
        At most this many markers.
    tiles : str, optional
        A folium basemap (name or tile URL template); None (default): no basemap, so the
        saved map (:func:`geogrid.core.maps.save_map`) opens with no network.

    Returns
    -------
    folium.Map (``geogrid.core.maps.save_map(m, "map.html")`` writes it self-contained).
    """
    city = get_settings().city
    cache = cache if cache is not None else UnitCache()
    tz = tz or city.timezone
    mt = gm.load_metrics(
        engine,
        level,
        start=start,
        end=end,
        categories=categories,
        version=version,
        now=now,
        tz=tz,
        cache=cache,
    )
    pts = None
    if heat or markers:
        pts = gm.incident_frame(
            engine,
            mt.attrs["start"],
            mt.attrs["end"],
            mt.attrs["categories"],
            columns=MARKER_COLUMNS,
            version=version,
            now=now,
            tz=tz,
            cache=cache,
        )
    gi = gm.hotspots_of(engine, mt, metric, cache=cache) if hotspots else None
    return maps.leader_map(
        mt,
        metric,
        incidents=pts,
        hotspots=gi,
        max_markers=max_markers,
        heat=heat,
        markers=markers,
        tiles=tiles,
        center=city.center,
        zoom=city.zoom,
    )
