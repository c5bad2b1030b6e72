"""The year-end review (issue 14): scores of the small city's three workers for 2025,
computed by hand here (the load normalisation included), the ranks, the shortlist and its
tie and minimum-data rules, the Excel export, and who may read it.

The city's 2025, every incident a ``garbage`` report (effort 1, 24 h limit) by the grid's
own worker, handled by them:

=======  ======  ==========  =====================  ========================  ===========
worker   grids   incidents   on time (of handled)   satisfaction answers      evaluation
=======  ======  ==========  =====================  ========================  ===========
w1 李梅   1       4           3 of 4                 5, 5, 4                   4.5, 4.0
w2 黄强   2       1           1 of 1                 3 (partly)                —
w3 陈芳   3 + 4   2 + 1       2 of 3                 5, 4                      5.0
=======  ======  ==========  =====================  ========================  ===========

w2 has one verified complaint (−5 points); w1 an unverified one (no deduction).

Load (``geogrid.core.loadindex``, weights 0.6 incidents / 0.3 households / 0.1 area; the
four grids have equal households and, to 0.1 %, equal areas): effort per grid 4, 1, 2, 1,
mean 2, so the grids' loads are 100·(0.6·E/2 + 0.4) = 160, 70, 100, 70 and w3 carries
100 + 70 = 170.

Activity = reported + handled: 8, 2, 6. Per 100 load points: 8/1.6 = 5.0,
2/0.7 = 2.857, 6/1.7 = 3.529; the median is 3.529, so activity = min(1, rate / 3.529):
1, 0.8095, 1. (Unnormalised, w2's 2 against a median of 6 would score 0.333.)

Score = 100·Σ w·c / Σ w over the components with data (weights 0.25 activity, 0.25
handling, 0.2 satisfaction, 0.2 evaluation, 0.1 patrol; nobody patrolled) − 5·complaints:

* w1: (0.25·1 + 0.25·0.75 + 0.2·0.91667 + 0.2·0.8125) / 0.9 = 87.04
* w2: (0.25·0.80952 + 0.25·1 + 0.2·0.5) / 0.7 − 5 = 78.91 − 5 = 73.91
* w3: (0.25·1 + 0.25·0.66667 + 0.2·0.875 + 0.2·1) / 0.9 = 87.96
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import small_city
from openpyxl import load_workbook
from small_city import CENTRES, COMMUNITY, GRIDS

from geogrid.core.review import ReviewScheme, rank_workers, score_workers, shortlist
from geogrid.services import evaluation, incidents
from geogrid.services.satisfaction import record_verdict

CST = timezone(timedelta(hours=8))
T0 = datetime(2025, 3, 1, 10, 0, tzinfo=CST)
SCHEME = {"min_handled": 1, "min_satisfaction": 1, "min_evaluations": 1}
EXPECTED = {"w1": 87.04, "w2": 73.91, "w3": 87.96}


def _incident(city, key: str, grid: str, hours_to_resolve: float, n: int) -> int:
    acc = city.accounts[key]
    at = T0 + timedelta(days=n)
    lon, lat = CENTRES[grid]
    iid = incidents.create_incident(
        city.engine,
        category="garbage",
        lon=lon,
        lat=lat,
        reported_at=at,
        actor=acc,
        reporter_id=acc.id,
    )["id"]
    incidents.transition(city.engine, iid, "accepted", acc, at=at + timedelta(hours=1))
    incidents.transition(city.engine, iid, "in_progress", acc, at=at + timedelta(hours=2))
    incidents.transition(
        city.engine, iid, "resolved", acc, at=at + timedelta(hours=hours_to_resolve)
    )
    return iid


def _answer(city, iid: int, solved: str, score: int) -> None:
    with city.engine.begin() as c:
        record_verdict(
            c,
            iid,
            source="link",
            solved=solved,
            score=score,
            comment=None,
            at=datetime(2025, 3, 20, 9, tzinfo=CST),
        )


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        n = 0
        made: dict[str, list[int]] = {"w1": [], "w2": [], "w3": []}
        for key, grid, hours in [
            ("w1", GRIDS[0], 5),
            ("w1", GRIDS[0], 5),
            ("w1", GRIDS[0], 5),
            ("w1", GRIDS[0], 30),
            ("w2", GRIDS[1], 5),
            ("w3", GRIDS[2], 5),
            ("w3", GRIDS[2], 30),
            ("w3", GRIDS[3], 5),
        ]:
            made[key].append(_incident(c, key, grid, hours, n))
            n += 1
        for iid, (solved, score) in zip(
            made["w1"][:3], [("yes", 5), ("yes", 5), ("yes", 4)], strict=True
        ):
            _answer(c, iid, solved, score)
        _answer(c, made["w2"][0], "partly", 3)
        for iid, (solved, score) in zip(made["w3"][:2], [("yes", 5), ("yes", 4)], strict=True):
            _answer(c, iid, solved, score)
        admin = c.accounts["community"]
        opens, closes = datetime(2025, 6, 1, tzinfo=CST), datetime(2025, 7, 1, tzinfo=CST)
        r1 = evaluation.create_round(
            c.engine,
            admin,
            grid_code=GRIDS[0],
            label="2025 Q2",
            opens_at=opens,
            closes_at=closes,
            base_url="http://x",
        )
        r3 = evaluation.create_round(
            c.engine,
            admin,
            grid_code=GRIDS[2],
            label="2025 Q2",
            opens_at=opens,
            closes_at=closes,
            base_url="http://x",
        )
        when = datetime(2025, 6, 10, tzinfo=CST)
        crit = ("known_to_residents", "responsive", "solved_problems", "attitude")
        for tok, ref, sc in [
            (r1["token"], "A-1", (5, 5, 4, 4)),
            (r1["token"], "A-2", (4, 4, 4, 4)),
            (r3["token"], "C-1", (5, 5, 5, 5)),
        ]:
            evaluation.submit(
                c.engine, tok, household_ref=ref, scores=dict(zip(crit, sc, strict=True)), now=when
            )
        c.made = made
        yield c


@pytest.fixture(scope="module")
def client(city):
    with small_city.serve(city) as cl:
        yield cl


@pytest.fixture
def scheme(monkeypatch):
    monkeypatch.setenv("GEOGRID_REVIEW_SCHEME", json.dumps(SCHEME))


def _add_complaints(client, city) -> None:
    for key, verified in (("w2", True), ("w1", False)):
        r = client.post(
            f"/workers/{city.accounts[key].id}/records",
            json={
                "kind": "complaint",
                "title": "群众投诉",
                "at": "2025-08-01T09:00:00+08:00",
                "verified": verified,
            },
            headers=city.auth("community"),
        )
        assert r.status_code == 201, r.text


def test_scores_ranks_and_shortlist_by_hand(city, client, scheme):
    _add_complaints(client, city)
    r = client.get("/review/2025", headers=city.auth("community"))
    assert r.status_code == 200, r.text
    body = r.json()
    rows = {w["account_id"]: w for w in body["workers"]}
    ids = {k: city.accounts[k].id for k in ("w1", "w2", "w3")}
    w1, w2, w3 = (rows[ids[k]] for k in ("w1", "w2", "w3"))
    # the inputs
    assert (w1["reported"], w1["handled"], w1["on_time"]) == (4, 4, 3)
    assert (w3["reported"], w3["handled"], w3["on_time"]) == (3, 3, 2)
    assert (w1["sat_n"], w1["eval_n"], w2["eval_n"], w3["eval_n"]) == (3, 2, 0, 1)
    assert (w1["complaints"], w2["complaints"]) == (0, 1)
    # the load normalisation
    assert w1["load"] == pytest.approx(160, abs=0.1)
    assert w2["load"] == pytest.approx(70, abs=0.1)
    assert w3["load"] == pytest.approx(170, abs=0.1)
    assert body["median_activity_rate"] == pytest.approx(6 / 1.7, rel=1e-3)
    assert w2["activity"] == pytest.approx((2 / 0.7) / (6 / 1.7), rel=1e-3)
    assert w2["expected_activity"] == pytest.approx(6 / 1.7 * 0.7, rel=1e-3)
    assert w1["activity"] == 1 and w3["activity"] == 1
    # the components and scores
    assert w1["handling"] == 0.75 and w3["handling"] == pytest.approx(2 / 3)
    assert w1["satisfaction"] == pytest.approx((14 / 3 - 1) / 4)
    assert w2["satisfaction"] == pytest.approx(0.5)
    assert w1["evaluation"] == pytest.approx(0.8125) and w3["evaluation"] == 1.0
    assert w2["evaluation"] is None and w1["patrol"] is None
    assert w2["deduction"] == 5
    for key, score in EXPECTED.items():
        assert rows[ids[key]]["score"] == pytest.approx(score, abs=0.02), key
    # ranks within the community (and street, district: the same three)
    assert [w["account_id"] for w in body["workers"]] == [ids["w3"], ids["w1"], ids["w2"]]
    assert (w3["rank_community"], w1["rank_community"], w2["rank_community"]) == (1, 2, 3)
    assert w1["rank_district"] == 2
    # the shortlist: 10 % of the eligible (w1, w3; w2 has no evaluation and a complaint),
    # at least one
    assert (w1["eligible"], w2["eligible"], w3["eligible"]) == (True, False, True)
    assert body["shortlist"] == [ids["w3"]]
    # one unit: w1 alone, shortlisted in it
    one = client.get("/review/2025", params={"unit": GRIDS[0]}, headers=city.auth("admin")).json()
    assert [w["account_id"] for w in one["workers"]] == [ids["w1"]]
    assert one["workers"][0]["score"] == pytest.approx(EXPECTED["w1"], abs=0.02)
    assert one["shortlist"] == [ids["w1"]]


def test_minimum_data_rules_keep_thin_files_off(city, client):
    # the default scheme needs 5 handled incidents: nobody in this small city qualifies
    body = client.get("/review/2025", headers=city.auth("admin")).json()
    assert body["scheme"]["min_handled"] == 5
    assert body["shortlist"] == [] and not any(w["eligible"] for w in body["workers"])


def test_review_access_and_masking(city, client):
    assert client.get("/review/2025", headers=city.auth("w1")).status_code == 403
    assert client.get("/review/2025").status_code == 401
    lead = client.get("/review/2025", headers=city.auth("leader")).json()
    names = {w["name"] for w in lead["workers"]}
    assert "李梅" not in names and all("*" in n for n in names)
    assert client.get("/review/1999", headers=city.auth("admin")).status_code == 400
    bad = client.get("/review/2025.xlsx", params={"unit": "4509\t2"}, headers=city.auth("admin"))
    assert bad.status_code == 400 and bad.json()["parameter"] == "unit"
    # a unit with no workers: an empty review, not an error
    for path in ("/review/2025", "/review/2025.xlsx", "/review/2025.html"):
        r = client.get(path, params={"unit": "450903"}, headers=city.auth("admin"))
        assert r.status_code == 200, (path, r.text)
    empty = client.get("/review/2025", params={"unit": "450903"}, headers=city.auth("admin"))
    assert empty.json()["workers"] == [] and empty.json()["shortlist"] == []
    # the staff performance page: names clear for the admins, masked for leaders
    page = client.get("/review/2025.html", headers=city.auth("street"))
    assert page.status_code == 200 and "李梅" in page.text and "总分" in page.text
    page = client.get("/review/2025.html", params={"unit": GRIDS[1]}, headers=city.auth("leader"))
    assert page.status_code == 200 and "黄强" not in page.text and "陈芳" not in page.text
    assert "黄*" in page.text


def test_review_xlsx_reads_back(city, client, scheme):
    r = client.get("/review/2025.xlsx", headers=city.auth("district"))
    assert r.status_code == 200, r.text
    wb = load_workbook(io.BytesIO(r.content))
    ws = wb["评分 Scores"]
    head = [c.value for c in ws[2]]
    rows = [dict(zip(head, [c.value for c in row], strict=True)) for row in ws.iter_rows(min_row=3)]
    by_name = {row["姓名 Name"]: row for row in rows}
    assert set(by_name) == {"李梅", "黄强", "陈芳"}
    assert by_name["李梅"]["总分 Score"] == pytest.approx(EXPECTED["w1"], abs=0.02)
    assert by_name["陈芳"]["入围 Shortlisted"] is True
    assert [c.value for c in wb["入围 Shortlist"][2]][1] == "陈芳"
    method = {row[0].value: row[1].value for row in wb["方法 Method"].iter_rows(min_row=2)}
    assert method["weight.activity"] == 0.25 and method["min_handled"] == 1


# --------------------------------------------------------------------------- pure rules
def _frame(scores: list[float], sat: list[float]) -> pd.DataFrame:
    n = len(scores)
    return pd.DataFrame(
        {
            "account_id": range(1, n + 1),
            "score": scores,
            "handled": [9] * n,
            "sat_n": [5] * n,
            "eval_n": [2] * n,
            "complaints": [0] * n,
            "activity": [1.0] * n,
            "handling": [1.0] * n,
            "satisfaction": sat,
            "evaluation": [1.0] * n,
            "patrol": [np.nan] * n,
            "community_code": [COMMUNITY] * n,
            "street_code": ["s"] * n,
            "district_code": ["d"] * n,
        }
    )


def test_ties_share_ranks_and_all_enter_the_shortlist():
    df = _frame([90.0, 95.0, 90.0, 80.0, 70.0, 60.0], [0.7, 0.9, 0.8, 0.9, 0.9, 0.9])
    ranks = rank_workers(df)["rank_community"].tolist()
    assert ranks == [2, 1, 2, 4, 5, 6]  # competition ranking: 1, 2, 2, 4
    # 30 % of 6 eligible = 2 places (1.8 rounded up); the second place is a tie at 90:
    # both tied workers enter (3 on a list of 2), ordered by satisfaction (0.8 before 0.7)
    short = shortlist(df, ReviewScheme(shortlist_share=0.3))
    assert short["account_id"].tolist() == [2, 3, 1]
    assert shortlist(df, ReviewScheme(shortlist_share=0.1))["account_id"].tolist() == [2]
    # a cut between distinct scores takes exactly n
    assert shortlist(df, ReviewScheme(shortlist_share=0.5))["account_id"].tolist() == [2, 3, 1]
    assert shortlist(df, ReviewScheme(shortlist_share=0.6))["account_id"].tolist() == [2, 3, 1, 4]
    # minimum data: a complaint or too few answers keep a worker off
    df.loc[df["account_id"] == 2, "complaints"] = 1
    df.loc[df["account_id"] == 3, "sat_n"] = 2
    assert shortlist(df, ReviewScheme(shortlist_share=0.2))["account_id"].tolist() == [1]


def test_load_normalisation_is_fair_to_heavy_grids():
    """Two workers doing the expected work for their load score the same activity; the
    one in the heavier grid is not punished for the volume."""
    base = {
        "handled": [10, 20],
        "on_time": [9, 18],
        "entries": [0, 0],
        "sat_n": [0, 0],
        "sat_sum": [0.0, 0.0],
        "eval_n": [0, 0],
        "eval_sum": [0.0, 0.0],
        "patrol_n": [0, 0],
        "patrol_coverage": [np.nan, np.nan],
        "complaints": [0, 0],
    }
    df = pd.DataFrame({"account_id": [1, 2], "load": [100.0, 200.0], "reported": [10, 20], **base})
    out = score_workers(df)
    assert out["activity"].tolist() == [1.0, 1.0]
    assert out["score"].iloc[0] == out["score"].iloc[1]
    # measured in raw volume the light grid's worker would look half as active
    assert out["activity_raw"].tolist() == [20, 40]
