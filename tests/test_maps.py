"""geogrid.core.maps: the layers asked for are in the HTML, nothing unbounded is embedded,
and a saved map opens in headless Chromium with every network request refused (Leaflet and
folium's other JS/CSS inlined from geogrid/data/folium_assets, no basemap by default)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely import box

from geogrid.core import maps
from geogrid.errors import InvalidInput
from geogrid.services import metrics
from geogrid.services.context import AppContext
from geogrid.services.maps import leader_map


def _units(n: int = 4) -> gpd.GeoDataFrame:
    geoms = [box(110.1 + 0.01 * i, 22.6, 110.11 + 0.01 * i, 22.61) for i in range(n)]
    return gpd.GeoDataFrame(
        {
            "code": [f"450902001001{i:03d}" for i in range(1, n + 1)],
            "name": [f"网格{i}" for i in range(1, n + 1)],
            "level": "grid",
            "incidents": np.arange(n) * 3,
            "per_1000_residents": [1.5, np.nan, 2.25, 0.0][:n],
            "load_index": np.linspace(50, 150, n),
        },
        geometry=geoms,
        crs="EPSG:4326",
    )


CHROMIUM = "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing")


def _html(m) -> str:
    return m.get_root().render()


def _open_offline(path: Path) -> dict:
    """Open a saved map in headless Chromium with the network off (every request but the
    file itself aborted): what was drawn, what was asked for, what went wrong."""
    playwright = pytest.importorskip("playwright.sync_api")
    requests: list[str] = []
    errors: list[str] = []

    def _route(route) -> None:
        url = route.request.url
        requests.append(url)
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            route.abort()

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(offline=True, viewport={"width": 1200, "height": 800})
            context.route("**/*", _route)
            page = context.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(path.as_uri())
            page.wait_for_function("() => document.querySelectorAll('svg path').length > 0")
            page.wait_for_timeout(300)
            seen = page.evaluate(
                """() => ({
                  paths: document.querySelectorAll('.leaflet-overlay-pane svg path').length,
                  scale: document.querySelectorAll('.legend svg rect').length,
                  legend: Array.from(document.querySelectorAll('.geogrid-legend'))
                    .map((e) => e.innerText).join(' '),
                  tiles: document.querySelectorAll('img.leaflet-tile').length,
                  leaflet: typeof window.L,
                })"""
            )
        finally:
            browser.close()
    seen["errors"] = errors
    seen["outside"] = [u for u in requests if not u.startswith(("file:", "data:"))]
    return seen


def _assert_drawn_offline(seen: dict) -> None:
    assert seen["leaflet"] == "object", seen
    assert seen["paths"] > 0, seen  # the unit polygons, as SVG paths
    assert seen["scale"] > 0, seen  # branca's colour scale (d3, inlined)
    assert seen["tiles"] == 0 and not seen["outside"], seen  # no basemap, nothing fetched
    assert not seen["errors"], seen["errors"]  # e.g. "L is not defined"


def test_saved_map_is_self_contained(tmp_path):
    g = _units()
    pts = pd.DataFrame({"lon": [110.105, 110.115, 110.125], "lat": [22.605, 22.605, 22.605]})
    gi = pd.DataFrame({"code": g["code"], "class": ["hot_99", "not_significant"] * 2})
    m = maps.leader_map(g, "incidents", incidents=pts, hotspots=gi)
    path = maps.save_map(m, tmp_path / "map.html")
    page = path.read_text(encoding="utf-8")
    assert not re.findall(r'<(?:script|link)[^>]+(?:src|href)="(?:https?:)?//', page)
    assert "tile.openstreetmap.org" not in page  # no basemap unless asked for
    assert "L.Icon.Default.mergeOptions" in page  # marker icons from data URIs
    assert "<\\/script" not in page.split("L.map(")[1]  # only the inlined code is escaped
    with_basemap = maps.offline_html(maps.leader_map(g, "incidents", tiles="OpenStreetMap"))
    assert "tile.openstreetmap.org" in with_basemap


def test_vendored_assets_cover_folium():
    """Every CDN address folium and its plugins load has a vendored file or is dropped on
    purpose (a folium upgrade that asks for a new file fails here)."""
    wanted = [*folium.folium._default_js, *folium.folium._default_css]
    for plugin in (folium.plugins.MarkerCluster, folium.plugins.HeatMap):
        wanted += [*plugin.default_js, *getattr(plugin, "default_css", [])]
    for _, url in wanted:
        name = url.rsplit("/", 1)[-1]
        assert name in maps.VENDORED_ASSETS or name in maps.DROPPED_ASSETS, url
    assets = Path(maps.__file__).resolve().parent.parent / "data" / "folium_assets"
    for file in maps.VENDORED_ASSETS.values():
        assert (assets / file).stat().st_size > 0, file
    assert (assets / "README.md").exists() and (assets / "LICENSES.txt").exists()


@pytest.mark.browser
@needs_chromium
def test_saved_map_draws_offline_in_chromium(tmp_path):
    g = _units()
    gi = pd.DataFrame({"code": g["code"], "class": ["hot_99", "not_significant"] * 2})
    pts = pd.DataFrame({"lon": [110.105, 110.125], "lat": [22.605, 22.605]})
    m = maps.leader_map(g, "incidents", hotspots=gi, incidents=pts)
    seen = _open_offline(maps.save_map(m, tmp_path / "map.html"))
    _assert_drawn_offline(seen)
    assert seen["paths"] >= len(g) and "Hot spot, 99% confidence" in seen["legend"]


def test_choropleth_has_geojson_tooltip_and_legend():
    m = maps.choropleth(_units(), "per_1000_residents")
    out = _html(m)
    assert "L.geoJson(" in out or "geo_json" in out
    assert "GeoJsonTooltip" in out or "bindTooltip" in out
    assert ("网格2" in out or json.dumps("网格2")[1:-1] in out) and "450902001001003" in out
    assert "legend" in out  # branca colour scale
    assert "#bdbdbd" in out  # the unit without a value is grey
    with pytest.raises(InvalidInput, match="metric"):
        maps.choropleth(_units(), "name")


def test_aggregate_points_caps_cells():
    rng = np.random.default_rng(1)
    lon = 110.15 + rng.normal(0, 0.2, 50_000)
    lat = 22.63 + rng.normal(0, 0.2, 50_000)
    cells = maps.aggregate_points(lon, lat, max_points=500)
    assert len(cells) <= 500
    assert cells["weight"].sum() == pytest.approx(50_000)


def test_heatmap_layer_embeds_aggregated_cells_only():
    rng = np.random.default_rng(2)
    pts = pd.DataFrame(
        {"lon": 110.15 + rng.normal(0, 0.1, 40_000), "lat": 22.63 + rng.normal(0, 0.1, 40_000)}
    )
    m = folium.Map()
    maps.heatmap_layer(pts, max_points=300).add_to(m)
    out = _html(m)
    assert "heatLayer" in out
    assert out.count("],") < 2_000  # ≤ 300 weighted cells, not 40,000 points


def test_incident_markers_capped_and_sampled():
    pts = pd.DataFrame(
        {
            "lon": np.linspace(110.0, 110.3, 8000),
            "lat": np.linspace(22.5, 22.7, 8000),
            "category": "sanitation",
            "reported_at": pd.Timestamp("2026-05-01", tz="UTC"),
        }
    )
    layer = maps.incident_markers(pts, max_markers=1000)
    assert "sample of 1,000 of 8,000" in layer.layer_name
    m = folium.Map()
    layer.add_to(m)
    out = _html(m)
    assert "markerClusterGroup" in out
    assert out.count("sanitation") == 1000


def test_hotspot_layer_colours_classes():
    g = _units()
    gi = pd.DataFrame(
        {
            "code": g["code"],
            "class": ["hot_99", "not_significant", "cold_95", "hot_90"],
            "z": [3.1, 0.1, -2.0, 1.7],
        }
    )
    m = folium.Map()
    maps.hotspot_layer(gi, g).add_to(m)
    maps.add_legend(
        m,
        "Hot spots",
        [(maps.HOTSPOT_COLOURS[c], maps.HOTSPOT_LABELS[c]) for c in ("hot_99", "cold_95")],
    )
    out = _html(m)
    for c in ("hot_99", "cold_95", "hot_90"):
        assert maps.HOTSPOT_COLOURS[c] in out
    assert "geogrid-legend" in out and "Hot spot, 99% confidence" in out
    assert "450902001001002" not in out  # not significant: not drawn by default
    with pytest.raises(InvalidInput, match="gi_result"):
        maps.hotspot_layer(gi.iloc[:2].drop(columns="code"), g)


def test_leader_map_from_frames_is_pure():
    """The core draws what it is given: no hot-spot or marker layer without their frames."""
    g = _units()
    g.attrs.update(level="grid", start="2026-05-01T00:00:00+08:00", end="2026-06-01")
    pts = pd.DataFrame({"lon": [110.105, 110.115], "lat": [22.605, 22.605]})
    out = _html(maps.leader_map(g, "load_index", incidents=pts, markers=False))
    assert "heatLayer" in out and "markerClusterGroup" not in out
    assert "Hot spots of" not in out and "L.control.layers" in out
    assert "load index by grid · 2026-05-01 – 2026-06-01 · all categories" in out


def test_leader_map_on_the_demo(demo_db_url, tmp_path):
    ctx = AppContext.open(demo_db_url)
    _, last = metrics.incident_time_range(ctx.engine)
    end = last.normalize()
    start = end - pd.Timedelta(days=30)
    m = leader_map(
        ctx.engine, "grid", "incidents", start, end, now=end, max_markers=2000, cache=ctx.unit_cache
    )
    path = maps.save_map(m, tmp_path / "map.html")
    out = path.read_text(encoding="utf-8")
    assert "L.geoJson(" in out or "geo_json" in out  # the choropleth
    assert "heatLayer" in out  # heat map
    assert "Hot spots of incidents" in out  # Gi* layer
    assert "markerClusterGroup" in out and "sample of 2,000" in out  # capped markers
    assert "L.control.layers" in out  # LayerControl
    assert "geogrid-legend" in out and "legend" in out  # legends
    assert path.stat().st_size < 40_000_000


def test_geogrid_map_command(demo_db_url, tmp_path):
    """``geogrid map --out`` writes one file that draws in Chromium with the network off."""
    out = tmp_path / "community.html"
    env = {**os.environ, "GEOGRID_DATABASE_URL": demo_db_url}
    cli = Path(sys.executable).with_name("geogrid")
    res = subprocess.run(
        [
            str(cli),
            "map",
            "--metric",
            "per_1000_residents",
            "--level",
            "community",
            "--category",
            "sanitation",
            "--markers",
            "500",
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    html = out.read_text(encoding="utf-8")
    assert "community: per_1000_residents" in html and "L.control.layers" in html
    if Path(CHROMIUM).exists():
        _assert_drawn_offline(_open_offline(out))
    bad = subprocess.run(
        [str(cli), "map", "--level", "province", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "level" in bad.stderr
