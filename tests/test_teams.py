"""Grid teams and "my tasks" over real HTTP on the small city (issue 13).

A team of the community covers a grid that is not a worker's own: the open incidents
assigned to that grid become tasks of every member (clear to them), and stop being when
the member is removed. Tasks come overdue first, then by due time, with their allowed
next statuses and ``updated_at``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import small_city
from small_city import CENTRES, COMMUNITY, GRIDS

from geogrid.core.lifecycle import allowed_transitions
from geogrid.services import incidents


@pytest.fixture(scope="module")
def env():
    with small_city.build() as city, small_city.serve(city) as client:
        yield city, client


def _report(city, key, grid, category="garbage", hours_ago=0.0, text=None):
    lon, lat = CENTRES[grid]
    acc = city.accounts[key]
    return incidents.create_incident(
        city.engine,
        category=category,
        lon=lon,
        lat=lat,
        description=text,
        reported_at=datetime.now(UTC) - timedelta(hours=hours_ago),
        reporter_id=acc.id,
        actor=acc,
    )


def test_team_management_and_permissions(env):
    city, client = env
    body = {"name": "江滨第二网格团队", "community_code": COMMUNITY, "grids": [GRIDS[1]]}
    # a worker may not manage teams; a community admin may, once per name
    r = client.post("/teams", json=body, headers=city.auth("w1"))
    assert r.status_code == 403, r.text
    r = client.post("/teams", json=body, headers=city.auth("community"))
    assert r.status_code == 201, r.text
    team = r.json()
    assert team["community_code"] == COMMUNITY
    assert [g["grid_code"] for g in team["grids"]] == [GRIDS[1]]
    assert team["grids"][0]["name"]  # the published grid's name
    assert client.post("/teams", json=body, headers=city.auth("community")).status_code == 409
    # another community is outside the community admin's units; the district's admin may
    other = {"name": "x", "community_code": "450902001002"}
    assert client.post("/teams", json=other, headers=city.auth("community")).status_code == 403
    # bad input names the parameter
    bad = {"name": "y", "community_code": COMMUNITY, "grids": ["450902001002001"]}
    r = client.post("/teams", json=bad, headers=city.auth("community"))
    assert r.status_code == 400 and r.json()["parameter"] == "grids", r.text
    r = client.post(
        "/teams", json={"name": " ", "community_code": COMMUNITY}, headers=city.auth("district")
    )
    assert r.status_code == 400 and r.json()["parameter"] == "name", r.text

    tid = team["id"]
    w1, w3 = city.accounts["w1"], city.accounts["w3"]
    r = client.post(
        f"/teams/{tid}/members",
        json={"account_id": w1.id, "role": "网格员"},
        headers=city.auth("community"),
    )
    assert r.status_code == 200, r.text
    r = client.post(
        f"/teams/{tid}/members",
        json={"account_id": w3.id, "role": "消防宣传员"},  # a community's own role
        headers=city.auth("community"),
    )
    assert r.status_code == 200, r.text
    roles = {m["account_id"]: (m["role"], m["role_label"]) for m in r.json()["members"]}
    assert roles == {
        w1.id: ("grid_worker", "网格员 grid worker"),
        w3.id: ("消防宣传员", "消防宣传员"),
    }
    # the street's admin is not an account of the community; a worker may not add
    r = client.post(
        f"/teams/{tid}/members",
        json={"account_id": city.accounts["street"].id, "role": "mediator"},
        headers=city.auth("community"),
    )
    assert r.status_code == 400 and r.json()["parameter"] == "account_id", r.text
    r = client.post(
        f"/teams/{tid}/members",
        json={"account_id": w1.id, "role": "mediator"},
        headers=city.auth("w1"),
    )
    assert r.status_code == 403
    assert (
        client.post(
            "/teams/999999/members",
            json={"account_id": w1.id, "role": "x"},
            headers=city.auth("community"),
        ).status_code
        == 404
    )

    # reads: the community admin reads names clear; a member reads their own name clear
    # and the others masked; a leader reads all masked; w2 (no team, grid not covered by
    # the team… it is: GRIDS[1] is w2's grid) sees the team covering their grid
    by = {
        k: client.get("/teams", headers=city.auth(k)).json()
        for k in ("community", "w1", "leader", "w2", "street")
    }
    names = lambda teams: {m["account_id"]: m["name"] for t in teams for m in t["members"]}  # noqa: E731
    assert names(by["community"]) == {w1.id: w1.name, w3.id: w3.name}
    assert names(by["street"]) == {w1.id: w1.name, w3.id: w3.name}
    assert names(by["w1"])[w1.id] == w1.name and names(by["w1"])[w3.id] != w3.name
    assert "*" in names(by["w1"])[w3.id]
    assert all("*" in n for n in names(by["leader"]).values())
    assert [t["id"] for t in by["w2"]] == [tid]
    assert client.get("/teams").status_code == 401


def test_tasks_route_to_team_and_order_overdue_first(env):
    city, client = env
    w1 = city.accounts["w1"]
    teams = client.get("/teams", headers=city.auth("community")).json()
    tid = teams[0]["id"]
    # w2's grid (covered by the team of w1 and w3) and w1's own grid
    team_task = _report(city, "w2", GRIDS[1], text="团队任务 联系 13911112222")
    own_overdue = _report(city, "w1", GRIDS[0], "garbage", hours_ago=30)  # due 6 h ago
    own_soon = _report(city, "w1", GRIDS[0], "small_ads", hours_ago=47)  # due in 1 h
    own_later = _report(city, "w1", GRIDS[0], "garbage", hours_ago=1)  # due in 23 h
    incidents.transition(city.engine, own_later["id"], "accepted", w1)

    r = client.get("/tasks", headers=city.auth("w1"))
    assert r.status_code == 200, r.text
    got = r.json()
    ids = [t["id"] for t in got]
    # due: 6 h ago (overdue), in 1 h, in 23 h, in 24 h
    assert ids == [own_overdue["id"], own_soon["id"], own_later["id"], team_task["id"]]
    # overdue first, then by due time
    assert got[0]["overdue"] is True and all(not t["overdue"] for t in got[1:])
    dues = [t["due_at"] for t in got[1:]]
    assert dues == sorted(dues)
    by_id = {t["id"]: t for t in got}
    assert by_id[team_task["id"]]["via"] == "team"
    assert by_id[own_overdue["id"]]["via"] in ("me", "unit")
    # the team's task is clear to its member; allowed transitions and updated_at
    assert "13911112222" in by_id[team_task["id"]]["description"]
    for t in got:
        assert t["transitions"] == allowed_transitions(t["status"])
        assert t["updated_at"]
    assert by_id[own_later["id"]]["status"] == "accepted"
    assert by_id[own_later["id"]]["transitions"] == allowed_transitions("accepted")
    assert r.headers["X-Total-Count"] == "4"
    # paging
    page = client.get("/tasks", params={"limit": 2, "offset": 1}, headers=city.auth("w1")).json()
    assert [t["id"] for t in page] == ids[1:3]
    # w3 (the other member) has the team's task too; the community admin has none of
    # these (assigned to grids, not to the community)
    w3_ids = {t["id"] for t in client.get("/tasks", headers=city.auth("w3")).json()}
    assert team_task["id"] in w3_ids and own_overdue["id"] not in w3_ids
    # a member acts on the team's task: the team's grids are in the member's scope
    tt = team_task["id"]
    assert client.get(f"/incidents/{tt}", headers=city.auth("w3")).status_code == 200
    r = client.post(
        f"/incidents/{tt}/transitions", json={"status": "accepted"}, headers=city.auth("w3")
    )
    assert r.status_code == 200, r.text
    assert client.get("/tasks", headers=city.auth("community")).json() == []
    # a closed task leaves the list
    for s in ("accepted", "in_progress", "resolved"):
        incidents.transition(city.engine, own_soon["id"], s, w1)
    ids_after = [t["id"] for t in client.get("/tasks", headers=city.auth("w1")).json()]
    assert own_soon["id"] not in ids_after
    # removing w1 from the team takes the team's task away; removing again is harmless
    r = client.delete(f"/teams/{tid}/members/{w1.id}", headers=city.auth("community"))
    assert r.status_code == 200 and w1.id not in [m["account_id"] for m in r.json()["members"]]
    assert (
        client.delete(f"/teams/{tid}/members/{w1.id}", headers=city.auth("community")).status_code
        == 200
    )
    ids_after = {t["id"] for t in client.get("/tasks", headers=city.auth("w1")).json()}
    assert team_task["id"] not in ids_after and own_overdue["id"] in ids_after
    # grids: replace the team's grids; a grid outside the community is refused
    r = client.post(
        f"/teams/{tid}/grids",
        json={"grids": [GRIDS[2]], "replace": True},
        headers=city.auth("community"),
    )
    assert r.status_code == 200 and [g["grid_code"] for g in r.json()["grids"]] == [GRIDS[2]]
    w3_ids = {t["id"] for t in client.get("/tasks", headers=city.auth("w3")).json()}
    assert team_task["id"] not in w3_ids
    r = client.post(
        f"/teams/{tid}/grids", json={"grids": ["450902001002001"]}, headers=city.auth("community")
    )
    assert r.status_code == 400
    assert client.get("/tasks").status_code == 401
