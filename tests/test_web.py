"""The leaders' web map and the planner mode in a real headless Chromium (Playwright).

Runs against the demo server (8,798 grids, 60,000 incidents) and, for the planner, a tiny
city of its own (tests/small_city.py) where a planner token can create and edit a plan
without touching the shared demo database. Screenshots go to ``artifacts/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
VIEWPORT = {"width": 1400, "height": 860}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]

# a pixel (page coordinates) inside a rendered feature of `layer`, away from the floating
# controls: the centroid of the feature's outer ring, kept only if that pixel hits it
PICK_JS = """(layer) => {
  const m = window.geogridMap;
  const box = m.getCanvas().getBoundingClientRect();
  for (const f of m.queryRenderedFeatures({ layers: [layer] })) {
    const g = f.geometry;
    const ring = g.type === 'Polygon' ? g.coordinates[0] : g.coordinates[0][0];
    let x = 0, y = 0;
    ring.forEach((p) => { x += p[0]; y += p[1]; });
    const pt = m.project([x / ring.length, y / ring.length]);
    if (pt.x < 260 || pt.y < 20 || pt.x > box.width - 60 || pt.y > box.height - 40) continue;
    if (pt.x < 200 && pt.y > box.height - 220) continue;  // legend
    const hit = m.queryRenderedFeatures([pt.x, pt.y], { layers: [layer] })[0];
    if (hit && hit.properties.code === f.properties.code) {
      return { x: pt.x + box.left, y: pt.y + box.top, code: f.properties.code,
               props: f.properties };
    }
  }
  return null;
}"""

RENDERED_JS = """(layer) => window.geogridMap.queryRenderedFeatures({ layers: [layer] })
  .map((f) => f.properties)"""


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Page:
    """A page with its console errors and the status codes of tile responses."""

    def __init__(self, browser, base: str):
        self.base = base
        self.page = browser.new_page(viewport=VIEWPORT)
        self.errors: list[str] = []
        self.tiles: dict[str, list[int]] = {}
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("response", self._response)

    def _response(self, r) -> None:
        m = re.search(r"/tiles/(\w+)/\d+/\d+/\d+\.mvt", r.url)
        if m:
            self.tiles.setdefault(m.group(1), []).append(r.status)

    def open(self) -> None:
        self.page.goto(self.base + "/")
        self.page.wait_for_function("document.body.dataset.ready === '1'", timeout=180_000)
        self.settle()

    def settle(self) -> None:
        self.page.wait_for_timeout(200)
        self.page.wait_for_function("window.geogrid.settled()", timeout=180_000,
                                    polling=100)

    def pick(self, layer: str) -> dict:
        hit = self.page.evaluate(PICK_JS, layer)
        assert hit, f"no clickable feature rendered in {layer}"
        return hit

    def click_feature(self, layer: str) -> dict:
        hit = self.pick(layer)
        self.page.mouse.click(hit["x"], hit["y"])
        return hit

    def rendered(self, layer: str) -> list[dict]:
        return self.page.evaluate(RENDERED_JS, layer)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(ARTIFACTS / name))

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def web(browser, demo_server):
    p = Page(browser, demo_server)
    yield p
    p.close()


# ------------------------------------------------------------------ serving


def test_page_and_static_files_are_served(demo_http):
    r = demo_http.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "/static/vendor/maplibre-gl/maplibre-gl.js" in r.text
    assert r.headers["cache-control"] == "no-cache"
    v = demo_http.get("/static/vendor/maplibre-gl/maplibre-gl.js")
    assert v.status_code == 200
    assert v.headers["content-type"].startswith("text/javascript")
    assert "max-age=86400" in v.headers["cache-control"]
    again = demo_http.get("/static/app.js", headers={"If-None-Match": demo_http.get(
        "/static/app.js").headers["etag"]})
    assert again.status_code == 304
    assert demo_http.get("/static/../main.py").status_code == 404
    assert demo_http.get("/static/%2e%2e/routes/web.py").status_code == 404
    assert demo_http.get("/static/nothing.js").status_code == 404
    assert demo_http.get("/web/config.json").json()["basemap"] is None


# ------------------------------------------------------------------ leaders' map


def test_map_loads_without_errors_and_renders_the_grid_layer(web):
    web.open()
    districts = web.rendered("fill-district")
    assert {d["code"] for d in districts} >= {"450902"}
    assert all(isinstance(d["incidents"], int) for d in districts)
    legend = web.page.inner_text("#legend")
    assert "事件数" in legend and "无数据" in legend
    # the grid choropleth of the whole city
    web.page.check("#lyr-gridview")
    web.settle()
    grids = web.rendered("fill-grid")
    assert len({g["code"] for g in grids}) > 1000
    assert all(len(g["code"]) == 15 for g in grids)
    assert web.tiles["grids"] and set(web.tiles["grids"]) <= {200, 204, 304}
    assert 200 in web.tiles["grids"]
    web.shot("leaders_map.png")
    assert web.errors == []


def test_drill_down_from_district_to_grid_and_panel(web):
    web.open()
    d = web.click_feature("fill-district")
    web.settle()
    assert web.page.evaluate("window.geogrid.displayLevel()") == "street"
    crumbs = web.page.locator("#breadcrumb li").all_inner_texts()
    assert crumbs == ["玉林市", d["props"]["name"]]
    assert web.page.inner_text("#unit-code") == d["code"]
    streets = web.rendered("fill-street")
    assert streets and all(s["code"].startswith(d["code"]) for s in streets)
    assert {s["parent_code"] for s in streets} == {d["code"]}

    s = web.click_feature("fill-street")
    web.settle()
    assert web.page.evaluate("window.geogrid.displayLevel()") == "community"
    assert all(c["parent_code"] == s["code"] for c in web.rendered("fill-community"))
    c = web.click_feature("fill-community")
    web.settle()
    assert web.page.evaluate("window.geogrid.displayLevel()") == "grid"
    assert all(g["parent_code"] == c["code"] for g in web.rendered("fill-grid"))

    g = web.click_feature("fill-grid")
    web.page.wait_for_function(
        "(code) => document.querySelector('#unit-code')?.textContent === code", arg=g["code"])
    web.settle()
    panel = web.page.inner_text("#panel-map")
    assert g["code"] in panel and g["props"]["name"] in panel
    assert web.page.inner_text("#m-incidents") == f"{g['props']['incidents']:,}"
    assert web.page.locator("#unit-metrics tr").count() >= 5
    web.page.wait_for_selector("#trend svg rect", state="attached", timeout=60_000)
    web.shot("drilldown_grid.png")

    # the breadcrumb goes back up to the district
    web.page.locator("#breadcrumb a", has_text=d["props"]["name"]).click()
    web.settle()
    assert web.page.evaluate("window.geogrid.displayLevel()") == "street"
    assert web.page.locator("#breadcrumb li").count() == 2
    assert web.errors == []


def test_language_toggle_switches_labels(web):
    web.open()
    assert web.page.inner_text("#topbar h1") == "玉林市网格化管理"
    assert web.page.inner_text("#tab-planner") == "网格规划"
    web.page.click("#lang-en")
    assert web.page.inner_text("#topbar h1") == "Yulin grid management"
    assert web.page.inner_text("#tab-planner") == "Planner"
    assert "Incidents" in web.page.inner_text("#legend")
    assert "Overdue" in web.page.inner_text("#panel-map")
    options = web.page.locator("#metric option").all_inner_texts()
    assert "Load index" in options
    web.shot("leaders_map_en.png")
    web.page.click("#lang-zh")
    assert web.page.inner_text("#topbar h1") == "玉林市网格化管理"
    assert "负荷指数" in web.page.locator("#metric option").all_inner_texts()
    assert web.errors == []


def test_layers_window_and_hotspots(web):
    web.open()
    web.page.select_option("#window", "90")
    web.page.check("#lyr-heat")
    web.page.check("#lyr-incidents")
    web.settle()
    assert web.rendered("inc-cluster") or web.rendered("inc-point")
    if web.page.is_enabled("#lyr-hot"):
        web.page.check("#lyr-hot")
        web.page.wait_for_function("window.geogrid.S.hot !== null", timeout=120_000)
        web.settle()
        assert "热点" in web.page.inner_text("#legend")
    web.shot("layers.png")
    assert web.errors == []


# ------------------------------------------------------------------ planner


def _has_plans(http) -> bool:
    paths = http.get("/openapi.json").json()["paths"]
    return "/plans" in paths and any(re.fullmatch(r"/plans/\{\w+\}", p) for p in paths)


def test_planner_without_plans_api_or_with_an_empty_list(web, demo_http):
    web.open()
    web.page.click("#tab-planner")
    if _has_plans(demo_http):
        web.page.wait_for_selector("#plan-list")
    else:
        assert "plans API unavailable" in web.page.inner_text("#plans-missing")
    assert web.errors == []


def test_planner_opens_a_plan_shows_metrics_and_merges(browser):
    import small_city
    from sqlalchemy import text

    with small_city.build() as city, small_city.serve(city) as http:
        if not _has_plans(http):
            pytest.skip("the plans API is not there")
        # one building at the centre of each grid (the plan impact prorates households)
        with city.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO building (households, population, source, geom) VALUES "
                "(100, 250, 'tests/test_web', ST_SetSRID(ST_MakePoint(:x, :y), 4326))"),
                [{"x": x, "y": y} for x, y in small_city.CENTRES.values()])
        r = http.post("/plans", json={"name": "四格合并", "communities": [small_city.COMMUNITY]},
                      headers=city.auth("planner"))
        assert r.status_code == 201, r.text
        plan_id = r.json()["id"]
        web = Page(browser, str(http.base_url).rstrip("/"))
        try:
            web.open()
            web.page.click("#tab-planner")
            web.page.fill("#panel-planner input[type=password]", city.tokens["planner"])
            web.page.dispatch_event("#panel-planner input[type=password]", "change")
            web.page.click(f"button[data-plan='{plan_id}']")
            web.page.wait_for_selector("#plan-metrics tbody tr", timeout=120_000)
            web.page.wait_for_timeout(1500)  # fitBounds
            table = web.page.inner_text("#plan-metrics")
            assert "网格数" in table
            rows = web.page.locator("#plan-metrics tbody tr").all_inner_texts()
            assert any(re.match(r"网格数\s+4\s+4", r) for r in rows), rows
            assert web.page.locator("#plan-grids tbody tr").count() == 4

            # merge two grids picked on the map
            a, b = small_city.GRIDS[0], small_city.GRIDS[1]
            for code in (a, b):
                lon, lat = small_city.CENTRES[code]
                xy = web.page.evaluate(
                    "([lon, lat]) => { const p = window.geogridMap.project([lon, lat]);"
                    " const r = window.geogridMap.getCanvas().getBoundingClientRect();"
                    " return [p.x + r.left, p.y + r.top]; }", [lon, lat])
                web.page.mouse.click(*xy)
            assert web.page.inner_text("#picked") == f"{a}, {b}"
            web.page.click("#btn-merge")
            web.page.wait_for_selector("#plan-diff.chips", timeout=120_000)
            rows = web.page.locator("#plan-metrics tbody tr").all_inner_texts()
            assert any(re.match(r"网格数\s+4\s+3", r) for r in rows), rows
            assert b in web.page.inner_text("#plan-diff")
            web.page.wait_for_timeout(500)
            web.shot("planner.png")
            assert web.errors == []
        finally:
            web.close()
