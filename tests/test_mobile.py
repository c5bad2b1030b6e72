"""The grid worker's phone app (``/m/``, issue 13) in a real headless Chromium on a phone
screen (360×640), against a real server on the small test city.

* serving: ``/m/`` and its files, the redirects of ``/m``, ``/report`` and ``/worker``,
  the service worker's scope header, the Web App Manifest and its icons;
* the PWA: the service worker registers, and after the first visit the app starts with
  the network off; nothing is wider than the 360 px screen;
* the must-show round trip: a device is enrolled with a code the admin issued through the
  API; the network goes off (``context.set_offline`` = CDP network emulation); the worker
  records a report with a photo, two register entries and a patrol (positions set with
  ``context.set_geolocation``); the network comes back; every request is forced to be
  retried (a route lets it reach the server, then cuts the answer off) and still
  everything arrives exactly once — one incident, two entries, one patrol, one photo —
  and the leader's map (``/``) shows the report and the track.

The app's pure helpers have unit tests in ``tests/js/mobile.test.js``.
"""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import small_city
from small_city import CENTRES, GRIDS
from test_web import ARGS, ARTIFACTS, CHROMIUM

PHONE = {"width": 360, "height": 640}
STATIC_M = Path(__file__).resolve().parent.parent / "api" / "static" / "m"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]


@pytest.fixture(scope="module")
def city_server():
    with small_city.build() as city, small_city.serve(city) as http:
        yield city, http


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def base_of(http) -> str:
    return str(http.base_url).rstrip("/")


class Phone:
    """A phone: a browser context with a 360×640 touch screen, GPS allowed, the app open;
    console errors kept (except the answers the app expects while offline or retrying)."""

    def __init__(self, browser, base: str, lon: float, lat: float):
        self.base = base
        self.context = browser.new_context(
            viewport=PHONE,
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            geolocation={"longitude": lon, "latitude": lat, "accuracy": 8},
            permissions=["geolocation"],
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
        )
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("console", self._console)

    def _console(self, m) -> None:
        if m.type != "error":
            return
        expected = ("net::ERR_INTERNET_DISCONNECTED", "net::ERR_CONNECTION", "Failed to load")
        if any(s in m.text for s in expected) or "status of 404" in m.text:
            return  # offline, a cut-off answer, HEAD /media of a photo not uploaded yet
        self.errors.append(m.text)

    def open(self) -> None:
        self.page.goto(self.base + "/m/")
        self.ready()

    def ready(self) -> None:
        self.page.wait_for_function("document.body.dataset.ready === '1'", timeout=60_000)

    def js(self, expr: str, arg=None):
        return self.page.evaluate(expr, arg)

    def outbox(self) -> list[dict]:
        return self.js("window.geogridM.outbox()")

    def overflow(self) -> list[str]:
        """Elements wider than the screen (and the document's scroll width)."""
        return self.js(
            """() => {
              const w = document.documentElement.clientWidth, out = [];
              if (document.documentElement.scrollWidth > w) out.push('document ' + document.documentElement.scrollWidth);
              for (const e of document.querySelectorAll('body *')) {
                const r = e.getBoundingClientRect();
                if (r.width && (r.right > w + 0.5 || r.left < -0.5) && getComputedStyle(e).position !== 'fixed'
                    && !e.closest('.maplibregl-map')) out.push(e.tagName + '#' + e.id + '.' + e.className + ' ' + r.right);
              }
              return out;
            }"""
        )

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(ARTIFACTS / name), full_page=True)

    def close(self) -> None:
        self.context.close()


def photo_jpeg(width: int = 3000, height: int = 2000) -> bytes:
    """A camera-sized JPEG (the app scales it to 1600 px before hashing)."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (width, height), (120, 160, 90))
    d = ImageDraw.Draw(im)
    for i in range(0, width, 97):
        d.line([i, 0, width - i, height], fill=(200, 40, 40), width=9)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


# ------------------------------------------------------------------ serving


def test_app_files_redirects_and_manifest(city_server):
    _, http = city_server
    r = http.get("/m/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache"
    assert '<link rel="manifest" href="/m/manifest.webmanifest">' in r.text
    assert '<script type="module" src="/m/js/app.js">' in r.text
    for old in ("/m", "/report", "/worker"):
        moved = http.get(old, follow_redirects=False)
        assert moved.status_code in (301, 302, 307, 308), old
        assert moved.headers["location"] == "/m/"
    sw = http.get("/m/sw.js")
    assert sw.status_code == 200
    assert sw.headers["content-type"].startswith("text/javascript")
    assert sw.headers["service-worker-allowed"] == "/m/"
    assert sw.headers["cache-control"] == "no-cache"
    again = http.get("/m/js/app.js", headers={"If-None-Match": http.get("/m/js/app.js").headers["etag"]})
    assert again.status_code == 304
    for bad in ("/m/../index.html", "/m/%2e%2e/app.css", "/m/nothing.js", "/m/js/"):
        assert http.get(bad).status_code == 404, bad

    m = http.get("/m/manifest.webmanifest")
    assert m.headers["content-type"].startswith("application/manifest+json")
    manifest = m.json()
    assert manifest["start_url"] == "/m/" and manifest["scope"] == "/m/"
    assert manifest["display"] == "standalone"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in manifest["name"] + manifest["short_name"])
    assert manifest["theme_color"].startswith("#") and manifest["background_color"].startswith("#")
    from PIL import Image

    seen = set()
    for icon in manifest["icons"]:
        got = http.get(icon["src"])
        assert got.status_code == 200 and got.headers["content-type"] == "image/png", icon
        img = Image.open(io.BytesIO(got.content))
        w, h = (int(v) for v in icon["sizes"].split("x"))
        assert img.size == (w, h), icon
        seen.add((w, icon.get("purpose", "any")))
    assert {(192, "any"), (512, "any"), (192, "maskable"), (512, "maskable")} <= seen


def test_service_worker_and_offline_start(browser, city_server):
    """The service worker registers with scope /m/; a second start with the network off
    comes from its cache; the enrolment screen fits the 360 px screen in both languages."""
    _, http = city_server
    phone = Phone(browser, base_of(http), *CENTRES[GRIDS[0]])
    try:
        phone.open()
        scope = phone.js(
            "async () => (await navigator.serviceWorker.ready).scope"
        )
        assert scope == base_of(http) + "/m/"
        phone.page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=30_000)
        assert phone.page.is_visible("#enrol-form")
        assert phone.overflow() == []
        phone.page.click("#lang-btn")
        assert phone.page.inner_text("#enrol-submit") == "Enrol"
        assert phone.overflow() == []
        phone.page.click("#lang-btn")
        phone.context.set_offline(True)
        assert phone.js("navigator.onLine") is False
        phone.page.reload()
        phone.ready()
        assert phone.page.inner_text("#bar h1") == "网格员工作台"
        assert phone.page.is_visible("#enrol-form")
        assert phone.js("typeof window.maplibregl") == "object"  # the vendored library too
        phone.shot("mobile_offline_start.png")
        assert phone.errors == []
    finally:
        phone.close()
