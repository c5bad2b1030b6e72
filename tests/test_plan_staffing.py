"""Honest publish, staffing, visible re-attribution and plan owners (issue 11 "Planners",
issue 10 item 14), on the tiny city of ``tests/small_city.py`` in its own database.

* a plan with no edits, or whose edits change nothing, is refused ("nothing to publish");
* publishing is blocked while a grid has no worker, allowed once it is staffed; a report
  in a grid left vacant on purpose goes to the community's admin;
* unchanged grids keep their ``valid_from`` and numbers; changed ones get the new one;
* each re-attributed incident has a ``reattributed`` event (old grid → new grid, version)
  in ``GET /incidents/{id}``;
* only a plan's owner, a lead planner or an admin edits or publishes it (403 naming the
  owner); anyone may read it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import small_city
from small_city import CX, CY, DX, DY, GRIDS
from sqlalchemy import text

from geogrid.errors import Conflict, Forbidden
from geogrid.services import incidents, plans
from geogrid.services.accounts import add_user
from geogrid.services.context import AppContext

COMM = small_city.COMMUNITY
#: a vertical line cutting the west quarter off grid 001 (SW)
SPLIT = {
    "type": "LineString",
    "coordinates": [[CX - 0.75 * DX, CY - DY - 0.001], [CX - 0.75 * DX, CY + 0.0001]],
}
NEW = f"{COMM}005"


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        for key, role in (("planner2", "planner"), ("lead", "lead_planner")):
            acc, token = add_user(c.engine, key, role, ref=f"T-{key}")
            c.accounts[key], c.tokens[key] = acc, token
        yield c


@pytest.fixture(scope="module")
def ctx(city):
    c = AppContext.open(city.url)
    yield c
    c.close()


def _incident_at(city, x: float, y: float) -> int:
    """An incident in the published grids at (x, y) (WGS84), stored through the service."""
    out = incidents.create_incident(
        city.engine, category="garbage", lon=x, lat=y, reported_at=datetime.now(UTC)
    )
    return int(out["id"])


def test_empty_and_no_change_plans_are_refused(city, ctx) -> None:
    p = plans.create_plan(ctx, [COMM], "empty", owner=city.accounts["planner"])
    with pytest.raises(Conflict, match="no edits: nothing to publish"):
        plans.publish_plan(ctx, p["id"], actor=city.accounts["planner"])
    # an edit and its undo: still nothing
    plans.add_edit(ctx, p["id"], "rename", {"code": GRIDS[1], "new_name": "x"})
    plans.undo(ctx, p["id"])
    with pytest.raises(Conflict, match="nothing to publish"):
        plans.publish_plan(ctx, p["id"])
    # a rename back to the same name changes no grid
    name = plans.get_staffing(ctx, p["id"])["grids"][1]["name"]
    plans.add_edit(ctx, p["id"], "rename", {"code": GRIDS[1], "new_name": name})
    with pytest.raises(Conflict, match="changes no grid"):
        plans.publish_plan(ctx, p["id"])
    with small_city.serve(city) as http:
        q = http.post(
            "/plans", json={"name": "e", "communities": [COMM]}, headers=city.auth("planner")
        )
        r = http.post(f"/plans/{q.json()['id']}/publish", headers=city.auth("planner"))
        assert r.status_code == 409
        assert r.json()["error"] == "Conflict" and "nothing to publish" in r.json()["message"]


def test_owners(city, ctx) -> None:
    with small_city.serve(city) as http:
        r = http.post(
            "/plans", json={"name": "mine", "communities": [COMM]}, headers=city.auth("planner")
        )
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        assert r.json()["owner_id"] == city.accounts["planner"].id
        assert r.json()["owner"] == "T-planner"
        rename = {"kind": "rename", "params": {"code": GRIDS[1], "new_name": "东"}}
        other = http.post(f"/plans/{pid}/edits", json=rename, headers=city.auth("planner2"))
        assert other.status_code == 403
        assert "belongs to T-planner" in other.json()["message"]
        for path in ("undo", "publish"):
            assert (
                http.post(f"/plans/{pid}/{path}", headers=city.auth("planner2")).status_code == 403
            )
        decisions = {"decisions": [{"action": "vacancy", "grid": GRIDS[1]}]}
        assert (
            http.put(f"/plans/{pid}/staffing", json=decisions, headers=city.auth("planner2"))
        ).status_code == 403
        # others may read
        assert http.get(f"/plans/{pid}").status_code == 200
        assert http.get(f"/plans/{pid}/staffing").status_code == 200
        # the owner, a lead planner and an admin may edit
        for key in ("planner", "lead", "admin"):
            ok = http.post(f"/plans/{pid}/edits", json=rename, headers=city.auth(key))
            assert ok.status_code == 201, (key, ok.text)
    with pytest.raises(Forbidden, match="T-planner"):
        plans.undo(ctx, pid, actor=city.accounts["planner2"])
    plans.delete_plan(ctx, pid, actor=city.accounts["lead"])


def test_staffing_blocks_publish_until_decided_and_history_shows_reattribution(city, ctx) -> None:
    eng = city.engine
    # an incident in the piece of grid 001 that the split cuts off
    moved = _incident_at(city, CX - 0.9 * DX, CY - DY / 2)
    stays = _incident_at(city, CX + DX / 2, CY - DY / 2)  # grid 002, unchanged
    with eng.connect() as conn:
        before = dict(
            conn.execute(
                text(
                    "SELECT u.code, coalesce(u.valid_from, v.published_at) FROM unit u JOIN "
                    "boundary_version v ON v.id = u.version_id WHERE v.status = 'published'"
                )
            ).all()
        )
        old_numbers = conn.execute(
            text(
                "SELECT households, population FROM unit u JOIN boundary_version v ON "
                "v.id = u.version_id WHERE v.status = 'published' AND u.code = :c"
            ),
            {"c": GRIDS[1]},
        ).one()
    planner = city.accounts["planner"]
    p = plans.create_plan(ctx, [COMM], "split west", owner=planner)
    plans.add_edit(ctx, p["id"], "split", {"code": GRIDS[0], "line": SPLIT, "new_code": NEW})
    # the preview shows every grid's workers after the plan, and the new grid has none
    d = plans.diff(ctx, p["id"])
    staffing = {g["code"]: g["workers"] for g in d["staffing"]["grids"]}
    assert staffing[NEW] == [] and [w["account_id"] for w in staffing[GRIDS[0]]] == [
        city.accounts["w1"].id
    ]
    assert not d["staffing"]["ready"]
    assert d["staffing"]["issues"][0]["kind"] == "grid_without_worker"
    assert plans.impact(ctx, p["id"])["staffing"]["ready"] is False
    with pytest.raises(Conflict, match=f"grid {NEW} has no worker"):
        plans.publish_plan(ctx, p["id"], actor=planner)
    with small_city.serve(city) as http:
        r = http.post(f"/plans/{p['id']}/publish", headers=city.auth("planner"))
        assert r.status_code == 409 and "staffing" in r.json()["message"]
        bad = http.put(
            f"/plans/{p['id']}/staffing",
            json={"decisions": [{"action": "vacancy", "grid": "nope"}]},
            headers=city.auth("planner"),
        )
        assert bad.status_code == 400 and bad.json()["parameter"] == "decisions[0].grid"
        ok = http.put(
            f"/plans/{p['id']}/staffing",
            json={"decisions": [{"action": "vacancy", "grid": NEW}]},
            headers=city.auth("planner"),
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["ready"] and ok.json()["issues"] == []
        pub = http.post(f"/plans/{p['id']}/publish", headers=city.auth("planner"))
        assert pub.status_code == 200, pub.text
        res = pub.json()
        assert res["grids_changed"] == 2 and res["grids_unchanged"] == 3
        assert res["incidents_reattributed"] >= 1
        # the moved incident's history shows the re-attribution
        inc = http.get(f"/incidents/{moved}", headers=city.auth("admin")).json()
        ev = [e for e in inc["history"] if e["kind"] == "reattributed"]
        assert len(ev) == 1
        assert ev[0]["data"]["from_grid"] == GRIDS[0] and ev[0]["data"]["to_grid"] == NEW
        assert ev[0]["data"]["version"] == res["version_id"]
        assert inc["grid_code"] == NEW
        kept = http.get(f"/incidents/{stays}", headers=city.auth("admin")).json()
        assert not [e for e in kept["history"] if e["kind"] == "reattributed"]
    with eng.connect() as conn:
        after = dict(
            conn.execute(
                text(
                    "SELECT u.code, coalesce(u.valid_from, v.published_at) FROM unit u JOIN "
                    "boundary_version v ON v.id = u.version_id WHERE v.status = 'published'"
                )
            ).all()
        )
        numbers = conn.execute(
            text(
                "SELECT households, population FROM unit u JOIN boundary_version v ON "
                "v.id = u.version_id WHERE v.status = 'published' AND u.code = :c"
            ),
            {"c": GRIDS[1]},
        ).one()
    for code in (GRIDS[1], GRIDS[2], GRIDS[3], COMM, small_city.STREET):
        assert after[code] == before[code], code
    assert after[GRIDS[0]] > before[GRIDS[0]] and after[NEW] > before[GRIDS[0]]
    assert tuple(numbers) == tuple(old_numbers)
    # a report in the vacant grid goes to the community's admin
    rep = incidents.create_incident(
        eng, category="garbage", lon=CX - 0.9 * DX, lat=CY - DY / 2, reported_at=datetime.now(UTC)
    )
    assert rep["grid_code"] == NEW
    assert rep["assigned_level"] == "community" and rep["assigned_unit"] == COMM
    assert rep["assignee_id"] == city.accounts["community"].id


def test_staffing_decisions_move_and_release(city, ctx) -> None:
    planner = city.accounts["planner"]
    p = plans.create_plan(ctx, [COMM], "merge", owner=planner)
    plans.add_edit(ctx, p["id"], "merge", {"codes": [GRIDS[2], GRIDS[3]]})
    w3 = city.accounts["w3"].id
    s = plans.get_staffing(ctx, p["id"])
    assert {w["account_id"]: w["after"] for w in s["workers"]}[w3] == [GRIDS[2]]
    s = plans.set_staffing(ctx, p["id"], [{"action": "release", "account_id": w3}], actor=planner)
    grids = {g["code"]: g for g in s["grids"]}
    assert grids[GRIDS[2]]["workers"] == [] and not s["ready"]
    s = plans.set_staffing(
        ctx,
        p["id"],
        [
            {"action": "release", "account_id": w3},
            {"action": "move", "account_id": city.accounts["w2"].id, "grid": GRIDS[2]},
        ],
        actor=planner,
    )
    # w2 moved away from 002: now 002 has no worker
    assert [i["grid"] for i in s["issues"]] == [GRIDS[1]]
