"""Terminals (issue 13): enrol a worker's phone with a one-time code, its own revocable
credential, last-seen time and app version, revocation of one device alone — over real
HTTP on the small city, and the ``geogrid terminals`` command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import small_city
from sqlalchemy import text

from geogrid.core.terminals import CODE_ALPHABET, normalize_code

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        yield c


@pytest.fixture(scope="module")
def client(city):
    with small_city.serve(city) as http:
        yield http


def _enrol(client, city, who: str = "admin", account: str = "w1", **extra):
    r = client.post(
        "/terminals/enrolments",
        json={"account_id": city.accounts[account].id, **extra},
        headers=city.auth(who),
    )
    return r


def _redeem(client, code: str, label: str, headers: dict | None = None, **extra):
    return client.post(
        "/terminals",
        json={"code": code, "label": label, "app_version": "1.0.0", **extra},
        headers=headers or {},
    )


def test_enrol_redeem_revoke_one_device_alone(client, city):
    r = _enrol(client, city)
    assert r.status_code == 201, r.text
    body = r.json()
    code = body["code"]
    assert re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}", code)
    assert set(code.replace("-", "")) <= set(CODE_ALPHABET)
    assert body["account"]["id"] == city.accounts["w1"].id
    assert body["qr_svg"].startswith("<svg") and code in body["uri"]
    # the code is stored hashed only
    with city.engine.connect() as c:
        stored = c.execute(text("SELECT code_hash FROM terminal_enrolment")).scalars().all()
    assert stored and all(code.replace("-", "") not in h for h in stored)

    # a phone types it sloppily (lower case, no dash): it works, once
    a = _redeem(client, code.replace("-", "").lower(), "phone A")
    assert a.status_code == 201, a.text
    dev_a = a.json()
    assert dev_a["account"]["units"] == [small_city.GRIDS[0]]
    again = _redeem(client, code, "phone C")
    assert again.status_code == 400 and again.json()["parameter"] == "code"
    assert "used" in again.json()["message"]

    b_code = _enrol(client, city, who="community").json()["code"]
    dev_b = _redeem(client, b_code, "phone B").json()
    ta = {"Authorization": f"Bearer {dev_a['token']}", "X-App-Version": "1.2.3"}
    tb = {"Authorization": f"Bearer {dev_b['token']}"}
    assert client.get("/incidents", headers=ta).status_code == 200
    assert client.get("/incidents", headers=tb).status_code == 200

    listed = client.get("/terminals", headers=city.auth("community")).json()
    mine = {t["id"]: t for t in listed}
    assert {dev_a["terminal_id"], dev_b["terminal_id"]} <= set(mine)
    seen_a = mine[dev_a["terminal_id"]]
    assert seen_a["label"] == "phone A" and seen_a["state"] == "active"
    assert seen_a["last_seen_at"] is not None
    # the first use writes the header's version (later ones at most once a minute)
    assert seen_a["app_version"] == "1.2.3"
    assert mine[dev_b["terminal_id"]]["app_version"] == "1.0.0"
    assert "token" not in json.dumps(listed).replace("token_", "")

    # the worker sees their own devices; a worker of another grid sees none of them
    own = client.get("/terminals", headers=city.auth("w1")).json()
    assert {t["account_id"] for t in own} == {city.accounts["w1"].id}
    other = client.get("/terminals", headers=city.auth("w2")).json()
    assert not {t["id"] for t in other} & {dev_a["terminal_id"], dev_b["terminal_id"]}
    assert client.get("/terminals", headers=city.auth("leader")).status_code == 403
    # …nor may revoke one (404: it does not exist for them)
    r = client.post(f"/terminals/{dev_a['terminal_id']}/revoke", json={}, headers=city.auth("w2"))
    assert r.status_code == 404

    r = client.post(
        f"/terminals/{dev_a['terminal_id']}/revoke",
        json={"reason": "手机丢失"},
        headers=city.auth("community"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "revoked" and r.json()["revoked_reason"] == "手机丢失"

    refused = client.get("/incidents", headers=ta)
    assert refused.status_code == 401
    err = refused.json()
    assert err["code"] == "terminal_revoked"
    assert "revoked" in err["message"] and err["terminal_id"] == dev_a["terminal_id"]
    assert client.get("/incidents", headers=tb).status_code == 200  # the other device
    assert client.get("/incidents", headers=city.auth("w1")).status_code == 200  # and the rest


def test_who_may_enrol(client, city):
    assert _enrol(client, city, who="w1").status_code == 403  # a worker cannot
    assert _enrol(client, city, who="leader").status_code == 403
    assert _enrol(client, city, who="street").status_code == 201  # their subtree
    assert _enrol(client, city, who="district", account="w3").status_code == 201
    # a unit admin enrols grid workers only
    assert _enrol(client, city, who="community", account="street").status_code in (403, 404)
    assert _enrol(client, city, who="admin", account="street").status_code == 201
    assert _enrol(client, city, ttl_minutes=0).status_code == 400
    assert client.post("/terminals/enrolments", json={"account_id": 1}).status_code == 401
    missing = client.post(
        "/terminals/enrolments", json={"account_id": 99999}, headers=city.auth("admin")
    )
    assert missing.status_code == 404


def test_bad_expired_and_retried_codes(client, city):
    for bad in ("", "ABC", "ILOU-ILOU-ILOU", "ZZZZZ-ZZZZZ"):
        r = _redeem(client, bad, "x")
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["parameter"] == "code"
    code = _enrol(client, city).json()["code"]
    with city.engine.begin() as c:
        c.execute(
            text(
                "UPDATE terminal_enrolment SET expires_at = now() - interval '1 minute' "
                "WHERE used_at IS NULL"
            )
        )
    r = _redeem(client, code, "late")
    assert r.status_code == 400 and "expired" in r.json()["message"]

    # a retry with the same Idempotency-Key (the answer was lost): the same terminal, a
    # fresh token; the first token no longer works
    code = _enrol(client, city).json()["code"]
    key = {"Idempotency-Key": "enrol-retry-1"}
    first = _redeem(client, code, "retry", headers=key).json()
    second = _redeem(client, code, "retry", headers=key)
    assert second.status_code == 201, second.text
    assert second.json()["terminal_id"] == first["terminal_id"]
    assert second.json()["token"] != first["token"]
    assert (
        client.get(
            "/incidents", headers={"Authorization": f"Bearer {second.json()['token']}"}
        ).status_code
        == 200
    )
    assert (
        client.get("/incidents", headers={"Authorization": f"Bearer {first['token']}"}).status_code
        == 401
    )


def test_normalize_code():
    assert normalize_code("abcde-fghjk") == "ABCDEFGHJK"
    assert normalize_code("0oOiIlL1 23") == "0001111123"


# --------------------------------------------------------------------------- CLI
def _cli(city, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GEOGRID_DATABASE_URL": city.url}
    return subprocess.run(
        [sys.executable, "-m", "geogrid.cli", "terminals", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_enrol_list_revoke(client, city, tmp_path):
    svg = tmp_path / "qr.svg"
    res = _cli(city, "enrol", "T-w2", "--svg", str(svg), "--base-url", "https://grid.test")
    assert res.returncode == 0, res.stderr
    code = re.search(r"([0-9A-Z]{5}-[0-9A-Z]{5})", res.stdout).group(1)
    assert svg.read_text(encoding="utf-8").startswith("<svg")
    assert "https://grid.test/m/#enrol=" in res.stdout
    dev = _redeem(client, code, "w2 phone").json()
    listing = _cli(city, "list", "--unit", small_city.GRIDS[1], "--format", "json")
    assert listing.returncode == 0, listing.stderr
    rows = json.loads(listing.stdout)
    assert [r["id"] for r in rows] == [dev["terminal_id"]]
    assert rows[0]["state"] == "active" and rows[0]["label"] == "w2 phone"
    out = _cli(city, "revoke", str(dev["terminal_id"]), "--reason", "stolen")
    assert out.returncode == 0, out.stderr
    r = client.get("/incidents", headers={"Authorization": f"Bearer {dev['token']}"})
    assert r.status_code == 401 and r.json()["code"] == "terminal_revoked"
    missing = _cli(city, "revoke", "999999")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    bad = _cli(city, "enrol", "nobody-at-all")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
