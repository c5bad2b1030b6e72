"""The terminal's sync bundle over real HTTP on the small city (issue 13): a worker's
grids (their own and their team's), the buildings in them, their tasks, notifications
since the last sync, the categories and the people due a visit; ETag and 304."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import small_city
from small_city import CATEGORIES, CENTRES, COMMUNITY, GRIDS
from sqlalchemy import text

from geogrid.services import incidents, teams


@pytest.fixture(scope="module")
def env():
    with small_city.build() as city, small_city.serve(city) as client:
        acc = city.accounts
        team = teams.create_team(
            city.engine,
            name="一二网格",
            community_code=COMMUNITY,
            grids=[GRIDS[1]],
            actor=acc["community"],
        )
        teams.add_member(
            city.engine,
            team["id"],
            account_id=acc["w1"].id,
            role="grid_worker",
            actor=acc["community"],
        )
        with city.engine.begin() as c:
            for i, grid in enumerate(GRIDS):  # one building point in each grid
                lon, lat = CENTRES[grid]
                c.execute(
                    text(
                        "INSERT INTO building (households, population, source, geom) VALUES "
                        "(:h, :p, 'test', ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
                    ),
                    {"h": 10 + i, "p": 30 + i, "lon": lon + 0.0001, "lat": lat},
                )
        yield city, client


def _report(city, key, grid, category="garbage", hours_ago=0.0):
    lon, lat = CENTRES[grid]
    acc = city.accounts[key]
    return incidents.create_incident(
        city.engine,
        category=category,
        lon=lon,
        lat=lat,
        description="联系 13933334444",
        reported_at=datetime.now(UTC) - timedelta(hours=hours_ago),
        reporter_id=acc.id,
        actor=acc,
    )


def _building_grids(bundle):
    return sorted(f["properties"]["grid_code"] for f in bundle["buildings"]["features"])


def test_sync_bundle_of_a_worker(env):
    city, client = env
    mine = _report(city, "w1", GRIDS[0], hours_ago=30)  # overdue
    team_task = _report(city, "w2", GRIDS[1])
    other = _report(city, "w3", GRIDS[2])
    r = client.get("/sync", headers=city.auth("w1"))
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["account"]["id"] == city.accounts["w1"].id
    assert [t["name"] for t in b["account"]["teams"]] == ["一二网格"]
    # the grids: their own and their team's, as GeoJSON polygons
    assert [f["id"] for f in b["grids"]["features"]] == [GRIDS[0], GRIDS[1]]
    assert all(f["geometry"]["type"] == "MultiPolygon" for f in b["grids"]["features"])
    # the buildings in those grids only (no registry loaded: the building points)
    assert b["buildings"]["source"] == "building"
    assert _building_grids(b) == [GRIDS[0], GRIDS[1]]
    assert all(f["geometry"]["type"] == "Point" for f in b["buildings"]["features"])
    # tasks: mine (overdue, first) and the team's; not another grid's
    ids = [t["id"] for t in b["tasks"]]
    assert ids[0] == mine["id"] and b["tasks"][0]["overdue"] is True
    assert team_task["id"] in ids and other["id"] not in ids
    assert b["tasks_total"] == len(ids)
    # notifications derived for the worker only, about their tasks
    kinds = {(n["kind"], n["incident"]["id"]) for n in b["notifications"]}
    assert {
        ("assigned", mine["id"]),
        ("overdue", mine["id"]),
        ("assigned", team_task["id"]),
    } <= kinds
    assert all(n["incident"]["id"] != other["id"] for n in b["notifications"])
    assert [c["code"] for c in b["categories"]] == sorted(c[0] for c in CATEGORIES)
    assert "neighbour" in b["vocabulary"]["dispute_categories"]
    assert b["care"] == []
    assert datetime.fromisoformat(b["server_time"]) <= datetime.now(UTC)

    # nothing changed: same ETag → 304; since the last server_time: no notification
    etag = r.headers["ETag"]
    again = client.get("/sync", headers={**city.auth("w1"), "If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag
    later = client.get("/sync", params={"since": b["server_time"]}, headers=city.auth("w1")).json()
    assert later["notifications"] == []
    # a new task: a new notification since then, and a new ETag
    new = _report(city, "w1", GRIDS[0])
    r2 = client.get("/sync", params={"since": b["server_time"]}, headers=city.auth("w1"))
    assert [(n["kind"], n["incident"]["id"]) for n in r2.json()["notifications"]] == [
        ("assigned", new["id"])
    ]
    assert r2.headers["ETag"] != etag
    assert client.get("/sync").status_code == 401


def test_sync_of_others(env):
    city, client = env
    w2 = client.get("/sync", headers=city.auth("w2")).json()
    assert [f["id"] for f in w2["grids"]["features"]] == [GRIDS[1]]
    assert all(t["grid_code"] == GRIDS[1] for t in w2["tasks"])
    # the community's admin: every grid of the community; a leader: none
    com = client.get("/sync", headers=city.auth("community")).json()
    assert [f["id"] for f in com["grids"]["features"]] == GRIDS
    lead = client.get("/sync", headers=city.auth("leader")).json()
    assert lead["grids"]["features"] == [] and lead["tasks"] == [] and lead["care"] == []


def test_sync_registry_buildings_and_care(env):
    city, client = env
    with city.engine.begin() as c:
        if not c.execute(text("SELECT to_regclass('reg_care') IS NOT NULL")).scalar():
            pytest.skip("the registry's tables (revision 0009) are not there")
        for i, grid in enumerate(GRIDS):
            lon, lat = CENTRES[grid]
            codes = {"g": grid, "c": COMMUNITY, "s": COMMUNITY[:9], "d": COMMUNITY[:6]}
            c.execute(
                text(
                    "INSERT INTO reg_building (ref, name, geom, grid_code, community_code, "
                    "street_code, district_code) VALUES (:ref, :name, ST_SetSRID(ST_MakePoint("
                    ":lon, :lat), 4326), :g, :c, :s, :d)"
                ),
                {"ref": f"B{i}", "name": f"{i + 1}号楼", "lon": lon, "lat": lat, **codes},
            )
            pid = c.execute(
                text(
                    "INSERT INTO reg_person (name, sex, birth_date, id_enc, id_blind, id_mask, "
                    "grid_code, community_code, street_code, district_code) VALUES (:n, 'F', "
                    ":b, :e, :blind, '4509**********123X', :g, :c, :s, :d) RETURNING id"
                ),
                {
                    "n": f"独居老人{i}",
                    "b": date(1940, 1, 1),
                    "e": b"x",
                    "blind": bytes([i]) * 32,
                    **codes,
                },
            ).scalar_one()
            c.execute(
                text(
                    "INSERT INTO reg_care (person_id, group_code, visit_every_days, since) "
                    "VALUES (:p, 'elderly_alone', 7, :since)"
                ),
                {"p": pid, "since": date(2026, 1, 1)},
            )
    b = client.get("/sync", headers=city.auth("w1")).json()
    assert b["buildings"]["source"] == "reg_building"
    assert sorted(f["properties"]["name"] for f in b["buildings"]["features"]) == ["1号楼", "2号楼"]
    # the people due a visit in the worker's grids (their own and their team's)
    assert sorted(p["grid_code"] for p in b["care"]) == [GRIDS[0], GRIDS[1]]
    assert all("独居老人" in (p["name"] or "") for p in b["care"])
