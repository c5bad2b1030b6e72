"""Sign-in over real HTTP: sessions in HttpOnly SameSite=Strict cookies with a CSRF header
for writes, lock-out and unlock, password change and admin reset, tokens that expire,
are revoked and rotated, the ``geogrid users`` commands, no password in any log line, and
the page's login form in a real headless Chromium.

Each module builds its own small city (tests/small_city.py) and serves it with uvicorn.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
import small_city
from small_city import GRIDS
from typer.testing import CliRunner, Result

from geogrid.cli import app as cli_app
from geogrid.core.accounts import Account
from geogrid.core.credentials import MAX_FAILED_LOGINS
from geogrid.services.accounts import TokenCache, add_user, revoke_all_tokens, set_password

PASSWORD = "river-stone-lantern-42"
ADMIN_PASSWORD = "admin-passphrase-for-tests"
CHROMIUM = "/usr/bin/chromium"


class _Collect(logging.Handler):
    """Every log record of the process (the live server runs in a thread of it)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()} {record.args!r}")


@pytest.fixture(scope="module")
def logs() -> Iterator[_Collect]:
    handler = _Collect()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


@pytest.fixture(scope="module")
def city(logs):
    with small_city.build() as c:
        set_password(c.engine, c.accounts["leader"].id, PASSWORD, username="leader")
        set_password(c.engine, c.accounts["admin"].id, ADMIN_PASSWORD, username="root")
        yield c


@pytest.fixture(scope="module")
def server(city) -> Iterator[str]:
    with small_city.serve(city) as client:
        yield str(client.base_url).rstrip("/")


def _client(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=60)


def _sign_in(base: str, username: str, password: str) -> tuple[httpx.Client, str]:
    c = _client(base)
    r = c.post("/session", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return c, r.json()["csrf_token"]


def _person(city, key: str, password: str = PASSWORD) -> str:
    """A fresh login for a new account of ``city.accounts[key]``'s role (own lock state)."""
    acc = city.accounts[key]
    name = f"{key}{len(city.tokens)}"
    _, token = add_user(
        city.engine, f"{acc.name}{name}", acc.role, acc.units, username=name, password=password
    )
    city.tokens[name] = token
    return name


# --------------------------------------------------------------------------- sessions
def test_sign_in_sets_a_strict_http_only_cookie(server):
    with _client(server) as c:
        r = c.post("/session", data={"username": "LEADER", "password": PASSWORD})
        assert r.status_code == 200, r.text
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("geogrid_session=")
        for attr in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=43200"):
            assert attr.lower() in cookie.lower(), cookie
        assert "secure" not in cookie.lower()  # plain http here; Secure over https
        body = r.json()
        assert body["account"]["username"] == "leader"
        assert body["account"]["role"] == "leader"
        assert "password" not in r.text and PASSWORD not in r.text
        who = c.get("/session").json()
        assert who["account"]["id"] == body["account"]["id"]
        assert who["csrf_token"] == body["csrf_token"]  # the page can ask again after a reload


def test_json_sign_in_and_wrong_credentials(server):
    with _client(server) as c:
        assert c.post("/session", json={"username": "leader", "password": PASSWORD}).is_success
    with _client(server) as c:
        wrong = c.post("/session", json={"username": "leader", "password": "not-the-password"})
        unknown = c.post("/session", json={"username": "nobody", "password": PASSWORD})
        for r in (wrong, unknown):
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == "Bearer"
            assert r.json()["message"] == "wrong username or password"
            assert "set-cookie" not in r.headers
        assert c.get("/session").status_code == 401
        bad = c.post("/session", json={"username": "leader", "password": "x" * 2000})
        assert bad.status_code == 400 and "xxxxxxxx" not in bad.text


def test_sign_out_ends_the_session(server):
    c, csrf = _sign_in(server, "leader", PASSWORD)
    with closing(c):
        sid = c.cookies["geogrid_session"]
        assert c.delete("/session").status_code == 403  # no CSRF header
        r = c.delete("/session", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200 and r.json()["message"] == "signed out"
        assert "geogrid_session" not in c.cookies
    with _client(server) as c2:  # the old cookie is dead server-side too
        c2.cookies.set("geogrid_session", sid)
        assert c2.get("/session").status_code == 401
        assert c2.get("/tokens").status_code == 401


def test_cookie_writes_need_the_csrf_header_bearer_writes_do_not(city, server):
    c, csrf = _sign_in(server, "leader", PASSWORD)
    with closing(c):
        assert c.get("/tokens").status_code == 200  # reads need no header
        r = c.post("/tokens", json={"days": 1, "label": "no csrf"})
        assert r.status_code == 403 and "X-CSRF-Token" in r.json()["message"]
        r = c.post("/tokens", json={"days": 1}, headers={"X-CSRF-Token": csrf + "x"})
        assert r.status_code == 403
        r = c.post("/tokens", json={"days": 1, "label": "page"}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 201, r.text
    with _client(server) as m:
        r = m.post("/tokens", json={"days": 1, "label": "machine"}, headers=city.auth("leader"))
        assert r.status_code == 201, r.text
        assert m.get("/session", headers=city.auth("leader")).json()["csrf_token"] is None


def test_lock_out_after_repeated_failures_and_unlock(city, server):
    name = _person(city, "analyst")
    with _client(server) as c:
        for _ in range(MAX_FAILED_LOGINS):
            r = c.post("/session", data={"username": name, "password": "wrong-password!"})
            assert r.status_code == 401
        r = c.post("/session", data={"username": name, "password": PASSWORD})
        assert r.status_code == 429, r.text
        assert 0 < int(r.headers["retry-after"]) <= 15 * 60
        assert "locked" in r.json()["message"] and r.json()["retry_after"] > 0
        # tokens keep working while sign-in is locked
        assert c.get("/session", headers=city.auth(name)).status_code == 200
    res = _cli(city, "users", "unlock", name)
    assert res.exit_code == 0, res.stderr
    c2, _ = _sign_in(server, name, PASSWORD)
    c2.close()


def test_change_own_password(city, server):
    name = _person(city, "planner")
    other, _ = _sign_in(server, name, PASSWORD)
    c, csrf = _sign_in(server, name, PASSWORD)
    new = "a-brand-new-passphrase"
    with closing(c), closing(other):
        h = {"X-CSRF-Token": csrf}
        wrong = c.post(
            "/session/password", json={"old_password": "nope-nope-nope", "new_password": new}
        )
        assert wrong.status_code == 403  # no CSRF header
        wrong = c.post(
            "/session/password",
            json={"old_password": "nope-nope-nope", "new_password": new},
            headers=h,
        )
        assert wrong.status_code == 403 and "current password" in wrong.json()["message"]
        weak = c.post(
            "/session/password", json={"old_password": PASSWORD, "new_password": "short"}, headers=h
        )
        assert weak.status_code == 400 and "at least 10 characters" in weak.json()["message"]
        ok = c.post(
            "/session/password", json={"old_password": PASSWORD, "new_password": new}, headers=h
        )
        assert ok.status_code == 200, ok.text
        assert c.get("/session").status_code == 200  # this session stays
        assert other.get("/session").status_code == 401  # the others end
    with _client(server) as c3:
        assert c3.post("/session", data={"username": name, "password": PASSWORD}).status_code == 401
    c4, _ = _sign_in(server, name, new)
    c4.close()


def test_admin_resets_a_password(city, server):
    name = _person(city, "leader")
    acc_id = httpx.get(f"{server}/session", headers=city.auth(name)).json()["account"]["id"]
    body = {"password": "reset-by-the-admin-1"}
    r = httpx.post(f"{server}/users/{acc_id}/password", json=body, headers=city.auth("leader"))
    assert r.status_code == 403
    # an admin signed in on the page (cookie + CSRF header)
    admin, csrf = _sign_in(server, "root", ADMIN_PASSWORD)
    with closing(admin):
        r = admin.post(f"/users/{acc_id}/password", json=body, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200, r.text
        assert r.json()["username"] == name
    c, _ = _sign_in(server, name, "reset-by-the-admin-1")
    c.close()
    missing = httpx.post(f"{server}/users/999999/password", json=body, headers=city.auth("admin"))
    assert missing.status_code == 404


# --------------------------------------------------------------------------- tokens
def test_token_expiry_revocation_and_rotation(city, server):
    h = city.auth("w1")
    with _client(server) as c:
        expired = c.post("/tokens", json={"days": 0, "label": "dead"}, headers=h).json()
        r = c.get("/session", headers={"Authorization": f"Bearer {expired['token']}"})
        assert r.status_code == 401 and "expired" in r.json()["message"]
        assert expired["state"] == "expired"

        live = c.post("/tokens", json={"days": 30, "label": "phone"}, headers=h)
        assert live.status_code == 201
        t = live.json()
        bearer = {"Authorization": f"Bearer {t['token']}"}
        assert c.get("/session", headers=bearer).json()["account"]["role"] == "worker"
        listed = {x["id"]: x for x in c.get("/tokens", headers=h).json()}
        assert listed[t["id"]]["state"] == "active" and listed[t["id"]]["last_used_at"]
        assert "token" not in listed[t["id"]]  # records only

        rot = c.post(f"/tokens/{t['id']}/rotate", json={"days": 7}, headers=bearer)
        assert rot.status_code == 201, rot.text
        new = rot.json()
        assert new["label"] == "phone" and new["id"] != t["id"]
        assert c.get("/session", headers=bearer).status_code == 401  # the old one is revoked
        new_bearer = {"Authorization": f"Bearer {new['token']}"}
        assert c.get("/session", headers=new_bearer).status_code == 200
        again = c.post(f"/tokens/{t['id']}/rotate", headers=new_bearer)
        assert again.status_code == 409

        # another worker may neither revoke nor see it; an admin may
        other = c.delete(f"/tokens/{new['id']}", headers=city.auth("w2"))
        assert other.status_code == 403
        assert (
            c.get(
                "/tokens", params={"account_id": new["account_id"]}, headers=city.auth("w2")
            ).status_code
            == 403
        )
        gone = c.delete(f"/tokens/{new['id']}", headers=city.auth("admin"))
        assert gone.status_code == 200 and gone.json()["state"] == "revoked"
        r = c.get("/session", headers=new_bearer)
        assert r.status_code == 401 and "revoked" in r.json()["message"]
        assert c.delete("/tokens/987654", headers=h).status_code == 404


# --------------------------------------------------------------------------- CLI
def _cli(city, *args: str, stdin: str | None = None) -> Result:
    """``geogrid ARGS`` in this process (tests/test_accounts.py runs it as a subprocess)."""
    return CliRunner().invoke(
        cli_app, list(args), input=stdin, env={"GEOGRID_DATABASE_URL": city.url}
    )


def test_cli_login_passwd_tokens_revoke_rotate(city, server):
    res = _cli(
        city,
        "users", "add", "赵敏", "--role", "worker", "--unit", GRIDS[2],
        "--username", "zhaomin", "--password-stdin", "--days", "30",
        stdin="first-passphrase-1\n",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert "login zhaomin" in res.stdout and "first-passphrase-1" not in res.stdout + res.stderr
    token = re.search(r"token: (\S+)", res.stdout).group(1)
    c, _ = _sign_in(server, "zhaomin", "first-passphrase-1")
    c.close()

    res = _cli(city, "users", "passwd", "zhaomin", "--password-stdin", stdin="second-phrase-22\n")
    assert res.exit_code == 0, res.stderr
    c, _ = _sign_in(server, "zhaomin", "second-phrase-22")
    c.close()
    weak = _cli(city, "users", "passwd", "zhaomin", "--password-stdin", stdin="short\n")
    assert weak.exit_code == 2 and "at least 10 characters" in weak.stderr

    listing = _cli(city, "users", "tokens", "zhaomin")
    assert (
        listing.exit_code == 0 and "first token" in listing.stdout and token not in listing.stdout
    )
    token_id = re.search(r"│\s*(\d+)\s*│", listing.stdout).group(1)
    rot = _cli(city, "users", "rotate", token_id, "--days", "5")
    assert rot.exit_code == 0, rot.stderr
    new = re.search(r"token: (\S+)", rot.stdout).group(1)
    assert (
        httpx.get(f"{server}/session", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
    assert (
        httpx.get(f"{server}/session", headers={"Authorization": f"Bearer {new}"}).status_code
        == 200
    )

    rev = _cli(city, "users", "revoke", "--all", "zhaomin")
    assert rev.exit_code == 0 and "revoked 1 token(s)" in rev.stdout, rev.stdout
    assert (
        httpx.get(f"{server}/session", headers={"Authorization": f"Bearer {new}"}).status_code
        == 401
    )
    none = _cli(city, "users", "revoke")
    assert none.exit_code == 2 and "TOKEN_ID or --all" in none.stderr
    nobody = _cli(city, "users", "unlock", "no-such-person")
    assert nobody.exit_code == 2 and "no account" in nobody.stderr


def test_a_revocation_elsewhere_empties_the_servers_token_cache(city, server):
    """Issue 10: the server keeps a checked token's account (no query per report); a
    revocation written by another process reaches it through ``geogrid_auth`` at once —
    not after the cache's lifetime (60 s while listening, 2 s without a listener)."""
    acc, token = add_user(city.engine, "缓存测试", "worker", units=[GRIDS[0]])
    bearer = {"Authorization": f"Bearer {token}"}
    with _client(server) as c:
        assert c.get("/session", headers=bearer).status_code == 200
        assert c.get("/session", headers=bearer).status_code == 200  # answered from the cache
        revoke_all_tokens(city.engine, acc.id)  # this process, not the server's
        t0 = time.monotonic()
        while c.get("/session", headers=bearer).status_code != 401:
            assert time.monotonic() - t0 < 1.0, "a revoked token still served after 1 s"
            time.sleep(0.05)


def test_token_cache_drops_an_entry_read_before_a_change():
    """An account read before a revocation and stored after the notification emptied the
    cache would be served for the cache's lifetime: it is not stored."""
    cache = TokenCache(ttl=60)
    acc = Account(id=1, name="x", role="worker", units=(), ref=None, active=True)
    before = cache.generation
    cache.clear()  # the change's notification, while the read was under way
    cache.put("h", acc, None, before)
    assert cache.get("h") is None
    cache.put("h", acc, None, cache.generation)
    assert cache.get("h") == acc


def test_token_cache_spreads_the_expiry_of_entries_stored_together():
    """Tokens first seen together (a fleet after a restart) are read again spread over the
    last quarter of the TTL, not all in the same second (issue 10)."""
    cache = TokenCache(ttl=60)
    acc = Account(id=1, name="x", role="worker", units=(), ref=None, active=True)
    t0 = time.monotonic()
    for k in range(200):
        cache.put(f"h{k}", acc, None, cache.generation)
    lives = [until - t0 for until, _, _ in cache._d.values()]
    assert all(45 - 0.5 <= life <= 60 + 0.5 for life in lives)
    assert max(lives) - min(lives) > 10  # spread, not one instant
    assert all(cache.get(f"h{k}") == acc for k in range(200))


def test_cli_users_add_refuses_a_unit_that_does_not_exist(city):
    res = _cli(city, "users", "add", "x", "--role", "community_admin", "--unit", "450902001009")
    assert res.exit_code == 2
    assert "unknown community 450902001009" in res.stderr and "Traceback" not in res.stderr


def test_no_password_in_any_log_line(city, server, logs):
    """Runs last in the module: every password used above is absent from every record."""
    secrets = [
        PASSWORD, ADMIN_PASSWORD, "a-brand-new-passphrase", "reset-by-the-admin-1",
        "not-the-password", "wrong-password!", "first-passphrase-1", "second-phrase-22",
    ]  # fmt: skip
    with _client(server) as c:
        c.post("/session", data={"username": "leader", "password": "logged-nowhere-123"})
    text = "\n".join(logs.lines)
    assert "sign-in failed" in text  # the server's log was captured
    for s in [*secrets, "logged-nowhere-123"]:
        assert s not in text
    for key, token in city.tokens.items():
        assert token not in text, key


# --------------------------------------------------------------------------- browser
@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed")
def test_page_login_form(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        try:
            page = b.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server + "/")
            page.wait_for_selector("#login-form", timeout=60_000)
            page.fill("#login-username", "leader")
            page.fill("#login-password", "wrong-password!")
            page.click("#login-submit")
            page.wait_for_selector("#login-error:not([hidden])", timeout=30_000)
            page.fill("#login-password", PASSWORD)
            page.click("#login-submit")
            page.wait_for_selector("#login-who", timeout=30_000)
            assert "领导" in page.text_content("#login-who")
            assert "geogrid_session" not in page.evaluate("document.cookie")  # HttpOnly
            cookie = next(c for c in page.context.cookies() if c["name"] == "geogrid_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            page.reload()
            page.wait_for_selector("#login-who", timeout=60_000)  # the session survives
            page.click("#login-logout")
            page.wait_for_selector("#login-form", timeout=30_000)
            assert not [c for c in page.context.cookies() if c["name"] == "geogrid_session"]
            assert not errors, errors
        finally:
            b.close()
