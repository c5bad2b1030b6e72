"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) render offline in a real headless Chromium.

Every request to a host other than the test server is aborted, so the pages must work on
the vendored copies under ``api/static/vendor/``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
# the launch options of tests/test_web.py
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class OfflinePage:
    """A page whose requests outside the test server are aborted (and remembered)."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on(
            "response",
            lambda r: (
                r.status >= 400
                and not r.url.endswith(".map")
                and self.failed.append(f"{r.status} {r.url}")
            ),
        )

    def _route(self, route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOCAL_HOSTS or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def offline(browser):
    page = OfflinePage(browser)
    yield page
    page.close()


@pytest.fixture(scope="module")
def operations(http) -> int:
    doc = http.get("/openapi.json").json()
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    return sum(1 for item in doc["paths"].values() for m in item if m in methods)


def test_docs_page_uses_vendored_assets(http):
    html = http.get("/docs").text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "cdn.jsdelivr.net" not in html
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        r = http.get(f"/static/vendor/swagger-ui/{asset}")
        assert r.status_code == 200 and len(r.content) > 500, asset
    html = http.get("/redoc").text
    assert "/static/vendor/redoc/redoc.standalone.js" in html
    assert "fonts.googleapis.com" not in html and "cdn.jsdelivr.net" not in html
    assert http.get("/static/vendor/redoc/redoc.standalone.js").status_code == 200


def test_swagger_ui_renders_offline(live_server, offline, operations):
    page = offline.page
    page.goto(f"{live_server}/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    page.wait_for_function(
        f"document.querySelectorAll('.opblock').length >= {operations}", timeout=30_000
    )
    assert page.locator(".opblock").count() == operations
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("geogrid")
    # open one operation: its parameters and responses render from the document
    page.locator(".opblock-summary").first.click()
    page.wait_for_selector(".opblock .responses-wrapper", timeout=10_000)
    assert not offline.errors, offline.errors
    assert not offline.failed, offline.failed
    assert not [u for u in offline.blocked if "swagger" in u or "jsdelivr" in u]


def test_redoc_renders_offline(live_server, offline, operations):
    page = offline.page
    page.goto(f"{live_server}/redoc")
    page.wait_for_selector("[role=menuitem]", timeout=60_000)
    page.wait_for_selector("h1", timeout=30_000)
    assert page.locator("h1").first.inner_text().startswith("geogrid")
    page.wait_for_selector("[data-section-id^='tag/']", timeout=30_000)
    menu_operations = page.locator("li[role=menuitem][data-item-id*='/operation/']").count()
    assert menu_operations == operations
    assert not offline.errors, offline.errors
    assert not offline.failed, offline.failed
    # only the "API docs by Redocly" logo of the footer points outside
    assert all("redoc.ly" in u or "redocly" in u for u in offline.blocked), offline.blocked
