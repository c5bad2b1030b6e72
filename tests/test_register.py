"""The monthly register against a hand-computed month (March 2026, Asia/Shanghai)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import small_city
from small_city import CENTRES, GRIDS

from geogrid.core.register import register_frame
from geogrid.core.scope import Scope
from geogrid.core.timewindow import month_bounds
from geogrid.errors import InvalidInput
from geogrid.services import incidents as workflow
from geogrid.services.register import monthly_register

#: the scope of these tests: the whole city, personal fields clear (as the CLI)
SYSTEM = Scope.system()

CST = timezone(timedelta(hours=8))


def _t(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=CST)


# name: (reporter, grid, category, reported_at, [(status, at), ...])
# garbage has a 24 h limit, dispute 4 h. Hours to resolve in brackets.
CASES = {
    "A": ("w1", 0, "garbage", _t(3, 2, 10), [("resolved", _t(3, 2, 16))]),  # 6 on time
    "B": ("w1", 0, "garbage", _t(3, 5, 8), [("resolved", _t(3, 6, 20))]),  # 36 late
    "C": (
        "w1",
        0,
        "garbage",
        _t(3, 10, 9),
        [("resolved", _t(3, 10, 19)), ("closed", _t(3, 11, 9))],
    ),  # 10 on time, closed
    "D": ("w2", 1, "garbage", _t(3, 3, 12), [("resolved", _t(3, 4, 14))]),  # 26 late
    "E": (None, 2, "garbage", _t(3, 20, 8), [("resolved", _t(3, 20, 12))]),  # 4, resident
    "F": ("w2", 1, "garbage", _t(2, 27, 8), [("resolved", _t(3, 1, 2))]),  # Feb report, 42
    "G": ("w3", 3, "garbage", _t(3, 31, 23, 30), []),  # reported last evening of March
    # reported 1 March 07:00 local (28 Feb in UTC); resolved 1 April 00:30 local (March UTC)
    "H": ("w1", 0, "garbage", _t(3, 1, 7), [("resolved", _t(4, 1, 0, 30))]),
    "I": ("w1", 0, "garbage", _t(3, 15, 10), [("rejected", _t(3, 15, 11))]),
    "J": (
        "w1",
        0,
        "garbage",
        _t(3, 12, 8),
        [("resolved", _t(3, 12, 10)), ("in_progress", _t(3, 13, 9))],
    ),  # reopened
    "K": ("w3", 2, "dispute", _t(3, 25, 8), [("resolved", _t(3, 25, 11))]),  # 3 on time
    "L": ("w2", 1, "garbage", _t(3, 8, 8), ["escalate", ("resolved", _t(3, 8, 12))]),
}

EXPECTED_WORKERS = {
    # reported, handled, on_time, median hours
    "w1": (6, 3, 2, 10.0),  # A B C H I J reported; A B C handled
    "w2": (2, 2, 0, 34.0),  # D L reported; D F handled (L went to the community)
    "w3": (2, 2, 2, 3.5),  # G K reported (E was a resident); E K handled
}


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        for reporter, g, cat, at, steps in CASES.values():
            lon, lat = CENTRES[GRIDS[g]]
            acc = c.accounts[reporter] if reporter else None
            inc = workflow.create_incident(
                c.engine,
                category=cat,
                lon=lon,
                lat=lat,
                reported_at=at,
                reporter_id=acc.id if acc else None,
                actor=acc,
            )
            t = at
            for step in steps:
                if step == "escalate":
                    workflow.escalate(c.engine, inc["id"], at=t + timedelta(minutes=5))
                    continue
                status, when = step
                if status == "resolved" and inc["status"] == "reported":
                    for s in ("accepted", "in_progress"):
                        t = t + timedelta(minutes=10)
                        inc = workflow.transition(c.engine, inc["id"], s, at=t)
                # sending a resolution back needs a reason (issue 13, verified resolution)
                note = "返工：未清理干净" if status == "in_progress" else None
                inc = workflow.transition(c.engine, inc["id"], status, note=note, at=when)
                t = when
        yield c


@pytest.fixture(scope="module")
def client(city):
    with small_city.serve(city) as cl:
        yield cl


def test_month_bounds_are_local_time():
    s, e = month_bounds("2026-03", "Asia/Shanghai")
    assert s.isoformat() == "2026-03-01T00:00:00+08:00"
    assert e.isoformat() == "2026-04-01T00:00:00+08:00"
    with pytest.raises(InvalidInput, match="YYYY-MM"):
        month_bounds("2026-13", "Asia/Shanghai")


def test_worker_rows_match_the_hand_count(city):
    df = monthly_register(city.engine, "2026-03", "worker", scope=SYSTEM)
    assert len(df) == 3
    for key, (rep, han, ont, med) in EXPECTED_WORKERS.items():
        row = df.set_index("worker_id").loc[city.accounts[key].id]
        assert (row["reported"], row["handled"], row["on_time"]) == (rep, han, ont), key
        assert row["median_hours"] == pytest.approx(med), key
        assert row["community_code"] == "450902001001" and row["district_code"] == "450902"
    w3 = df.set_index("worker_id").loc[city.accounts["w3"].id]
    assert w3["grid_codes"] == f"{GRIDS[2]},{GRIDS[3]}"
    assert w3["on_time_rate"] == 1.0


@pytest.mark.parametrize("level", ["community", "street", "district"])
def test_rollups_sum_counts_and_recompute_medians(city, level):
    df = monthly_register(city.engine, "2026-03", level, scope=SYSTEM)
    assert len(df) == 1
    row = df.iloc[0]
    assert (
        row["code"]
        == {"community": "450902001001", "street": "450902001", "district": "450902"}[level]
    )
    assert (row["workers"], row["reported"], row["handled"], row["on_time"]) == (3, 10, 7, 4)
    # median of 6, 36, 10, 26, 42, 4, 3 — not the mean of the workers' medians (15.83)
    assert row["median_hours"] == pytest.approx(10.0)
    assert row["on_time_rate"] == pytest.approx(4 / 7)


def test_register_frame_is_pure_and_checks_the_level():
    """The core lays out rows; the service only reads them."""
    empty = register_frame(
        "2026-03",
        pd.DataFrame(columns=["worker_id", "worker_name", "ref", "grid_codes"]),
        pd.DataFrame(columns=["worker_id", "id"]),
        pd.DataFrame(columns=["worker_id", "id", "reported_at", "resolved_at", "due_at"]),
        pd.DataFrame(columns=["code", "name", "level", "parent_code"]),
        "street",
    )
    assert empty.empty and {"reported", "handled", "median_hours"} <= set(empty.columns)
    with pytest.raises(InvalidInput, match="level"):
        register_frame("2026-03", empty, empty, empty, empty, "grid")


def test_register_month_is_read_in_the_given_zone(city):
    # H: reported 1 March 07:00 CST (28 February in UTC): in March's register only in CST
    cst = monthly_register(city.engine, "2026-03", "district", tz="Asia/Shanghai", scope=SYSTEM)
    utc = monthly_register(city.engine, "2026-03", "district", tz="UTC", scope=SYSTEM)
    assert int(cst["reported"].iloc[0]) == int(utc["reported"].iloc[0]) + 1


def test_an_empty_month(city):
    df = monthly_register(city.engine, "2025-01", "community", scope=SYSTEM)
    assert (df["reported"].sum(), df["handled"].sum()) == (0, 0)
    assert np.isnan(df["median_hours"]).all()


def test_register_endpoint(city, client):
    r = client.get(
        "/register", params={"month": "2026-03", "level": "community"}, headers=city.auth("leader")
    )
    assert r.status_code == 200, r.text
    (row,) = r.json()
    assert (row["code"], row["name"], row["handled"], row["median_hours"]) == (
        "450902001001",
        "江滨社区",
        7,
        10.0,
    )
    r = client.get("/register", params={"month": "2026-03"}, headers=city.auth("leader"))
    rows = {x["worker_id"]: x for x in r.json()}
    assert rows[city.accounts["w2"].id]["on_time_rate"] == 0.0
    r = client.get("/register", params={"month": "March"}, headers=city.auth("leader"))
    assert r.status_code == 400 and r.json()["parameter"] == "month"
    r = client.get(
        "/register", params={"month": "2026-03", "level": "grid"}, headers=city.auth("leader")
    )
    assert r.status_code == 400
    assert client.get("/register", params={"month": "2026-03"}).status_code == 401
