"""Disputes (矛盾纠纷) over real HTTP on the small city (issue 13): record, mediate,
close with an outcome; parties masked for city-wide readers, absent (404) for a worker of
another grid; clear reads audited; Idempotency-Key on creates."""

from __future__ import annotations

import json

import pytest
import small_city
from small_city import CENTRES, GRIDS

from geogrid.services import incidents

PARTIES = [
    {"name": "郑秀英", "phone": "13700001111", "role": "applicant"},
    {"name": "钱国强", "phone": "0775-2345678", "role": "respondent", "note": "楼上住户"},
]
CAUSE = "郑秀英家天花板漏水，与楼上钱国强协商未果"
SECRETS = ("郑秀英", "钱国强", "13700001111", "2345678", "双方当面沟通")


@pytest.fixture(scope="module")
def env():
    with small_city.build() as city, small_city.serve(city) as client:
        yield city, client


def _body(**kw):
    lon, lat = CENTRES[GRIDS[0]]
    return {
        "cause": CAUSE,
        "category": "neighbour",
        "parties": PARTIES,
        "lon": lon,
        "lat": lat,
        **kw,
    }


def test_dispute_lifecycle_and_masking(env):
    city, client = env
    key = {"Idempotency-Key": "dispute-1"}
    r = client.post("/disputes", json=_body(), headers={**city.auth("w1"), **key})
    assert r.status_code == 201, r.text
    d = r.json()
    assert (d["status"], d["grid_code"], d["category_name_zh"]) == ("open", GRIDS[0], "邻里纠纷")
    assert [p["name"] for p in d["parties"]] == ["郑秀英", "钱国强"]
    # the same key and body: the first answer; another body under the key: 409
    again = client.post("/disputes", json=_body(), headers={**city.auth("w1"), **key})
    assert again.status_code == 201 and again.json()["id"] == d["id"]
    other = client.post(
        "/disputes", json=_body(cause="另一件事"), headers={**city.auth("w1"), **key}
    )
    assert other.status_code == 409
    assert len(client.get("/disputes", headers=city.auth("w1")).json()) == 1

    did = d["id"]
    # a worker of another grid: it does not exist for them (404), not listed
    assert client.get(f"/disputes/{did}", headers=city.auth("w2")).status_code == 404
    assert client.get("/disputes", headers=city.auth("w2")).json() == []
    r = client.post(f"/disputes/{did}/sessions", json={"note": "x"}, headers=city.auth("w2"))
    assert r.status_code == 404
    # a leader reads it masked: no name, phone or note in clear anywhere
    r = client.get(f"/disputes/{did}", headers=city.auth("leader"))
    assert r.status_code == 200
    text = json.dumps(r.json(), ensure_ascii=False)
    assert not [s for s in SECRETS if s in text], text
    got = r.json()
    assert [p["name"] for p in got["parties"]] == ["郑**", "钱**"]
    assert [p["phone"] for p in got["parties"]] == ["137****1111", "077****5678"]
    assert "郑**" in got["cause"] and "钱**" in got["cause"]
    # nor may a leader act on it (read-only role): 403
    r = client.post(f"/disputes/{did}/sessions", json={"note": "x"}, headers=city.auth("leader"))
    assert r.status_code == 403
    # the community admin reads it clear, and the clear read is audited
    r = client.get(f"/disputes/{did}", headers=city.auth("community"))
    assert r.json()["parties"][0]["phone"] == "13700001111"
    trail = client.get("/audit", params={"resource": "dispute"}, headers=city.auth("admin")).json()
    reads = [a for a in trail if a["action"] == "dispute.read"]
    assert any(a["actor_id"] == city.accounts["community"].id for a in reads), trail
    assert all(a["actor_id"] != city.accounts["leader"].id for a in reads)
    assert not [s for s in SECRETS if s in json.dumps(trail, ensure_ascii=False)]

    # mediation: a session (→ mediating), then the outcome (→ agreement, closed)
    r = client.post(
        f"/disputes/{did}/sessions",
        json={"note": "双方当面沟通，同意维修", "at": "2026-05-04T10:00:00+08:00"},
        headers={**city.auth("w1"), "Idempotency-Key": "s-1"},
    )
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["session_count"]) == ("mediating", 1)
    s = r.json()["sessions"][0]
    assert s["mediator_id"] == city.accounts["w1"].id and s["note"].startswith("双方")
    r = client.post(
        f"/disputes/{did}/sessions",
        json={"note": "双方当面沟通，同意维修", "at": "2026-05-04T10:00:00+08:00"},
        headers={**city.auth("w1"), "Idempotency-Key": "s-1"},
    )
    assert r.json()["session_count"] == 1  # the retry did not add a second session
    leader_view = client.get(f"/disputes/{did}", headers=city.auth("leader")).json()
    assert leader_view["sessions"][0]["note"] == "***"
    assert leader_view["sessions"][0]["mediator_id"] == city.accounts["w1"].id
    r = client.post(
        f"/disputes/{did}/outcome",
        json={"outcome": "agreement", "note": "签订人民调解协议书"},
        headers=city.auth("w1"),
    )
    assert r.status_code == 200, r.text
    closed = r.json()
    assert (closed["status"], closed["outcome"], closed["outcome_name_zh"]) == (
        "agreement",
        "agreement",
        "签订调解协议",
    )
    assert closed["closed_at"]
    # closed: no more sessions or outcomes
    r = client.post(f"/disputes/{did}/sessions", json={"note": "再谈"}, headers=city.auth("w1"))
    assert r.status_code == 409
    r = client.post(
        f"/disputes/{did}/outcome", json={"outcome": "referred"}, headers=city.auth("w1")
    )
    assert r.status_code == 409
    listed = client.get("/disputes", params={"status": "agreement"}, headers=city.auth("w1")).json()
    assert [x["id"] for x in listed] == [did]
    assert client.get("/disputes", params={"status": "open"}, headers=city.auth("w1")).json() == []


def test_dispute_from_incident_and_bad_input(env):
    city, client = env
    w1 = city.accounts["w1"]
    lon, lat = CENTRES[GRIDS[0]]
    inc = incidents.create_incident(
        city.engine, category="dispute", lon=lon, lat=lat, reporter_id=w1.id, actor=w1
    )
    body = {"cause": "噪音扰民", "category": "邻里纠纷", "parties": [{"name": "孙某"}]}
    r = client.post("/disputes", json={**body, "incident_id": inc["id"]}, headers=city.auth("w1"))
    assert r.status_code == 201, r.text
    d = r.json()
    assert (d["incident_id"], d["grid_code"], d["category"]) == (inc["id"], GRIDS[0], "neighbour")
    assert d["lon"] == pytest.approx(lon) and d["lat"] == pytest.approx(lat)
    # settled on the spot with the session's outcome
    r = client.post(
        f"/disputes/{d['id']}/sessions",
        json={"note": "现场调解", "outcome": "resolved"},
        headers=city.auth("w1"),
    )
    assert r.status_code == 201 and r.json()["status"] == "resolved"
    listed = client.get(
        "/disputes", params={"incident_id": inc["id"]}, headers=city.auth("community")
    )
    assert [x["id"] for x in listed.json()] == [d["id"]]
    # the incident of another grid's worker does not exist for w2
    r = client.post("/disputes", json={**body, "incident_id": inc["id"]}, headers=city.auth("w2"))
    assert r.status_code == 404
    # by grid code; a worker outside their grid is refused
    r = client.post("/disputes", json={**body, "grid_code": GRIDS[1]}, headers=city.auth("w2"))
    assert r.status_code == 201 and r.json()["lon"] is None
    r = client.post("/disputes", json={**body, "grid_code": GRIDS[1]}, headers=city.auth("w1"))
    assert r.status_code == 403
    # bad input: 400 naming the parameter
    cases = [
        ({**body, "category": "war", "grid_code": GRIDS[0]}, "category"),
        (body, "lon/lat"),
        ({**body, "grid_code": "450902001001009"}, "grid_code"),
        ({**body, "lon": 110.20, "lat": 22.70}, "lon/lat"),
        (
            {**body, "grid_code": GRIDS[0], "parties": [{"name": "a", "phone": "call me"}]},
            "parties[0].phone",
        ),
        (
            {**body, "grid_code": GRIDS[0], "parties": [{"name": "a", "role": "judge"}]},
            "parties[0].role",
        ),
    ]
    cases += [
        ({**body, "grid_code": GRIDS[0], "cause": "a\x00b"}, "cause"),
        ({**body, "grid_code": "45090200100100\x00"}, "grid_code"),
    ]
    for b, parameter in cases:
        r = client.post("/disputes", json=b, headers=city.auth("w1"))
        assert r.status_code == 400, (b, r.text)
        assert r.json().get("parameter") in (parameter, f"body.{parameter}"), r.text
    r = client.post(
        "/disputes", json={**body, "parties": [], "grid_code": GRIDS[0]}, headers=city.auth("w1")
    )
    assert r.status_code == 400
    assert (
        client.post(
            f"/disputes/{d['id']}/outcome", json={"outcome": "maybe"}, headers=city.auth("w1")
        ).status_code
        == 400
    )
    r = client.get("/disputes", params={"unit": "45090200\x00"}, headers=city.auth("admin"))
    assert r.status_code == 400
    assert client.get("/disputes").status_code == 401
    assert client.get("/disputes/99999999", headers=city.auth("admin")).status_code == 404


def test_dispute_photos(env):
    """Photos uploaded with PUT /media attach to a dispute and its sessions; the file is
    served to whoever reads the dispute's parties in clear, 404 to a worker of another
    grid."""
    import hashlib
    import io

    from PIL import Image

    city, client = env
    shas = []
    for colour in ((10, 200, 30), (200, 10, 30)):
        buf = io.BytesIO()
        Image.new("RGB", (8, 6), colour).save(buf, "PNG")
        data = buf.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        r = client.put(
            f"/media/{sha}",
            content=data,
            headers={**city.auth("w1"), "Content-Type": "image/png"},
        )
        assert r.status_code in (200, 201), r.text
        shas.append(sha)
    r = client.post("/disputes", json=_body(media=[shas[0]]), headers=city.auth("w1"))
    assert r.status_code == 201, r.text
    did = r.json()["id"]
    assert [m["sha256"] for m in r.json()["media"]] == [shas[0]]
    r = client.post(
        f"/disputes/{did}/sessions",
        json={"note": "签订协议", "outcome": "agreement", "media": [shas[1]]},
        headers=city.auth("w1"),
    )
    assert r.status_code == 201, r.text
    assert sorted(m["sha256"] for m in r.json()["media"]) == sorted(shas)
    got = client.get(f"/disputes/{did}", headers=city.auth("community")).json()
    assert sorted(m["sha256"] for m in got["media"]) == sorted(shas)
    assert client.get(f"/media/{shas[1]}", headers=city.auth("community")).status_code == 200
    assert client.get(f"/media/{shas[1]}", headers=city.auth("w2")).status_code == 404
    # a file that was never uploaded is refused, naming the parameter
    r = client.post("/disputes", json=_body(media=["0" * 64]), headers=city.auth("w1"))
    assert r.status_code == 400 and r.json()["parameter"] == "media", r.text
