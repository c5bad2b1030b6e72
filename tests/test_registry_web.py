"""The map's address search (issue 15) in a real headless Chromium (Playwright).

The small city with its small registry (tests/small_registry.py), served; an anonymous
visitor types a building's name into the address box (``#addr-input``), the page asks
``GET /registry/geocode`` and lists the building; Enter flies the map to it (its centre
ends within a few metres of the building, at a street-level zoom) and marks it. An
anonymous visitor is offered buildings and units only, never a household.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import small_city
import small_registry as sr
from conftest import LiveServer
from small_city import GRIDS
from test_web import ARGS, CHROMIUM, VIEWPORT, Page

from geogrid.settings import Settings

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]

KEY = base64.b64encode(bytes(range(50, 82))).decode()
CENTRE_JS = "() => { const c = window.geogrid.map.getCenter(); return [c.lng, c.lat, window.geogrid.map.getZoom()]; }"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def served():
    settings = Settings(registry_key=KEY)
    with small_city.build() as city:
        sr.load(city.engine, settings)
        srv = LiveServer(city.url, settings)
        try:
            yield city, srv.base
        finally:
            srv.stop()


def test_typing_a_building_name_flies_the_map_there(browser, served):
    _, base = served
    target = GRIDS[3]
    name = sr.building_name(target)
    lon, lat = sr.point(target)
    web = Page(browser, base)
    try:
        assert web.page.viewport_size == VIEWPORT
        web.open()
        before = web.page.evaluate(CENTRE_JS)
        assert abs(before[0] - lon) > 1e-4 or abs(before[1] - lat) > 1e-4 or before[2] < 15
        web.page.fill("#addr-input", name)
        first = web.page.locator("#addr-results li").first
        first.wait_for(state="visible", timeout=30_000)
        assert web.page.locator("#addr-results li[data-kind=building]").count() >= 1
        assert name in first.inner_text()
        kinds = set(
            web.page.evaluate(
                "() => [...document.querySelectorAll('#addr-results li')].map(e => e.dataset.kind)"
            )
        )
        assert kinds <= {"building", "unit"}  # never a household for an anonymous visitor
        web.page.press("#addr-input", "Enter")
        web.page.wait_for_function(
            """([lon, lat]) => { const m = window.geogrid.map; const c = m.getCenter();
                 return !m.isMoving() && Math.abs(c.lng - lon) < 2e-5
                   && Math.abs(c.lat - lat) < 2e-5 && m.getZoom() > 16; }""",
            arg=[lon, lat],
            timeout=30_000,
        )
        after = web.page.evaluate(CENTRE_JS)
        assert after != before
        assert web.page.locator(".maplibregl-marker").count() == 1
        assert web.page.locator("#addr-results").is_hidden()
        assert web.errors == []
        assert web.elsewhere == []  # offline: nothing asked of another server
    finally:
        web.close()
