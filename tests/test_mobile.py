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
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import small_city
from small_city import CENTRES, GRIDS
from test_web import ARGS, ARTIFACTS, CHROMIUM

PHONE = {"width": 360, "height": 640}
CHUNK = 256 * 1024  # bytes per upload request (api/static/m/js/sync.js)
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

    def wait_outbox(self, test, timeout: float = 60.0) -> list[dict]:
        """Until ``test(outbox)`` holds (the outbox is read from IndexedDB)."""
        import time

        end = time.monotonic() + timeout
        while True:
            q = self.outbox()
            if test(q):
                return q
            assert time.monotonic() < end, f"outbox still {q}"
            self.page.wait_for_timeout(300)

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

    noise = Image.effect_noise((width, height), 60)  # compresses badly: several chunks
    im = Image.merge("RGB", (noise, noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT), noise))
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
    again = http.get(
        "/m/js/app.js", headers={"If-None-Match": http.get("/m/js/app.js").headers["etag"]}
    )
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
        scope = phone.js("async () => (await navigator.serviceWorker.ready).scope")
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
        # the service worker's own fetches are cut off too: a file it never cached fails,
        # so the shell above came from its cache
        missed = phone.js(
            "() => fetch('/static/js/api.js', { cache: 'no-store' }).then(() => 'fetched', () => 'failed')"
        )
        assert missed == "failed"
        assert phone.page.inner_text("#bar h1") == "网格员工作台"
        assert phone.page.is_visible("#enrol-form")
        assert phone.js("typeof window.maplibregl") == "object"  # the vendored library too
        phone.shot("mobile_offline_start.png")
        assert phone.errors == []
    finally:
        phone.close()


# ------------------------------------------------------------------ the round trip


class ForceRetry:
    """A route that lets each write reach the server once and cuts its answer off, so the
    app must send it again — with the same Idempotency-Key (PUT /media: the same chunk,
    resumed from the server's Upload-Offset)."""

    WRITES = ("POST", "PUT")

    def __init__(self):
        self.lock = threading.Lock()
        self.first: dict[str, int] = {}  # request identity → status of the cut-off answer
        self.sent: list[tuple[str, str, str | None, int | None]] = []
        self.ranges: list[str | None] = []  # Content-Range of every PUT, in order

    def identity(self, request) -> str:
        h = request.headers
        return "|".join(
            [request.method, request.url, h.get("idempotency-key", ""), h.get("content-range", "")]
        )

    def __call__(self, route, request) -> None:
        if request.method not in self.WRITES:
            route.continue_()
            return
        ident = self.identity(request)
        path = request.url.split("://", 1)[1].split("/", 1)[1]
        key = request.headers.get("idempotency-key")
        if request.method == "PUT":
            self.ranges.append(request.headers.get("content-range"))
        with self.lock:
            cut = ident not in self.first
        if cut:
            response = route.fetch()  # the server gets it and answers …
            with self.lock:
                self.first[ident] = response.status
                self.sent.append((request.method, "/" + path, key, response.status))
            route.abort("connectionreset")  # … and the phone never hears it
        else:
            with self.lock:
                self.sent.append((request.method, "/" + path, key, None))
            route.continue_()

    def first_answers(self, method: str, prefix: str) -> list[int]:
        return [s for m, p, _, s in self.sent if m == method and p.startswith(prefix) and s]

    def keys(self, method: str, path: str) -> list[str | None]:
        return [k for m, p, k, _ in self.sent if m == method and p.split("?")[0] == path]


def count(city, sql: str, **params) -> int:
    from sqlalchemy import text

    with city.engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def test_offline_round_trip_arrives_exactly_once(browser, city_server):
    city, http = city_server
    base = base_of(http)
    worker = city.accounts["w1"]
    cx, cy = CENTRES[GRIDS[0]]
    issued = http.post(
        "/terminals/enrolments", json={"account_id": worker.id}, headers=city.auth("admin")
    )
    assert issued.status_code == 201, issued.text
    code = issued.json()["code"]

    phone = Phone(browser, base, cx, cy)
    try:
        # enrol (online), the worker's data comes down, the service worker takes over
        phone.open()
        phone.page.fill("#enrol-code", code)
        phone.page.click("#enrol-submit")
        phone.page.wait_for_selector("#report-form", timeout=30_000)
        phone.page.wait_for_function("window.geogridM.M.cache.synced_at", timeout=30_000)
        assert worker.name in phone.page.inner_text("#who")
        cache = phone.js("window.geogridM.M.cache")
        assert {c["code"] for c in cache["categories"]} >= {"garbage", "dispute"}
        assert GRIDS[0] in json.dumps(cache["grids"])  # the worker's grid, for offline use
        phone.page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=30_000)
        terminals = http.get(
            "/terminals", params={"account_id": worker.id}, headers=city.auth("admin")
        ).json()
        assert len(terminals) == 1 and terminals[0]["app_version"] == "m-1"

        # the network goes off; the app still starts (service worker + IndexedDB)
        phone.context.set_offline(True)
        phone.page.reload()
        phone.ready()
        assert phone.page.inner_text("#net") == "离线"
        assert phone.page.is_visible("#report-form")

        # a report with a photo, its position from the GPS
        phone.page.select_option("#r-category", "garbage")
        phone.page.fill("#r-description", "巷口垃圾堆放，已拍照")
        phone.page.click("#r-gps")
        phone.page.wait_for_function(
            "document.querySelector('#r-pos').textContent.startsWith('GPS')"
        )
        phone.page.set_input_files(
            "#r-photos", files=[{"name": "p.jpg", "mimeType": "image/jpeg", "buffer": photo_jpeg()}]
        )
        phone.page.wait_for_selector("#report-form .thumbs img")
        assert phone.overflow() == []
        phone.shot("mobile_report.png")
        phone.page.click("#r-submit")
        phone.page.wait_for_function("document.querySelector('#r-msg').textContent !== ''")

        # two register entries
        phone.page.click("#tabs button[data-tab=register]")
        for kind, people, result in (
            ("visit", "3", "已走访，情况正常"),
            ("mediation", "2", "调解成功"),
        ):
            phone.page.select_option("#e-kind", kind)
            phone.page.fill("#e-people", people)
            phone.page.fill("#e-result", result)
            n = len(phone.outbox())
            phone.page.click("#e-submit")
            phone.wait_outbox(lambda q, n=n: len(q) > n)
        assert phone.overflow() == []
        phone.shot("mobile_register.png")

        # a patrol: four fixes walking east, 5.5 s apart (the sampling interval is 5 s),
        # and a check-in
        phone.page.click("#tabs button[data-tab=patrol]")
        walk = [(cx - 0.0012 + i * 0.0003, cy) for i in range(4)]
        phone.context.set_geolocation({"longitude": walk[0][0], "latitude": cy, "accuracy": 6})
        phone.page.click("#p-start")
        for i, (lon, lat) in enumerate(walk):
            phone.context.set_geolocation({"longitude": lon, "latitude": lat, "accuracy": 6})
            phone.page.wait_for_function(
                "(n) => window.geogridM.patrolState().points.length >= n", arg=i + 1, timeout=20_000
            )
            if i == 1:
                phone.page.fill("#p-place", "小卖部")
                phone.page.click("#p-checkin")
            if i < len(walk) - 1:
                phone.page.wait_for_timeout(5500)
        assert phone.overflow() == []
        phone.shot("mobile_patrol.png")
        phone.page.click("#p-stop")
        phone.wait_outbox(lambda q: len(q) == 4)

        queue = phone.outbox()
        assert [a["kind"] for a in queue] == ["report", "entry", "entry", "patrol"]
        assert all(a["state"] == "pending" for a in queue)
        assert len({a["key"] for a in queue}) == 4
        report = queue[0]
        assert len(report["media"]) == 1 and report["body"]["media"] == report["media"]
        assert report["body"]["accuracy_m"] == 8 and report["body"]["crs"] == "wgs84"
        patrol = queue[3]["body"]
        assert len(patrol["points"]) == 4 and patrol["checkins"][0]["place"] == "小卖部"
        # nothing reached the server while offline
        assert count(city, "SELECT count(*) FROM incident") == 0
        assert count(city, "SELECT count(*) FROM patrol") == 0

        # back online; every write's first answer is lost on the way back
        retry = ForceRetry()
        phone.context.route("**/*", retry)
        phone.context.set_offline(False)
        done = phone.wait_outbox(lambda q: all(a["state"] != "pending" for a in q), 120)
        assert [a["state"] for a in done] == ["done"] * 4, done
        assert phone.page.inner_text("#net") == "在线"
        # each action was cut off once, then answered: with the same key both times
        for a in done:
            assert retry.keys("POST", a["path"]).count(a["key"]) == 2, (a, retry.sent)
        assert retry.first_answers("POST", "/incidents") == [201]
        assert retry.first_answers("POST", "/register/entries") == [201, 201]
        assert retry.first_answers("POST", "/patrols") == [201]
        assert retry.first_answers("PUT", "/media/"), retry.sent  # the upload was cut too
        size = count(city, "SELECT size_bytes FROM media")
        assert retry.ranges[0] == f"bytes 0-{min(size, CHUNK) - 1}/{size}"
        assert size > CHUNK  # several chunks: a later one resumed at the server's offset
        assert f"bytes {CHUNK}-{min(size, 2 * CHUNK) - 1}/{size}" in retry.ranges

        # exactly once, in the database
        assert count(city, "SELECT count(*) FROM incident") == 1
        assert count(city, "SELECT count(*) FROM service_entry") == 2
        assert count(city, "SELECT count(*) FROM patrol") == 1
        assert count(city, "SELECT count(*) FROM patrol_checkin") == 1
        assert count(city, "SELECT count(*) FROM media") == 1
        sha = report["media"][0]
        assert (
            count(
                city,
                "SELECT count(*) FROM media_link WHERE sha256 = :s AND owner_kind = 'incident'",
                s=sha,
            )
            == 1
        )
        assert count(city, "SELECT max(greatest(width, height)) FROM media") == 1600

        incidents = http.get("/incidents", headers=city.auth("admin")).json()
        assert len(incidents) == 1
        inc = incidents[0]
        assert inc["category"] == "garbage" and inc["grid_code"] == GRIDS[0]
        assert inc["lon"] == pytest.approx(cx, abs=1e-6) and inc["lat"] == pytest.approx(
            cy, abs=1e-6
        )
        photo = http.get(f"/media/{sha}", headers=city.auth("w1"))
        assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"

        # the day in the city's zone (the phone's too): not the machine's, which differs
        # from it for eight hours a day
        day = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d")
        tracks = http.get("/patrols", params={"day": day}, headers=city.auth("admin")).json()
        assert len(tracks["features"]) == 1
        assert tracks["features"][0]["geometry"]["type"] in ("LineString", "MultiLineString")
        assert phone.errors == [], phone.errors
    finally:
        phone.close()

    leader_map_shows(browser, city, base, inc["id"])


LEADER_LOGIN = ("leader", "leader-map-password-1")


def leader_map_shows(browser, city, base: str, incident_id: int) -> None:
    """The leader signs in on the main page (``/``): the incident layer shows the report
    and the patrol overlay (a map layer whose id names patrols) draws the track."""
    from test_web import Page

    from geogrid.services.accounts import set_password

    set_password(city.engine, city.accounts["leader"].id, LEADER_LOGIN[1], username=LEADER_LOGIN[0])
    web = Page(browser, base)
    try:
        web.open()
        web.page.fill("#login-username", LEADER_LOGIN[0])
        web.page.fill("#login-password", LEADER_LOGIN[1])
        web.page.click("#login-submit")
        web.page.wait_for_selector("#login-who")
        web.page.check("#lyr-incidents")
        web.settle()
        web.page.wait_for_function(
            "(id) => window.geogrid.map.queryRenderedFeatures({ layers: ['inc-point'] })"
            ".some((f) => f.properties.id === id)",
            arg=incident_id,
            timeout=60_000,
        )
        # the patrol overlay (tracks of the day, GET /patrols): switched on if it has a
        # switch, then at least one track drawn
        for box in web.page.locator("input[type=checkbox][id*=patrol]").all():
            box.check()
        web.settle()
        web.page.wait_for_function(
            """() => {
              const m = window.geogrid.map;
              const ids = m.getStyle().layers.map((l) => l.id).filter((id) => /patrol|track/.test(id));
              return ids.length > 0 && m.queryRenderedFeatures({ layers: ids }).length > 0;
            }""",
            timeout=60_000,
        )
        web.shot("mobile_leader_map.png")
        assert web.errors == [], web.errors
    finally:
        web.close()


# ------------------------------------------------------------------ tasks, conflicts, revocation


def enrolled_phone(browser, city, http, key: str = "w1") -> Phone:
    """A phone with the app open and enrolled for ``key``'s account."""
    issued = http.post(
        "/terminals/enrolments",
        json={"account_id": city.accounts[key].id},
        headers=city.auth("admin"),
    )
    assert issued.status_code == 201, issued.text
    phone = Phone(browser, base_of(http), *CENTRES[GRIDS[0]])
    phone.open()
    phone.page.fill("#enrol-code", issued.json()["code"])
    phone.page.click("#enrol-submit")
    phone.page.wait_for_selector("#report-form", timeout=30_000)
    phone.page.wait_for_function("window.geogridM.M.cache.synced_at", timeout=30_000)
    return phone


def report_in_grid(city, http, description: str) -> dict:
    """An incident in the worker's grid, reported by the community admin."""
    lon, lat = CENTRES[GRIDS[0]]
    r = http.post(
        "/incidents",
        json={"category": "garbage", "lon": lon, "lat": lat, "description": description},
        headers=city.auth("community"),
    )
    assert r.status_code == 201, r.text
    return r.json()


def status_of(city, http, incident_id: int) -> str:
    return http.get(f"/incidents/{incident_id}", headers=city.auth("admin")).json()["status"]


def test_tasks_conflicts_and_revocation(browser, city_server):
    """My tasks: accept, start and resolve with an "after" photo (each move builds on the
    last one the server answered); a move made offline on an incident someone else changed
    meanwhile is a conflict shown to the worker, and the server's change stays; a report
    entered in GCJ-02 coordinates lands where it is; a revoked device is told so, keeps its
    outbox and sends it after enrolling again."""
    city, http = city_server
    first = report_in_grid(city, http, "任务一：楼道堆物")
    second = report_in_grid(city, http, "任务二：路灯不亮")
    phone = enrolled_phone(browser, city, http)
    try:
        page = phone.page
        # every view fits the 360 px screen, in English too
        page.click("#lang-btn")
        assert page.inner_text("#tabs button[data-tab=report]") == "Report"
        for tab in ("report", "tasks", "patrol", "register", "notes"):
            page.click(f"#tabs button[data-tab={tab}]")
            assert phone.overflow() == [], tab
        page.click("#outbox-btn")
        assert phone.overflow() == []
        page.click("#outbox-btn")
        page.click("#lang-btn")
        page.click("#tabs button[data-tab=tasks]")
        for inc in (first, second):
            page.wait_for_selector(f"#task-list li[data-id='{inc['id']}']")
        assert phone.overflow() == []
        phone.shot("mobile_tasks.png")

        # the notifications of the new assignments came with the sync; one is read
        page.click("#tabs button[data-tab=notes]")
        items = page.locator("#notif-list li.unread")
        unread = items.count()
        assert unread >= 2 and "新派遣任务" in items.first.inner_text()
        nid = int(items.first.get_attribute("data-id"))
        items.first.locator("button").click()
        phone.wait_outbox(lambda q: q and q[-1]["kind"] == "read" and q[-1]["state"] == "done")
        mine = http.get("/notifications", headers=city.auth("w1")).json()
        assert [n["id"] for n in mine if n["read_at"]] == [nid]
        assert page.inner_text("#tabs button[data-tab=notes]") == f"消息 ({unread - 1})"
        page.click("#tabs button[data-tab=tasks]")

        # accept, start, resolve with an after photo, online
        card = f"#task-list li[data-id='{first['id']}']"
        for move, status in (("accepted", "accepted"), ("in_progress", "in_progress")):
            page.click(f"{card} button[data-move={move}]")
            phone.wait_outbox(lambda q: all(a["state"] == "done" for a in q))
            assert status_of(city, http, first["id"]) == status
        # a note with a photo (small enough to be sent as taken)
        page.click(f"{card} button[data-move=note]")
        page.set_input_files(
            f"#t-photo-{first['id']}",
            files=[{"name": "n.jpg", "mimeType": "image/jpeg", "buffer": photo_jpeg(400, 300)}],
        )
        page.wait_for_selector(f"{card} .thumbs img")
        page.fill(f"{card} .t-note", "现场已拍照，联系物业")
        page.click(f"{card} .t-form button[type=submit]")
        phone.wait_outbox(lambda q: q[-1]["kind"] == "note" and q[-1]["state"] == "done")
        page.click("#refresh-btn")
        page.wait_for_function("!document.querySelector('#refresh-btn').disabled")
        page.wait_for_selector(f"{card} button[data-move=resolved]")
        page.click(f"{card} button[data-move=resolved]")
        page.set_input_files(
            f"#t-photo-{first['id']}",
            files=[{"name": "after.jpg", "mimeType": "image/jpeg", "buffer": photo_jpeg(800, 600)}],
        )
        page.wait_for_selector(f"{card} .thumbs img")
        page.fill(f"{card} .t-note", "已清理完毕")
        page.click(f"{card} .t-form button[type=submit]")
        q = phone.wait_outbox(lambda q: all(a["state"] != "pending" for a in q))
        assert [a["state"] for a in q] == ["done"] * 5, q
        assert status_of(city, http, first["id"]) == "resolved"
        assert (
            count(
                city,
                "SELECT count(*) FROM media_link WHERE owner_kind = 'incident' AND owner_id = :i",
                i=first["id"],
            )
            == 2  # the note's photo and the after photo
        )

        # offline: the worker accepts the second task; meanwhile the community admin
        # rejects it. Back online: a conflict, shown; the server keeps "rejected".
        page.click("#refresh-btn")
        page.wait_for_function("!document.querySelector('#refresh-btn').disabled")
        page.wait_for_selector(
            f"#task-list li[data-id='{second['id']}'] button[data-move=accepted]"
        )
        phone.context.set_offline(True)
        page.click(f"#task-list li[data-id='{second['id']}'] button[data-move=accepted]")
        r = http.post(
            f"/incidents/{second['id']}/transitions",
            json={"status": "rejected", "note": "不属网格事项"},
            headers=city.auth("community"),
        )
        assert r.status_code == 200, r.text
        phone.context.set_offline(False)
        q = phone.wait_outbox(lambda q: all(a["state"] != "pending" for a in q))
        assert q[-1]["state"] == "conflict" and q[-1]["current"]["status"] == "rejected", q[-1]
        assert status_of(city, http, second["id"]) == "rejected"
        page.click("#outbox-btn")
        shown = page.inner_text("#outbox-list li[data-state=conflict]")
        assert "冲突" in shown and "已被他人修改" in shown and "不予受理" in shown
        assert phone.overflow() == []
        phone.shot("mobile_conflict.png")
        page.click("#outbox-list li[data-state=conflict] button")
        page.wait_for_selector("#outbox-list li[data-state=conflict]", state="detached")
        page.click("#outbox-btn")

        # a report typed in GCJ-02 (as AMap shows it) lands at the WGS84 position
        from geogrid.core.crs import wgs84_to_gcj02

        lon, lat = CENTRES[GRIDS[0]]
        glon, glat = wgs84_to_gcj02(lon, lat)
        page.click("#tabs button[data-tab=report]")
        page.wait_for_function(
            "window.geogridM.M.cache.grids && document.querySelector('#gridmap canvas')"
        )
        page.wait_for_timeout(1000)  # the map frames the worker's grid
        box = page.locator("#gridmap canvas").bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        assert page.inner_text("#r-pos").startswith("地图选点")
        page.select_option("#r-category", "small_ads")
        page.locator("#report-form details summary").click()
        page.select_option("#r-crs", "gcj02")
        page.fill("#r-coords", f"{glon:.6f},{glat:.6f}")
        page.dispatch_event("#r-coords", "change")
        assert "GCJ-02" in page.inner_text("#r-pos")
        page.click("#r-submit")
        q = phone.wait_outbox(lambda q: q[-1]["kind"] == "report" and q[-1]["state"] == "done")
        typed = http.get(f"/incidents/{q[-1]['result']['id']}", headers=city.auth("admin")).json()
        assert typed["src_crs"] == "gcj02" and typed["grid_code"] == GRIDS[0]
        assert typed["lon"] == pytest.approx(lon, abs=2e-5)
        assert typed["lat"] == pytest.approx(lat, abs=2e-5)

        # the device is revoked: its next request is refused and the worker told so
        terminal = http.get(
            "/terminals", params={"account_id": city.accounts["w1"].id}, headers=city.auth("admin")
        ).json()
        mine = max(terminal, key=lambda x: x["id"])
        r = http.post(
            f"/terminals/{mine['id']}/revoke",
            json={"reason": "手机丢失"},
            headers=city.auth("admin"),
        )
        assert r.status_code in (200, 204), r.text
        page.click("#tabs button[data-tab=register]")
        page.fill("#e-result", "吊销后登记")
        page.click("#e-submit")
        page.wait_for_selector("#enrol-notice", timeout=30_000)
        assert "停用" in page.inner_text("#enrol-notice")
        q = phone.outbox()
        assert q[-1]["kind"] == "entry" and q[-1]["state"] == "pending"
        before = count(city, "SELECT count(*) FROM service_entry")
        # enrolling again sends what waited, once
        issued = http.post(
            "/terminals/enrolments",
            json={"account_id": city.accounts["w1"].id},
            headers=city.auth("admin"),
        )
        page.fill("#enrol-code", issued.json()["code"])
        page.click("#enrol-submit")
        q = phone.wait_outbox(lambda q: q[-1]["state"] == "done")
        assert count(city, "SELECT count(*) FROM service_entry") == before + 1
        assert phone.errors == [], phone.errors
    finally:
        phone.close()


def test_app_vocabulary_matches_the_server():
    """The app's service kinds and their Chinese labels are the server's
    (geogrid.core.service_register), and its statuses the lifecycle's."""
    import re

    from geogrid.core.lifecycle import STATUSES
    from geogrid.core.service_register import SERVICE_KINDS

    register = (STATIC_M / "js" / "register.js").read_text(encoding="utf-8")
    kinds = re.search(r"export const SERVICE_KINDS = \[([^\]]*)\]", register)
    assert kinds, "SERVICE_KINDS not found in register.js"
    assert re.findall(r'"(\w+)"', kinds.group(1)) == [k.code for k in SERVICE_KINDS]
    zh = (STATIC_M / "i18n" / "zh.js").read_text(encoding="utf-8")
    labels = dict(re.findall(r'^\s+(\w+): "([^"]*)",$', zh, flags=re.M))
    for k in SERVICE_KINDS:
        assert labels[f"kind_{k.code}"] == k.name_zh, k.code
    assert {s for s in STATUSES} == {k[len("status_") :] for k in labels if k.startswith("status_")}
