"""Folium maps for leaders and analysts: choropleths of unit metrics, incident heat maps,
Gi* hot spots and clustered incident markers, composed by :func:`leader_map`.

Everything is drawn in EPSG:4326 (Web Mercator display), with no basemap unless one is asked
for (``tiles``). :func:`save_map` / :func:`offline_html` inline Leaflet and folium's other
JavaScript and CSS from ``geogrid/data/folium_assets`` (vendored), so a saved map is one
self-contained file that opens with no network. Maps stay light enough to
open in a browser: unit polygons are simplified (``simplify_m``, default ≈10 m) and their
coordinates rounded to 1e-5° (≈1 m); the heat map is drawn from points aggregated onto a
lattice (never more than ``max_points`` weighted cells); markers are capped at
``max_markers`` (a deterministic random sample beyond that, said in the layer's name).
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import branca.colormap as cm
import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement, Template
from folium import plugins

from geogrid.core.metric_catalogue import METRICS
from geogrid.errors import InvalidInput

__all__ = [
    "DROPPED_ASSETS",
    "OfflineView",
    "HOTSPOT_COLOURS",
    "HOTSPOT_LABELS",
    "add_legend",
    "aggregate_points",
    "choropleth",
    "heatmap_layer",
    "hotspot_layer",
    "incident_markers",
    "leader_map",
    "offline_html",
    "offline_view",
    "save_map",
    "VENDORED_ASSETS",
]

#: ArcGIS-style Gi* class colours (hot = reds, cold = blues)
HOTSPOT_COLOURS = {
    "hot_99": "#d62f27",
    "hot_95": "#ed7551",
    "hot_90": "#fab984",
    "not_significant": "#eeeeee",
    "cold_90": "#c0d8ea",
    "cold_95": "#7fa8d0",
    "cold_99": "#4575b5",
}
HOTSPOT_LABELS = {
    "hot_99": "Hot spot, 99% confidence",
    "hot_95": "Hot spot, 95% confidence",
    "hot_90": "Hot spot, 90% confidence",
    "not_significant": "Not significant",
    "cold_90": "Cold spot, 90% confidence",
    "cold_95": "Cold spot, 95% confidence",
    "cold_99": "Cold spot, 99% confidence",
}
_SEQUENTIAL = ["#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026", "#800026"]
_NO_DATA = "#bdbdbd"
_DEG_PER_M = 1.0 / 111_320.0
_MAX_ZOOM = 19
_TOOLTIP_EXTRA = (
    "incidents",
    "open_backlog",
    "overdue",
    "per_1000_residents",
    "load_index",
    "workers",
)


#: the last path segment of a CDN address folium/branca load → the vendored file in
#: ``geogrid/data/folium_assets`` (see its README for versions and licences)
VENDORED_ASSETS = {
    "leaflet.js": "leaflet.js",
    "leaflet.css": "leaflet.css",
    "jquery-3.7.1.min.js": "jquery.min.js",
    "bootstrap.bundle.min.js": "bootstrap.bundle.min.js",
    "bootstrap.min.css": "bootstrap.min.css",
    "leaflet.awesome-markers.js": "leaflet.awesome-markers.js",
    "leaflet.awesome-markers.css": "leaflet.awesome-markers.css",
    "leaflet.markercluster.js": "leaflet.markercluster.js",
    "MarkerCluster.css": "MarkerCluster.css",
    "MarkerCluster.Default.css": "MarkerCluster.Default.css",
    "leaflet_heat.min.js": "leaflet_heat.min.js",
    "d3.min.js": "d3.min.js",
}
#: addresses left out of offline maps: icon fonts used only by ``folium.Icon`` markers
DROPPED_ASSETS = {
    "all.min.css": "Font Awesome icon font (folium.Icon markers only)",
    "bootstrap-glyphicons.css": "Bootstrap 3 glyphicons (folium.Icon markers only)",
    "leaflet.awesome.rotate.min.css": "rotation of folium.Icon markers",
}
_ASSETS = resources.files("geogrid") / "data" / "folium_assets"
_SCRIPT = re.compile(r'<script\s+src="(https?:)?//[^"]*?/([^/"]+)"\s*>\s*</script>')
_STYLESHEET = re.compile(r'<link\s+rel="stylesheet"\s+href="(https?:)?//[^"]*?/([^/"]+)"\s*/?>')


def _data_uri(image: str) -> str:
    data = (_ASSETS / "images" / image).read_bytes()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _asset(name: str) -> str:
    text = (_ASSETS / VENDORED_ASSETS[name]).read_text(encoding="utf-8")
    if name == "leaflet.js":
        # the default marker icon from data URIs (Leaflet would look for images/*.png
        # next to the page)
        icons = {
            "iconUrl": _data_uri("marker-icon.png"),
            "iconRetinaUrl": _data_uri("marker-icon-2x.png"),
            "shadowUrl": _data_uri("marker-shadow.png"),
        }
        text += (
            f"\nL.Icon.Default.imagePath = '';\nL.Icon.Default.mergeOptions({json.dumps(icons)});\n"
        )
    return text


def _inline_script(match: re.Match[str]) -> str:
    name = match.group(2)
    if name in DROPPED_ASSETS:
        return ""
    if name not in VENDORED_ASSETS:
        return match.group(0)
    # "</script" inside the code would end the element early; "<\/" is the same in JS
    return "<script>" + _asset(name).replace("</script", "<\\/script") + "</script>"


def _inline_stylesheet(match: re.Match[str]) -> str:
    name = match.group(2)
    if name in DROPPED_ASSETS:
        return ""
    if name not in VENDORED_ASSETS:
        return match.group(0)
    return "<style>" + _asset(name) + "</style>"


def offline_html(m: folium.Map) -> str:
    """The map as one self-contained HTML document: every script and stylesheet folium and
    branca load from a CDN is inlined from the vendored copies (``geogrid/data/folium_assets``),
    icon-font stylesheets only ``folium.Icon`` needs are dropped (:data:`DROPPED_ASSETS`).

    Addresses with no vendored file (a plugin geogrid does not use) are left as they are; a
    tile layer, when the map has one, still needs the network.

    >>> page = offline_html(folium.Map(tiles=None))
    >>> "cdn.jsdelivr.net" in page, "L.map(" in page
    (False, True)
    """
    page = m.get_root().render()
    page = _SCRIPT.sub(_inline_script, page)
    return _STYLESHEET.sub(_inline_stylesheet, page)


def save_map(m: folium.Map, path: str | Path) -> Path:
    """Write :func:`offline_html` of ``m`` to ``path`` (UTF-8); returns the path."""
    out = Path(path)
    out.write_text(offline_html(m), encoding="utf-8")
    return out


class OfflineView:
    """A map shown in a notebook from :func:`offline_html` (an ``<iframe srcdoc>``, as
    folium's own view, but with nothing loaded from the network)."""

    def __init__(self, m: folium.Map, height_px: int = 520):
        self.map = m
        self.height_px = height_px

    def _repr_html_(self) -> str:
        page = html.escape(offline_html(self.map), quote=True)
        return (
            f'<iframe srcdoc="{page}" style="width:100%;height:{self.height_px}px;'
            'border:none" allowfullscreen></iframe>'
        )


def offline_view(m: folium.Map, height_px: int = 520) -> OfflineView:
    """Show ``m`` in a notebook (the cell's last expression) with no network: Leaflet and
    the rest are inlined (:func:`offline_html`). ``height_px``: the frame's height.

    >>> "srcdoc=" in offline_view(folium.Map(tiles=None))._repr_html_()
    True
    """
    return OfflineView(m, height_px)


def _display_geometry(geoms: Any, simplify_m: float | None) -> np.ndarray:
    g = np.asarray(gpd.GeoSeries(geoms).values, dtype=object)
    if simplify_m:
        g = shapely.simplify(g, simplify_m * _DEG_PER_M, preserve_topology=True)
    return shapely.set_precision(g, 1e-5)


def _geojson(gdf: gpd.GeoDataFrame, columns: Sequence[str], simplify_m: float | None) -> dict:
    """A FeatureCollection dict with the columns as properties (NaN → null, floats
    rounded to 4 significant decimals)."""
    props = pd.DataFrame(gdf[list(columns)]).copy()
    for c in props.columns:
        if pd.api.types.is_float_dtype(props[c]):
            props[c] = props[c].round(4)
        elif not pd.api.types.is_numeric_dtype(props[c]):
            props[c] = (
                props[c]
                .astype(object)
                .where(props[c].notna(), None)
                .map(lambda v: v if v is None else str(v))
            )
    out = gpd.GeoDataFrame(
        props, geometry=_display_geometry(gdf.geometry.values, simplify_m), crs="EPSG:4326"
    )
    return json.loads(out.to_json(na="null", drop_id=True))


def _class_edges(values: np.ndarray, k: int) -> list[float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return [0.0, 1.0]
    edges = np.unique(np.quantile(v, np.linspace(0, 1, k + 1)))
    if edges.size < 2:
        edges = np.array([edges[0], edges[0] + 1.0])
    return [float(e) for e in edges]


def add_legend(m, title: str, items: Iterable[tuple[str, str]], *, position: str = "bottomleft"):
    """Add an HTML legend (``items`` = (colour, label) pairs) to a folium Map."""

    corner = {
        "bottomleft": "bottom: 28px; left: 10px;",
        "bottomright": "bottom: 28px; right: 10px;",
        "topleft": "top: 80px; left: 10px;",
    }[position]
    rows = "".join(
        f'<div><span style="display:inline-block;width:14px;height:14px;margin-right:6px;'
        f'background:{html.escape(c)};border:1px solid #777"></span>{html.escape(label)}</div>'
        for c, label in items
    )
    body = (
        f'<div class="geogrid-legend" style="position: fixed; {corner} z-index: 9999; '
        "background: rgba(255,255,255,0.9); padding: 6px 10px; font: 12px sans-serif; "
        f'border-radius: 4px; box-shadow: 0 0 4px #888"><b>{html.escape(title)}</b>'
        f"{rows}</div>"
    )
    macro = MacroElement()
    macro._template = Template("{% macro html(this, kwargs) %}" + body + "{% endmacro %}")
    m.get_root().add_child(macro)
    return m


def choropleth(
    metrics_gdf: gpd.GeoDataFrame,
    metric: str,
    *,
    m=None,
    name: str | None = None,
    classes: int = 6,
    tooltip_columns: Sequence[str] | None = None,
    simplify_m: float | None = 10.0,
    fill_opacity: float = 0.7,
    legend: bool = True,
):
    """A choropleth of one metric over units (quantile classes, yellow → dark red).

    Parameters
    ----------
    metrics_gdf : GeoDataFrame (EPSG:4326), e.g. from :func:`geogrid.services.metrics.load_metrics`
    metric : the column to colour by (numeric)
    m : folium.Map, optional
        The map to add to (default: a new one fitted to the units).
    classes : number of quantile classes (fewer when values repeat)
    tooltip_columns : shown on hover (default: name, code, the metric and a few counts)
    simplify_m : simplification tolerance in metres (None: full geometry)
    legend : add the colour scale (a branca colour map) to the map

    Returns
    -------
    folium.Map with a ``folium.GeoJson`` layer named ``name`` (default: the metric); units
    without a value are grey.
    """

    if metric not in metrics_gdf.columns or not pd.api.types.is_numeric_dtype(metrics_gdf[metric]):
        numeric = [
            c
            for c in metrics_gdf.columns
            if c != "geometry" and pd.api.types.is_numeric_dtype(metrics_gdf[c])
        ]
        raise InvalidInput("metric", metric, "a numeric column: " + ", ".join(numeric))
    gdf = (
        metrics_gdf.to_crs("EPSG:4326")
        if metrics_gdf.crs and metrics_gdf.crs.to_epsg() != 4326
        else metrics_gdf
    )
    if m is None:
        m = _new_map(gdf.total_bounds)
    values = gdf[metric].to_numpy(dtype=float)
    edges = _class_edges(values, classes)
    colours = _SEQUENTIAL[: len(edges) - 1] if len(edges) - 1 <= len(_SEQUENTIAL) else None
    cmap = cm.StepColormap(
        colours or _SEQUENTIAL, index=edges, vmin=edges[0], vmax=edges[-1], caption=_caption(metric)
    )
    if tooltip_columns is None:
        tooltip_columns = [c for c in ("name", "code", metric, *_TOOLTIP_EXTRA) if c in gdf.columns]
        tooltip_columns = list(dict.fromkeys(tooltip_columns))
    data = _geojson(gdf, tooltip_columns, simplify_m)

    def style(feature: dict) -> dict:
        v = feature["properties"].get(metric)
        colour = _NO_DATA if v is None or not np.isfinite(v) else cmap(v)
        return {"fillColor": colour, "color": "#555555", "weight": 0.3, "fillOpacity": fill_opacity}

    layer = folium.GeoJson(
        data,
        name=name or _caption(metric),
        style_function=style,
        highlight_function=lambda f: {"weight": 2, "color": "#000000"},
        tooltip=folium.GeoJsonTooltip(
            fields=list(tooltip_columns),
            aliases=[_alias(c) for c in tooltip_columns],
            localize=True,
            sticky=False,
        ),
        smooth_factor=0.5,
    )
    layer.add_to(m)
    if legend:
        cmap.add_to(m)
    return m


def aggregate_points(
    lon: Any,
    lat: Any,
    weight: Any = None,
    *,
    cell_deg: float = 0.002,
    max_points: int = 5000,
) -> pd.DataFrame:
    """Sum point weights on a lon/lat lattice, coarsening the cell (×2) until at most
    ``max_points`` non-empty cells remain.

    Returns a DataFrame lon, lat (cell centres, WGS84 degrees), weight.

    >>> aggregate_points([110.0001, 110.0003, 110.5], [22.0001, 22.0002, 22.5]).weight.tolist()
    [2.0, 1.0]
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    w = np.ones(lon.size) if weight is None else np.asarray(weight, dtype=float)
    ok = np.isfinite(lon) & np.isfinite(lat) & np.isfinite(w)
    lon, lat, w = lon[ok], lat[ok], w[ok]
    if max_points < 1:
        raise InvalidInput("max_points", max_points, "a positive number of cells")
    if lon.size == 0:
        return pd.DataFrame({"lon": [], "lat": [], "weight": []})
    cell = float(cell_deg)
    while True:
        ix = np.floor(lon / cell).astype(np.int64)
        iy = np.floor(lat / cell).astype(np.int64)
        sums = pd.Series(w).groupby([ix, iy]).sum()
        if len(sums) <= max_points:
            break
        cell *= 2.0
    gx = sums.index.get_level_values(0).to_numpy()
    gy = sums.index.get_level_values(1).to_numpy()
    return pd.DataFrame(
        {"lon": (gx + 0.5) * cell, "lat": (gy + 0.5) * cell, "weight": sums.to_numpy(dtype=float)}
    )


def _lonlat(points: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(points, gpd.GeoDataFrame | gpd.GeoSeries):
        g = points.to_crs("EPSG:4326").geometry if points.crs is not None else points.geometry
        return g.x.to_numpy(), g.y.to_numpy()
    if isinstance(points, pd.DataFrame) and {"lon", "lat"} <= set(points.columns):
        return points["lon"].to_numpy(float), points["lat"].to_numpy(float)
    raise InvalidInput(
        "points",
        type(points).__name__,
        "a DataFrame with lon/lat columns (WGS84) or a point GeoDataFrame",
    )


def heatmap_layer(
    points: Any,
    *,
    weight: str | None = None,
    name: str = "Incident density",
    max_points: int = 5000,
    cell_deg: float = 0.002,
    radius: int = 14,
    blur: int = 18,
    show: bool = True,
):
    """A ``folium.plugins.HeatMap`` of points aggregated on a lattice (never the raw points).

    ``points``: DataFrame with ``lon``/``lat`` (WGS84) or a point GeoDataFrame; ``weight``
    an optional column. Points are summed into cells of ``cell_deg`` degrees (≈200 m),
    coarsened until at most ``max_points`` cells; intensities are scaled to 0–1.
    Returns a ``folium.FeatureGroup`` (add it to a map).
    """
    lon, lat = _lonlat(points)
    w = points[weight].to_numpy(float) if weight else None
    cells = aggregate_points(lon, lat, w, cell_deg=cell_deg, max_points=max_points)
    group = folium.FeatureGroup(name=name, show=show)
    if len(cells):
        top = float(np.quantile(cells["weight"], 0.99)) or 1.0
        data = np.column_stack(
            [
                cells["lat"].round(5),
                cells["lon"].round(5),
                np.minimum(cells["weight"] / top, 1.0).round(3),
            ]
        ).tolist()
        plugins.HeatMap(
            data, radius=radius, blur=blur, min_opacity=0.3, max_zoom=16, name=name
        ).add_to(group)
    return group


def hotspot_layer(
    gi_result: Any,
    grids: gpd.GeoDataFrame,
    *,
    name: str = "Hot spots (Gi*)",
    include_not_significant: bool = False,
    simplify_m: float | None = 10.0,
    show: bool = True,
):
    """Units coloured by Gi* class (``hot_99`` … ``cold_99``, see :data:`HOTSPOT_COLOURS`).

    Parameters
    ----------
    gi_result : :class:`geogrid.core.hotspots.GiStar`, or a DataFrame with a ``class`` column
        (e.g. :func:`geogrid.services.metrics.unit_hotspots`); with a ``code`` column it is matched
        to ``grids`` by code, otherwise by row order.
    grids : GeoDataFrame of the units (``code``, ``name``, geometry)
    include_not_significant : also draw the units that are not significant (light grey)

    Returns a ``folium.FeatureGroup``.
    """
    if hasattr(gi_result, "classes") and hasattr(gi_result, "Zs"):
        frame = pd.DataFrame(
            {"class": np.asarray(gi_result.classes, dtype=object), "z": gi_result.Zs}
        )
        aligned = frame.reset_index(drop=True)
    elif isinstance(gi_result, pd.DataFrame) and "class" in gi_result.columns:
        frame = gi_result
        if "code" in frame.columns and "code" in grids.columns:
            aligned = frame.set_index("code").reindex(grids["code"]).reset_index(drop=True)
        else:
            aligned = frame.reset_index(drop=True)
    else:
        raise InvalidInput(
            "gi_result", type(gi_result).__name__, "a GiStar or a DataFrame with a 'class' column"
        )
    if len(aligned) != len(grids):
        raise InvalidInput("gi_result", len(aligned), f"{len(grids)} rows, one per unit")
    g = grids.reset_index(drop=True)
    cls = aligned["class"].astype(object).where(aligned["class"].notna(), "not_significant")
    data = gpd.GeoDataFrame(
        {
            "name": g["name"].astype(str) if "name" in g else "",
            "code": g["code"].astype(str) if "code" in g else g.index.astype(str),
            "class": cls.astype(str).to_numpy(),
            "label": cls.map(HOTSPOT_LABELS).fillna(cls).to_numpy(),
            "z": pd.to_numeric(
                aligned.get("z", pd.Series(np.nan, index=aligned.index)), errors="coerce"
            )
            .round(2)
            .to_numpy(),
        },
        geometry=g.geometry.values,
        crs=grids.crs or "EPSG:4326",
    )
    if not include_not_significant:
        data = data[data["class"] != "not_significant"]
    group = folium.FeatureGroup(name=name, show=show)
    if len(data):
        fc = _geojson(data, ["name", "code", "class", "label", "z"], simplify_m)
        folium.GeoJson(
            fc,
            name=name,
            style_function=lambda f: {
                "fillColor": HOTSPOT_COLOURS.get(f["properties"]["class"], _NO_DATA),
                "color": "#444444",
                "weight": 0.4,
                "fillOpacity": 0.75,
            },
            tooltip=folium.GeoJsonTooltip(
                fields=["name", "code", "label", "z"], aliases=["Name", "Code", "Gi*", "z"]
            ),
        ).add_to(group)
    return group


def incident_markers(
    points: pd.DataFrame,
    *,
    max_markers: int = 5000,
    seed: int = 0,
    name: str = "Incidents",
    label_columns: Sequence[str] = ("category", "status", "reported_at"),
    show: bool = False,
):
    """Clustered incident markers (``folium.plugins.FastMarkerCluster``), at most
    ``max_markers`` of them: beyond that a deterministic random sample (the layer's name
    says "sample of n of N"). ``points``: DataFrame with ``lon``/``lat`` (WGS84).
    """
    if max_markers < 1:
        raise InvalidInput("max_markers", max_markers, "a positive number")
    lon, lat = _lonlat(points)
    df = pd.DataFrame({"lon": lon, "lat": lat})
    labels = [c for c in label_columns if c in points.columns]
    for c in labels:
        v = points[c]
        if pd.api.types.is_datetime64_any_dtype(v):
            v = v.dt.strftime("%Y-%m-%d %H:%M")
        df[c] = v.astype(str).to_numpy()
    df = df[np.isfinite(df["lon"]) & np.isfinite(df["lat"])]
    total = len(df)
    if total > max_markers:
        df = df.sample(n=max_markers, random_state=seed).sort_index()
        name = f"{name} (sample of {max_markers:,} of {total:,})"
    text = df[labels].agg(" · ".join, axis=1) if labels else pd.Series("", index=df.index)
    data = [
        [round(a, 6), round(b, 6), html.escape(t)]
        for a, b, t in zip(df["lat"], df["lon"], text, strict=True)
    ]
    callback = (
        "function (row) {var marker = L.marker(new L.LatLng(row[0], row[1]));"
        "marker.bindPopup(row[2]); return marker;}"
    )
    return plugins.FastMarkerCluster(data, callback=callback, name=name, show=show)


def _new_map(
    bounds: Sequence[float] | None = None,
    tiles: str | None = None,
    *,
    center: tuple[float, float] | None = None,
    zoom: float | None = None,
) -> folium.Map:
    """A map fitted to ``bounds`` (lon/lat, EPSG:4326) when they are finite, else centred
    on ``center`` (lon, lat) at ``zoom``."""
    lon, lat = center if center is not None else (0.0, 0.0)
    m = folium.Map(
        location=[lat, lon],
        zoom_start=round(zoom) if zoom is not None else (9 if center is not None else 2),
        tiles=tiles,
        # a tile URL template needs an attribution; named basemaps bring their own
        attr=tiles if tiles is not None and "{" in tiles else None,
        control_scale=True,
        # without a tile layer Leaflet has no zoom range (marker clusters need one)
        maxZoom=_MAX_ZOOM,
    )
    if bounds is not None and np.all(np.isfinite(bounds)):
        x0, y0, x1, y1 = (float(b) for b in bounds)
        m.fit_bounds([[y0, x0], [y1, x1]])
    return m


def _caption(metric: str) -> str:
    return METRICS.get(metric, metric)


def _alias(column: str) -> str:
    return {"name": "Name", "code": "Code"}.get(column, column.replace("_", " "))


def leader_map(
    metrics_gdf: gpd.GeoDataFrame,
    metric: str = "incidents",
    *,
    incidents: pd.DataFrame | None = None,
    hotspots: pd.DataFrame | None = None,
    max_markers: int = 5000,
    heat: bool = True,
    markers: bool = True,
    tiles: str | None = None,
    center: tuple[float, float] | None = None,
    zoom: float | None = None,
) -> folium.Map:
    """The leader's map from frames: a choropleth of ``metric`` per unit, an incident heat
    map, Gi* hot spots of the metric, clustered incident markers (capped), legends, a title
    and a layer control.

    Parameters
    ----------
    metrics_gdf : GeoDataFrame (EPSG:4326)
        Unit metrics (:func:`geogrid.services.metrics.load_metrics`); its ``attrs`` (level,
        start, end, categories) make the title when present.
    metric : str
        The column to colour by.
    incidents : DataFrame, optional
        lon, lat (WGS84 degrees) and optionally category, status, reported_at: the heat map
        (``heat``) and the markers (``markers``). None: neither.
    hotspots : DataFrame, optional
        Gi* result (:func:`geogrid.services.metrics.hotspots_of`) aligned with
        ``metrics_gdf``. None: no hot-spot layer.
    max_markers : int
        At most this many markers (a deterministic sample beyond that).
    tiles : str, optional
        A folium basemap (a name such as ``"OpenStreetMap"`` or a tile URL template); None
        (default): no basemap, so the map needs no network.
    center, zoom : optional
        Map view (lon, lat and Web Mercator zoom) when the units have no extent.

    Returns
    -------
    folium.Map (``m.save("map.html")``); :func:`geogrid.services.maps.leader_map` reads the
    frames from a database.
    """
    mt = metrics_gdf
    level = str(mt.attrs.get("level", mt["level"].iloc[0] if len(mt) else ""))
    m = _new_map(mt.total_bounds if len(mt) else None, tiles, center=center, zoom=zoom)
    choropleth(mt, metric, m=m, name=f"{level}: {metric}")
    if heat and incidents is not None:
        heatmap_layer(incidents, name="Incident density").add_to(m)
    if hotspots is not None:
        hotspot_layer(hotspots, mt, name=f"Hot spots of {metric} (Gi*, FDR)").add_to(m)
        present = [
            c for c in HOTSPOT_COLOURS if c in set(hotspots["class"]) and c != "not_significant"
        ] or ["not_significant"]
        add_legend(m, "Hot spots (Gi*)", [(HOTSPOT_COLOURS[c], HOTSPOT_LABELS[c]) for c in present])
    if markers and incidents is not None:
        incident_markers(incidents, max_markers=max_markers).add_to(m)
    categories = mt.attrs.get("categories")
    cats = ", ".join(categories) if categories else "all categories"
    window = ""
    if "start" in mt.attrs and "end" in mt.attrs:
        window = f" · {str(mt.attrs['start'])[:10]} – {str(mt.attrs['end'])[:10]}"
    title = f"{metric.replace('_', ' ')} by {level}{window} · {cats}"
    root: Any = m.get_root()  # a branca Figure (typed as Element)
    root.html.add_child(
        folium.Element(
            '<div class="geogrid-title" style="position: fixed; top: 10px; left: 60px; '
            "z-index: 9999; background: rgba(255,255,255,0.9); padding: 4px 10px; "
            f'font: bold 14px sans-serif; border-radius: 4px">{html.escape(title)}</div>'
        )
    )
    folium.LayerControl(collapsed=False).add_to(m)
    return m
