"""The leaders' map as users meet it, in a real headless Chromium (Playwright) over the demo.

Names on the map (read back through the map's rendered features at city and grid zoom),
the Gi* legend apart from the choropleth's, incident clusters with their counts, the unit
search flying to a grid, the PNG and PDF export, and the phone-size layout (no element
over another). The API behind the search and the labels (``/units/search``,
``/units/labels``) is checked over HTTP. Screenshots go to ``artifacts/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from shapely.geometry import Point, shape

from tests.test_web import ARTIFACTS, CHROMIUM, Page, browser  # noqa: F401  (the browser fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]

GRID_NAME = "江滨社区第1网格"

LABELS_JS = """(layer) => window.geogrid.map.queryRenderedFeatures({ layers: [layer] })
  .map((f) => f.properties.name)"""

# the visible boxes of the page's elements (null for an element not shown)
BOXES_JS = """(sels) => sels.map((s) => {
  const e = document.querySelector(s);
  if (!e || e.hidden) return null;
  const st = getComputedStyle(e);
  if (st.display === 'none' || st.visibility === 'hidden') return null;
  const r = e.getBoundingClientRect();
  return r.width && r.height ? { s, x: r.left, y: r.top, w: r.width, h: r.height } : null;
})"""


@pytest.fixture
def web(browser, demo_server):  # noqa: F811  (the browser fixture imported above)
    p = Page(browser, demo_server)
    yield p
    p.close()


def _labels(web: Page, level: str) -> list[str]:
    web.page.wait_for_function(
        f"window.geogrid.map.queryRenderedFeatures({{ layers: ['label-{level}'] }}).length > 0",
        timeout=60_000,
    )
    return web.page.evaluate(LABELS_JS, f"label-{level}")


def _search_and_go(web: Page, text: str, code: str) -> None:
    web.page.fill("#search-input", text)
    web.page.wait_for_selector(f"#search-results li[data-code='{code}']", timeout=30_000)
    web.page.click(f"#search-results li[data-code='{code}']")
    web.page.wait_for_function(
        f"window.geogrid.S.selected && window.geogrid.S.selected.code === '{code}'"
    )
    web.settle()


def _overlap(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["w"] - 0.5
        and b["x"] < a["x"] + a["w"] - 0.5
        and a["y"] < b["y"] + b["h"] - 0.5
        and b["y"] < a["y"] + a["h"] - 0.5
    )


# ------------------------------------------------------------------ the API behind the page


def test_unit_search_by_name_and_code(demo_http):
    found = demo_http.get("/units/search", params={"q": GRID_NAME, "limit": 5}).json()
    assert found and found[0]["name"] == GRID_NAME and found[0]["level"] == "grid"
    top = found[0]
    assert len(top["parent_names"]) == 3 and len(top["parent_codes"]) == 3
    assert top["parent_codes"][-1] == top["code"][:12]
    assert top["parent_names"][-1] in GRID_NAME  # the grid is named after its community
    w, s, e, n = top["bbox"]
    assert w < e and s < n
    by_code = demo_http.get("/units/search", params={"q": top["code"][:6]}).json()
    assert by_code[0]["code"] == top["code"][:6] and by_code[0]["level"] == "district"
    assert all(
        u["code"].startswith(top["code"][:6]) or top["code"][:6] in u["name"] for u in by_code
    )
    districts = demo_http.get("/units/search", params={"q": "区", "limit": 50}).json()
    assert {u["level"] for u in districts} >= {"district"}
    assert demo_http.get("/units/search", params={"q": "no such unit"}).json() == []
    assert demo_http.get("/units/search", params={"q": " "}).status_code == 400
    assert demo_http.get("/units/search", params={"q": "玉", "limit": 0}).status_code == 400
    assert demo_http.get("/units/search", params={"q": "%"}).json() == []  # no wildcards


def test_unit_labels_are_one_point_per_unit_inside_it(demo_http):
    fc = demo_http.get("/units/labels", params={"level": "district"}).json()
    boundaries = demo_http.get("/boundaries/district").json()
    assert [f["properties"]["code"] for f in fc["features"]] == [
        f["properties"]["code"] for f in boundaries["features"]
    ]
    polygons = {f["properties"]["code"]: shape(f["geometry"]) for f in boundaries["features"]}
    for f in fc["features"]:
        assert f["geometry"]["type"] == "Point"
        assert polygons[f["properties"]["code"]].contains(Point(f["geometry"]["coordinates"]))
    community = demo_http.get("/units/search", params={"q": GRID_NAME}).json()[0]["parent_codes"][
        -1
    ]
    grids = demo_http.get("/units/labels", params={"level": "grid", "parent": community}).json()
    assert grids["features"] and all(
        f["properties"]["code"].startswith(community) for f in grids["features"]
    )
    assert demo_http.get("/units/labels", params={"level": "block"}).status_code == 400


def test_label_glyphs_are_served_from_our_own_files(demo_http):
    """Digits and Latin come from the SDF glyph ranges made from WenQuanYi Micro Hei
    (scripts/make_glyphs.py); the page asks for nothing elsewhere."""
    for start in (0, 8192, 12288, 65280):
        r = demo_http.get(f"/static/fonts/wqy-microhei/{start}-{start + 255}.pbf")
        assert r.status_code == 200 and len(r.content) > 10_000
        # a glyphs message: fontstack (field 1) named after the folder, its range
        assert r.content[0] == 0x0A and b"wqy-microhei" in r.content[:40]
        assert f"{start}-{start + 255}".encode() in r.content[:60]


# ------------------------------------------------------------------ in the browser


def test_labels_at_city_and_grid_zoom_and_search_flies_to_a_grid(web, demo_http):
    web.open()
    districts = {
        f["properties"]["name"] for f in demo_http.get("/boundaries/district").json()["features"]
    }
    shown = _labels(web, "district")
    assert len(set(shown)) >= len(districts) - 1  # at most one name hidden by a collision
    assert set(shown) <= districts
    assert len(shown) == len(set(shown)), "a district name is written more than once"
    # the labels are drawn: the glyphs of the names (digits included) loaded, no tile error
    assert not web.errors, web.errors
    web.shot("map-labels-city.png")

    grid = demo_http.get("/units/search", params={"q": GRID_NAME}).json()[0]
    _search_and_go(web, GRID_NAME, grid["code"])
    state = web.page.evaluate(
        "({ level: window.geogrid.displayLevel(), path: window.geogrid.S.path.map((p) => p.code),"
        " center: window.geogrid.map.getCenter().toArray(), zoom: window.geogrid.map.getZoom() })"
    )
    assert state["level"] == "grid"
    assert state["path"] == grid["parent_codes"]
    w, s, e, n = grid["bbox"]
    lon, lat = state["center"]
    assert w <= lon <= e and s <= lat <= n, (state, grid["bbox"])
    assert state["zoom"] >= 14
    names = _labels(web, "grid")
    assert GRID_NAME in names
    assert all(name.startswith(grid["parent_names"][-1]) for name in names)
    assert web.page.text_content("#unit-name") == GRID_NAME
    web.shot("map-labels-grid.png")
    assert not web.errors, web.errors


def test_hot_spots_have_their_own_legend_and_outlines_over_the_choropleth(web):
    web.open()
    web.page.check("#lyr-hot")
    web.page.wait_for_selector("#legend-hot", timeout=60_000)
    web.settle()
    legend = web.page.evaluate(
        """() => {
      const sw = (root) => [...root.querySelectorAll('.sw')].map((e) => {
        const st = getComputedStyle(e);
        return { bg: st.backgroundColor, border: st.borderTopColor, bw: st.borderTopWidth };
      });
      const hot = document.getElementById('legend-hot');
      const all = sw(document.getElementById('legend'));
      return { cls: hot.className, hot: sw(hot), choro: all.slice(0, all.length - sw(hot).length) };
    }"""
    )
    assert legend["cls"] == "outline"
    assert len(legend["hot"]) == 6
    # over the choropleth the hot/cold classes are outlines in a red–blue scheme that none
    # of the choropleth's fills use
    hot_colours = {s["border"] for s in legend["hot"]}
    assert len(hot_colours) == 6
    assert not hot_colours & {s["bg"] for s in legend["choro"]}
    assert any("33, 102, 172" in c for c in hot_colours)  # the darkest blue: cold 99 %
    vis = web.page.evaluate(
        """(l) => ({ line: window.geogrid.map.getLayoutProperty('hotline-' + l, 'visibility'),
                     fill: window.geogrid.map.getLayoutProperty('hot-' + l, 'visibility') })""",
        web.page.evaluate("window.geogrid.displayLevel()"),
    )
    assert vis == {"line": "visible", "fill": "none"}
    web.shot("map-hotspots-outlined.png")
    web.page.uncheck("#lyr-choropleth")
    web.page.wait_for_selector("#legend-hot.fill")
    vis = web.page.evaluate(
        """(l) => ({ line: window.geogrid.map.getLayoutProperty('hotline-' + l, 'visibility'),
                     fill: window.geogrid.map.getLayoutProperty('hot-' + l, 'visibility') })""",
        web.page.evaluate("window.geogrid.displayLevel()"),
    )
    assert vis == {"line": "none", "fill": "visible"}


def test_incident_clusters_show_their_counts(web):
    web.open()
    web.page.check("#lyr-incidents")
    web.page.wait_for_function(
        "window.geogrid.map.queryRenderedFeatures({ layers: ['inc-cluster-count'] }).length > 0",
        timeout=60_000,
    )
    counts = web.page.evaluate(
        """() => window.geogrid.map.queryRenderedFeatures({ layers: ['inc-cluster-count'] })
          .map((f) => f.properties.count)"""
    )
    assert counts and all(c > 1 for c in counts)


def test_export_png_and_pdf(web):
    web.open()
    with web.page.expect_download(timeout=60_000) as png:
        web.page.click("#export-png")
    path = png.value.path()
    data = open(path, "rb").read()
    assert png.value.suggested_filename.endswith(".png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    with web.page.expect_download(timeout=60_000) as pdf:
        web.page.click("#export-pdf")
    data = open(pdf.value.path(), "rb").read()
    assert pdf.value.suggested_filename.endswith(".pdf")
    assert data[:5] == b"%PDF-" and len(data) > 20_000
    assert len(re.findall(rb"/Type\s*/Page(?!s)", data)) == 1  # one page
    (ARTIFACTS / "map-export.pdf").write_bytes(data)
    assert not web.errors, web.errors


def test_phone_layout_has_nothing_over_anything(browser, demo_server):  # noqa: F811
    p = Page(browser, demo_server)
    try:
        p.page.set_viewport_size({"width": 390, "height": 844})
        p.open()
        p.page.wait_for_timeout(300)
        p.page.screenshot(path=str(ARTIFACTS / "map-phone.png"))
        sels = [
            "#search",
            "#controls",
            "#legend",
            "#panel",
            ".maplibregl-ctrl-top-right",
            ".maplibregl-ctrl-bottom-right",
            "#modes",
            "#breadcrumb",
            "#drawer-toggle",
            "#lang",
        ]
        boxes = [b for b in p.page.evaluate(BOXES_JS, sels) if b]
        shown = {b["s"] for b in boxes}
        # the map's own controls, the search box and the legend are on the map; the
        # metric controls and the side panel are in the closed drawer
        assert {"#search", "#legend", ".maplibregl-ctrl-top-right", "#drawer-toggle"} <= shown
        assert "#controls" not in shown and "#panel" not in shown
        for i, a in enumerate(boxes):
            assert a["x"] >= -0.5 and a["x"] + a["w"] <= 390.5, a
            for b in boxes[i + 1 :]:
                assert not _overlap(a, b), (a, b)
        # the drawer opens with the controls and the panel, and closes on a search
        p.page.click("#drawer-toggle")
        drawer = p.page.evaluate(
            BOXES_JS, ["#panel", "#panel #controls", "#panel #panel-map", "#login"]
        )
        assert all(drawer[:3]), drawer
        assert drawer[0]["w"] <= 390
        if drawer[3]:  # the sign-in form sits above the drawer's content
            assert drawer[3]["y"] + drawer[3]["h"] <= drawer[1]["y"] + 0.5, drawer
        p.page.screenshot(path=str(ARTIFACTS / "map-phone-drawer.png"))
        p.page.click("#drawer-toggle")
        assert p.page.evaluate(BOXES_JS, ["#panel"]) == [None]
        assert not p.errors, p.errors
    finally:
        p.close()
