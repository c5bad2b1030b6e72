"""The planner's editor and staffing in a real headless Chromium (Playwright), on the tiny
city of ``tests/small_city.py`` (the page, browser and server helpers of
``tests/test_web.py``).

A split drawn with snapping: both clicks land half a metre from grid vertices (the grid's
south-west corner and the community's centre) and the cut runs exactly from vertex to
vertex — two equal triangles, no sliver. The new grid has no worker: publish stays
disabled until the planner marks it vacant in the staffing section, then it publishes.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
import small_city
from small_city import CX, CY, DX, DY
from test_web import PlannerPage, browser, city_server  # noqa: F401 - pytest fixtures

M_LON = 102_750.0  # metres per degree of longitude at 22.63°N (as small_city)
M_LAT = 110_574.0


def test_snapped_split_then_staffing_then_publish(browser, city_server):  # noqa: F811
    web = PlannerPage(browser, *city_server, "吸附切分")
    try:
        code = small_city.GRIDS[0]  # south-west
        web.page.click("#edit-kinds button[data-kind=split]")
        web.page.select_option("#slot-0", code)
        web.page.fill("#snap-m", "3")  # a pixel is about a metre at this zoom
        web.page.dispatch_event("#snap-m", "change")
        # the grid in the middle of the map, clear of the cards at its edges
        web.page.evaluate(
            "([x, y]) => window.geogrid.map.jumpTo({ center: [x, y], zoom: 16.5 })",
            [CX - DX / 2, CY - DY / 2],
        )
        web.page.wait_for_timeout(500)
        web.page.click("#btn-draw-line")
        # half a metre off the grid's south-west corner (outside), and off the centre vertex
        web.click_lonlat(CX - DX - 0.3 / M_LON, CY - DY - 0.4 / M_LAT)
        web.click_lonlat(CX + 0.3 / M_LON, CY + 0.4 / M_LAT)
        assert web.page.inner_text("#draw-status").endswith("2")
        web.page.wait_for_function("!!window.terraDraw", timeout=30_000)  # vendored, offline
        web.page.click("#btn-split")
        web.wait_grids(5)
        grids = web.plan_grids()
        new = next(c for c in grids if c not in small_city.GRIDS)
        a, b = grids[code][1], grids[new][1]
        # corner to corner: two equal triangles, no extra vertex near a corner
        assert a.area == pytest.approx(b.area, rel=1e-6)
        assert a.area + b.area == pytest.approx(DX * DY, rel=1e-6)
        for g in (a, b):
            assert len(shapely.get_coordinates(shapely.normalize(g))) == 4
        corners = np.array([[CX - DX, CY - DY], [CX, CY - DY], [CX, CY], [CX - DX, CY]])
        pts = np.concatenate([shapely.get_coordinates(g) for g in (a, b)])
        d = np.hypot(
            (pts[:, None, 0] - corners[None, :, 0]) * M_LON,
            (pts[:, None, 1] - corners[None, :, 1]) * M_LAT,
        )
        assert not ((d > 0) & (d < 1.0)).any()
        # staffing: the new grid has no worker, publishing is blocked until decided
        web.page.wait_for_selector("#plan-staffing")
        assert web.page.is_disabled("#btn-publish")
        assert "无网格员" in web.page.inner_text(f"#plan-staffing tr[data-grid='{new}']")
        web.page.click(f"button[data-vacancy='{new}']")
        web.page.wait_for_function(
            "() => document.querySelector('#staffing-status')?.className === 'ok'",
            timeout=60_000,
        )
        assert not web.page.is_disabled("#btn-publish")
        web.page.once("dialog", lambda d: d.accept())
        web.page.click("#btn-publish")
        web.page.wait_for_function(
            "() => /发布 · 完成|error|错误/.test(document.querySelector('#plan-msg')?.textContent"
            " || '') || document.querySelector('#plan-msg')?.className === 'err'",
            timeout=120_000,
        )
        assert web.page.get_attribute("#plan-msg", "class") == "ok", web.page.inner_text(
            "#plan-msg"
        )
        http = city_server[1]
        pid = web.plan_id
        assert http.get(f"/plans/{pid}").json()["status"] == "published"
        web.shot("planner_snapped_split.png")
        # the sign-in module's probe of GET /session answers 401 to a page not signed in
        errors = [e for e in web.errors if "401 (Unauthorized)" not in e]
        assert errors == [] and web.elsewhere == [], (web.errors, web.elsewhere)
    finally:
        web.close()
