"""Residents close the loop (issue 14), end to end over HTTP on the small city.

An incident resolved → the resident's link answered "not solved" → reopened with the
comment → resolved again → "solved, 5" → closed; the follow-up queue samples it by rule;
satisfaction appears in the grid's metrics; a link answered twice, an expired link and a
forged link are refused; the public forms are rate-limited; an evaluation round takes one
answer per household without storing the identifier in clear.
"""

from __future__ import annotations

import httpx
import pytest
import small_city
from conftest import LiveServer
from small_city import CENTRES, GRIDS
from sqlalchemy import text

from geogrid.core.satisfaction import sampled
from geogrid.settings import Settings

LON, LAT = CENTRES[GRIDS[0]]
COMMENT = "垃圾还在楼下，没有清走"


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        yield c


@pytest.fixture(scope="module")
def client(city):
    with small_city.serve(city) as cl:
        yield cl


def _report(client, city, key: str = "w1", category: str = "garbage", where=(LON, LAT)) -> int:
    r = client.post(
        "/incidents",
        json={"category": category, "lon": where[0], "lat": where[1], "description": "楼下垃圾"},
        headers=city.auth(key),
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _move(client, city, iid: int, *statuses: str, key: str = "w1") -> dict:
    body = {}
    for s in statuses:
        r = client.post(f"/incidents/{iid}/transitions", json={"status": s}, headers=city.auth(key))
        assert r.status_code == 200, r.text
        body = r.json()
    return body


def _link(client, city, iid: int, key: str = "w1") -> dict:
    r = client.post(f"/incidents/{iid}/satisfaction-link", headers=city.auth(key))
    assert r.status_code == 201, r.text
    return r.json()


def _metrics(client, level: str) -> dict[str, dict]:
    r = client.get(f"/metrics/{level}", params={"format": "json"})
    assert r.status_code == 200, r.text
    return {u["code"]: u for u in r.json()["units"]}


def _links(city, iid: int) -> list[dict]:
    with city.engine.connect() as c:
        return [
            dict(r)
            for r in c.execute(
                text("SELECT * FROM survey_link WHERE incident_id = :i ORDER BY id"), {"i": iid}
            ).mappings()
        ]


def test_resolved_reopened_by_the_resident_then_closed(city, client):
    iid = _report(client, city)
    _move(client, city, iid, "accepted", "in_progress", "resolved")
    # resolving made a link at once (its token is only a hash in the table)
    first = _links(city, iid)
    assert len(first) == 1 and len(first[0]["token_hash"]) == 64
    link = _link(client, city, iid)
    assert link["url"].endswith("/s/" + link["token"]) and "<svg" in link["qr_svg"]
    rows = _links(city, iid)
    assert rows[0]["revoked_at"] is not None and rows[1]["revoked_at"] is None
    assert link["token"] not in str(rows)  # stored as SHA-256 only

    # the public page and its JSON, no account
    page = client.get("/s/" + link["token"])
    assert page.status_code == 200 and "满意度" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    info = client.get("/satisfaction/" + link["token"]).json()
    assert info["incident_id"] == iid and info["category_zh"] == "垃圾乱堆乱放"
    assert info["answered"] is False and set(info["choices"]) == {"yes", "partly", "no"}

    # "not solved" reopens it with the comment in its history, as a public note
    r = client.post(
        "/satisfaction/" + link["token"], json={"solved": "no", "score": 2, "comment": COMMENT}
    )
    assert r.status_code == 200, r.text
    assert r.json()["verdict"] == "reopen" and r.json()["status"] == "in_progress"
    inc = client.get(f"/incidents/{iid}", headers=city.auth("w1")).json()
    assert inc["status"] == "in_progress"
    kinds = [(e["kind"], e.get("from_status"), e.get("to_status")) for e in inc["history"]]
    assert ("status", "resolved", "in_progress") in kinds
    assert any(e["kind"] == "satisfaction" and e["note"] == COMMENT for e in inc["history"])
    o311 = client.get(f"/open311/v2/requests/{iid}.json").json()[0]
    assert COMMENT in o311["status_notes"] and o311["status"] == "open"

    # a retry carrying an Idempotency-Key that the first try did not carry: a second answer
    retry = client.post(
        "/satisfaction/" + link["token"],
        json={"solved": "no", "score": 2, "comment": COMMENT},
        headers={"Idempotency-Key": "resident-retry-1"},
    )
    assert retry.status_code == 409
    # answered twice: refused
    again = client.post("/satisfaction/" + link["token"], json={"solved": "yes", "score": 5})
    assert again.status_code == 409 and again.json()["error"] == "LinkAnswered"
    assert "answered already" in again.json()["message"]

    # resolved again → "solved, 5" → closed (the resident verifies the resolution)
    _move(client, city, iid, "resolved")
    link2 = _link(client, city, iid)
    key = {"Idempotency-Key": "resident-answer-2"}
    r = client.post(
        "/satisfaction/" + link2["token"], json={"solved": "yes", "score": 5}, headers=key
    )
    assert r.status_code == 200, r.text
    # the phone lost the answer and retries with its key: the first answer again, no 409
    replay = client.post(
        "/satisfaction/" + link2["token"], json={"solved": "yes", "score": 5}, headers=key
    )
    assert replay.status_code == 200 and replay.json() == r.json()
    assert r.json() == {
        "incident_id": iid,
        "solved": "yes",
        "score": 5,
        "verdict": "close",
        "status": "closed",
    }
    with city.engine.connect() as c:
        sat = c.execute(
            text(
                "SELECT solved, score, answers, grid_code FROM satisfaction WHERE incident_id = :i"
            ),
            {"i": iid},
        ).one()
    assert tuple(sat) == ("yes", 5, 2, GRIDS[0])

    # the follow-up queue has it: every dissatisfied answer is followed up
    q = client.get("/follow-ups", headers=city.auth("community"))
    assert q.status_code == 200, q.text
    mine = [f for f in q.json() if f["incident_id"] == iid]
    assert [f["reason"] for f in mine] == ["dissatisfied"]
    assert mine[0]["resident_solved"] == "yes" and mine[0]["resident_score"] == 5
    assert client.get("/follow-ups", headers=city.auth("w1")).status_code == 403
    done = client.post(
        f"/follow-ups/{mine[0]['id']}",
        json={"reached": True, "satisfied": True, "score": 4, "note": "电话回访，已清理"},
        headers=city.auth("community"),
    )
    assert done.status_code == 200, done.text
    assert done.json()["score"] == 4 and done.json()["status"] == "closed"
    twice = client.post(
        f"/follow-ups/{mine[0]['id']}", json={"reached": False}, headers=city.auth("community")
    )
    assert twice.status_code == 409

    # the grid's metrics carry the satisfaction (the follow-up call is the latest verdict)
    feats = _metrics(client, "grid")
    assert feats[GRIDS[0]]["satisfaction"] == pytest.approx(4.0)
    assert feats[GRIDS[0]]["satisfaction_answers"] == 1
    up = _metrics(client, "community")
    assert up[small_city.COMMUNITY]["satisfaction"] == pytest.approx(4.0)


def test_follow_up_sampling_is_by_rule(city, client):
    """Closed incidents: every dispute, and the hash sample (10 %) of the others."""
    ids = []
    for _ in range(12):
        iid = _report(client, city)
        _move(client, city, iid, "accepted", "in_progress", "resolved")
        _move(client, city, iid, "closed", key="community")
        ids.append(iid)
    dispute = _report(client, city, category="dispute")
    _move(client, city, dispute, "accepted", "in_progress", "resolved")
    _move(client, city, dispute, "closed", key="community")
    q = client.get("/follow-ups", headers=city.auth("district")).json()
    queued = {f["incident_id"]: f["reason"] for f in q}
    assert queued[dispute] == "dispute"
    expect = {i for i in ids if sampled(i, 0.10)}
    assert {i for i in ids if queued.get(i) == "sample"} == expect
    # reproducible: asking again queues nothing new
    q2 = client.get("/follow-ups", headers=city.auth("district")).json()
    assert sorted(f["id"] for f in q2) == sorted(f["id"] for f in q)


def test_expired_forged_and_replaced_links_are_refused(city, client):
    iid = _report(client, city)
    _move(client, city, iid, "accepted", "in_progress", "resolved")
    old = _link(client, city, iid)
    new = _link(client, city, iid)
    r = client.get("/satisfaction/" + old["token"])
    assert r.status_code == 409 and r.json()["error"] == "LinkExpired"
    assert "replaced" in r.json()["message"]
    with city.engine.begin() as c:
        c.execute(
            text(
                "UPDATE survey_link SET expires_at = now() - interval '1 day' WHERE incident_id = :i"
            ),
            {"i": iid},
        )
    r = client.post("/satisfaction/" + new["token"], json={"solved": "yes", "score": 5})
    assert r.status_code == 409 and "expired" in r.json()["message"]
    forged = new["token"][:-4] + ("AAAA" if not new["token"].endswith("AAAA") else "BBBB")
    r = client.post("/satisfaction/" + forged, json={"solved": "yes", "score": 5})
    assert r.status_code == 404 and "does not exist" in r.json()["message"]
    assert client.get("/s/" + forged).status_code == 200  # the page itself says so
    bad = client.post("/satisfaction/" + new["token"], json={"solved": "maybe", "score": 9})
    assert bad.status_code in (400, 409)
    # a link only for resolved or closed incidents
    open_one = _report(client, city)
    r = client.post(f"/incidents/{open_one}/satisfaction-link", headers=city.auth("w1"))
    assert r.status_code == 409
    # a worker of another grid does not see it
    r = client.post(f"/incidents/{iid}/satisfaction-link", headers=city.auth("w2"))
    assert r.status_code == 404


def test_public_forms_are_rate_limited(city):
    limits = {"cheap": "1000/second", "standard": "1000/second", "expensive": "1000/second"}
    srv = LiveServer(
        city.url,
        Settings(
            rate_limits=True,
            # per hour: the sliding-window counter weighs the previous window by the time
            # left of it, so right after a minute's boundary 5 hits of the last minute
            # weigh 4.9 and a sixth passes (a flake of ~2 s in 60 with "5/minute")
            rate_limits_anonymous={**limits, "public_form": "5/hour"},
            rate_limits_account=limits,
        ),
    )
    try:
        with httpx.Client(base_url=srv.base, timeout=30) as cl:
            codes = [cl.get("/satisfaction/" + "y" * 43).status_code for _ in range(7)]
            assert codes[:5] == [404] * 5 and codes[5:] == [429, 429]
            r = cl.get("/e/" + "y" * 43)
            assert r.status_code == 429 and "Retry-After" in r.headers
            # other anonymous requests are not limited by the forms' class
            assert cl.get("/open311/v2/services.json").status_code == 200
    finally:
        srv.stop()


def test_evaluation_round_one_answer_per_household(city, client):
    r = client.post(
        "/evaluation-rounds",
        json={"grid_code": GRIDS[0], "label": "2026年第四季度"},
        headers=city.auth("community"),
    )
    assert r.status_code == 201, r.text
    rnd = r.json()
    assert rnd["worker_ids"] == [city.accounts["w1"].id]
    assert set(rnd["criteria"]) == {
        "known_to_residents",
        "responsive",
        "solved_problems",
        "attitude",
    }
    token = rnd["token"]
    assert client.get("/e/" + token).status_code == 200
    pub = client.get("/evaluations/" + token).json()
    assert pub["open"] is True and pub["grid_name"] == "江滨社区第1网格"
    scores = {"known_to_residents": 5, "responsive": 4, "solved_problems": 4, "attitude": 5}
    ok = client.post("/evaluations/" + token, json={"household_ref": "YL-0001", "scores": scores})
    assert ok.status_code == 201, ok.text
    assert ok.json()["mean_score"] == 4.5
    key = {"Idempotency-Key": "household-retry-1"}
    first = client.post(
        "/evaluations/" + token, json={"household_ref": "YL-0003", "scores": scores}, headers=key
    )
    again = client.post(
        "/evaluations/" + token, json={"household_ref": "YL-0003", "scores": scores}, headers=key
    )
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    dup = client.post(
        "/evaluations/" + token, json={"household_ref": " yl-000 1", "scores": scores}
    )
    assert dup.status_code == 409 and "one answer per household" in dup.json()["message"]
    phone = client.post(
        "/evaluations/" + token,
        json={"phone": "+86 139-0000-1111", "scores": {**scores, "attitude": 3}},
    )
    assert phone.status_code == 201
    dup_phone = client.post(
        "/evaluations/" + token, json={"phone": "13900001111", "scores": scores}
    )
    assert dup_phone.status_code == 409
    paper = client.post(
        f"/evaluation-rounds/{rnd['id']}/paper",
        json={"household_ref": "YL-0002", "scores": scores, "comment": "纸质表"},
        headers=city.auth("community"),
    )
    assert paper.status_code == 201 and paper.json()["source"] == "paper"
    paper_dup = client.post(
        f"/evaluation-rounds/{rnd['id']}/paper",
        json={"household_ref": "yl-0002", "scores": scores},
        headers=city.auth("community"),
    )
    assert paper_dup.status_code == 409
    missing = client.post(
        "/evaluations/" + token, json={"household_ref": "YL-9", "scores": {"attitude": 5}}
    )
    assert missing.status_code == 400
    # the table: three answers, 32-byte voter hashes, no identifier in any column
    with city.engine.connect() as c:
        rows = [dict(x) for x in c.execute(text("SELECT * FROM evaluation_answer")).mappings()]
        dump = c.execute(text("SELECT string_agg(t::text, '|') FROM evaluation_answer t")).scalar()
        rdump = c.execute(text("SELECT string_agg(t::text, '|') FROM evaluation_round t")).scalar()
    assert len(rows) == 4 and all(len(bytes(x["voter_hash"])) == 32 for x in rows)
    assert len({bytes(x["voter_hash"]) for x in rows}) == 4
    for secret in ("YL-0001", "YL-0002", "YL-0003", "yl-000", "13900001111", "139-0000-1111"):
        assert secret.lower() not in dump.lower() and secret.lower() not in rdump.lower()
    assert token not in rdump
    listed = client.get("/evaluation-rounds", headers=city.auth("community")).json()
    mine = next(x for x in listed if x["id"] == rnd["id"])
    assert mine["answers"] == 4
    assert mine["criterion_means"]["attitude"] == pytest.approx((5 + 5 + 3 + 5) / 4)
    assert client.get("/evaluation-rounds", headers=city.auth("w1")).status_code == 403
    # the grid's evaluation metric
    feats = _metrics(client, "grid")
    assert feats[GRIDS[0]]["evaluation_score"] == pytest.approx((4.5 + 4.5 + 4.0 + 4.5) / 4)
