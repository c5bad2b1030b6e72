"""Plans stored and published (geogrid.services.plans, api/routes/plans.py).

Every test module here builds the tiny city of ``tests/small_city.py`` (one community,
four 500 m grids) in its own database, adds building points and a year of incidents,
and then plans, edits, publishes. Publishing is checked for atomicity with a reader
thread, for exact re-attribution with history, for worker successors, for the 409 on a
stale plan, and for time travel.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import shapely
import small_city
from small_city import CX, CY, DX, DY, GRIDS
from sqlalchemy import text

from geogrid.errors import Conflict, TopologyError
from geogrid.services import plans
from geogrid.services.context import AppContext
from geogrid.store.units import load_units, lookup_point, resolve_version

SPLIT_X = CX - 0.75 * DX  # a vertical line cutting the west quarter off grid 001 (SW)


def add_points(engine, n_incidents: int = 3000, n_buildings: int = 300, seed: int = 7) -> None:
    """Random buildings and incidents of the last year inside the 2x2 community."""
    rng = np.random.default_rng(seed)

    def pts(n):
        return (CX + rng.uniform(-DX, DX, n) * 0.999, CY + rng.uniform(-DY, DY, n) * 0.999)

    def grid_of(x, y):
        return np.where(
            y < CY, np.where(x < CX, GRIDS[0], GRIDS[1]), np.where(x < CX, GRIDS[2], GRIDS[3])
        )

    bx, by = pts(n_buildings)
    ix, iy = pts(n_incidents)
    codes = grid_of(ix, iy)
    now = datetime.now(UTC)
    cats = ["garbage", "small_ads", "illegal_construction", "dispute"]
    with engine.begin() as conn:
        vid = conn.execute(
            text("SELECT id FROM boundary_version WHERE status = 'published'")
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO building (households, population, geom) VALUES "
                "(:h, :p, ST_SetSRID(ST_MakePoint(:x, :y), 4326))"
            ),
            [
                {"h": int(h), "p": int(h) * 3, "x": float(x), "y": float(y)}
                for h, x, y in zip(rng.integers(1, 40, n_buildings), bx, by, strict=True)
            ],
        )
        conn.execute(
            text(
                "INSERT INTO incident (category, reported_at, updated_at, status, version_id, "
                "grid_code, community_code, street_code, district_code, assigned_level, "
                "assigned_unit, geom) VALUES (:c, :t, :t, :s, :v, :g, :cc, :sc, :dc, 'grid', :g, "
                "ST_SetSRID(ST_MakePoint(:x, :y), 4326))"
            ),
            [
                {
                    "c": cats[k % 4],
                    "t": now - timedelta(days=float(d)),
                    "s": "closed" if k % 3 else "reported",
                    "v": vid,
                    "g": g,
                    "cc": small_city.COMMUNITY,
                    "sc": small_city.STREET,
                    "dc": small_city.DISTRICT,
                    "x": float(x),
                    "y": float(y),
                }
                for k, (g, x, y, d) in enumerate(
                    zip(codes, ix, iy, rng.uniform(0, 700, len(ix)), strict=True)
                )
            ],
        )


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        add_points(c.engine)
        yield c


@pytest.fixture(scope="module")
def ctx(city):
    """The service context on the city's database (its plan sessions are ``ctx.plans``)."""
    c = AppContext.open(city.url)
    yield c
    c.close()


def _split_line(x: float = SPLIT_X) -> dict:
    return {"type": "LineString", "coordinates": [[x, CY - DY - 0.001], [x, CY + 0.0001]]}


def test_plan_edit_undo_redo_and_refusal(ctx) -> None:
    p = plans.create_plan(ctx, [small_city.COMMUNITY], "undo test", author="t")
    res = plans.add_edit(ctx, p["id"], "split", {"code": GRIDS[0], "line": _split_line()})
    assert res["added"] and res["grids"] == 5
    res2 = plans.add_edit(ctx, p["id"], "merge", {"codes": [GRIDS[2], GRIDS[3]]})
    assert res2["grids"] == 4 and res2["removed"] == [GRIDS[3]]
    # a merge of grids that share no edge is refused with its reason, nothing stored
    with pytest.raises(TopologyError, match="share no edge"):
        plans.add_edit(ctx, p["id"], "merge", {"codes": [GRIDS[1], res["added"][0]]})
    assert len(plans.get_plan(ctx, p["id"])["edits"]) == 2
    assert plans.undo(ctx, p["id"])["grids"] == 5
    assert plans.undo(ctx, p["id"])["grids"] == 4
    with pytest.raises(Conflict, match="no edit to undo"):
        plans.undo(ctx, p["id"])
    assert plans.redo(ctx, p["id"])["grids"] == 5
    # replay from the database (fresh caches) gives the same coverage
    _, cov = plans.plan_coverage(ctx, p["id"])
    ctx.plans.clear()
    _, cov2 = plans.plan_coverage(ctx, p["id"])
    assert cov.grids["code"].tolist() == cov2.grids["code"].tolist()
    assert all(
        shapely.equals_exact(a, b, 0)
        for a, b in zip(cov.grids.geometry, cov2.grids.geometry, strict=True)
    )
    # a new edit drops the undone one (the redo stack)
    plans.add_edit(ctx, p["id"], "rename", {"code": GRIDS[1], "new_name": "东区"})
    plan = plans.get_plan(ctx, p["id"])
    assert [e["kind"] for e in plan["edits"]] == ["split", "rename"]
    assert not any(e["undone"] for e in plan["edits"])


def test_publish_is_atomic_reattributes_and_time_travels(city, ctx) -> None:
    eng = city.engine
    p = plans.create_plan(ctx, [small_city.COMMUNITY], "east-west", author="t")
    split = plans.add_edit(
        ctx,
        p["id"],
        "split",
        {"code": GRIDS[0], "line": _split_line(), "new_code": f"{small_city.COMMUNITY}005"},
    )
    new_code = split["added"][0]
    plans.add_edit(ctx, p["id"], "merge", {"codes": [GRIDS[2], GRIDS[3]]})
    diff = plans.diff(ctx, p["id"])
    assert {r["code"]: r["change"] for r in diff["grids"]} == {
        GRIDS[0]: "changed",
        GRIDS[2]: "changed",
        GRIDS[3]: "removed",
        new_code: "new",
    }
    _, cov = plans.plan_coverage(ctx, p["id"])
    old = load_units(eng, "grid")
    old_codes = sorted(old["code"])
    new_codes = sorted(cov.grids["code"])
    with eng.connect() as conn:
        before = {
            r[0]: r[1:]
            for r in conn.execute(
                text("SELECT id, grid_code, version_id, ST_X(geom), ST_Y(geom) FROM incident")
            )
        }
    old_vid = resolve_version(eng.connect())
    # the new grid has no worker: publishing is blocked until that is decided
    with pytest.raises(Conflict, match=f"grid {new_code} has no worker"):
        plans.publish_plan(ctx, p["id"], author="t")
    staffed = plans.set_staffing(
        ctx,
        p["id"],
        [{"action": "assign", "grid": new_code, "account_id": city.accounts["w1"].id}],
    )
    assert staffed["ready"] and not staffed["issues"]
    assert {g["code"]: [w["account_id"] for w in g["workers"]] for g in staffed["grids"]}[
        new_code
    ] == [city.accounts["w1"].id]
    t_before = datetime.now(UTC)
    time.sleep(0.05)

    seen: list = []
    stop = threading.Event()

    def reader() -> None:
        with eng.connect() as conn:
            while not stop.is_set():
                codes = conn.execute(
                    text(
                        "SELECT array_agg(code ORDER BY code) FROM unit WHERE level = 'grid' AND "
                        "version_id = (SELECT id FROM boundary_version WHERE status = 'published')"
                    )
                ).scalar_one()
                n_hist = conn.execute(
                    text("SELECT count(*) FROM incident_attribution")
                ).scalar_one()
                seen.append((tuple(codes or ()), n_hist))
                conn.commit()

    th = threading.Thread(target=reader)
    th.start()
    time.sleep(0.2)
    res = plans.publish_plan(ctx, p["id"], author="t")
    time.sleep(0.2)
    stop.set()
    th.join()
    kinds = {s[0] for s in seen}
    assert kinds == {tuple(old_codes), tuple(new_codes)}, "a reader saw a mix"
    # order: old until the commit, then new, never back
    switch = [s[0] == tuple(new_codes) for s in seen]
    assert switch == sorted(switch)

    # re-attribution: exactly the incidents whose grid changes, with their history
    new_vid = res["version_id"]
    grids = load_units(eng, "grid", version=new_vid)
    shapely.prepare(grids.geometry.values)
    expected = {}
    for iid, (_g, _v, x, y) in before.items():
        hit = [
            c
            for c, geom in zip(grids["code"], grids.geometry, strict=True)
            if shapely.intersects_xy(geom, x, y)
        ]
        expected[iid] = min(hit)
    changed = {i for i in before if expected[i] != before[i][0]}
    assert res["incidents_reattributed"] == len(changed) > 0
    with eng.connect() as conn:
        now = {
            r[0]: r[1:]
            for r in conn.execute(text("SELECT id, grid_code, version_id FROM incident"))
        }
        hist = {
            r[0]: r[1:]
            for r in conn.execute(
                text("SELECT incident_id, version_id, grid_code FROM incident_attribution")
            )
        }
    assert set(hist) == changed
    for i in before:
        assert now[i][0] == expected[i]
        assert now[i][1] == (new_vid if i in changed else before[i][1])
    for i in changed:
        assert hist[i] == (before[i][1], before[i][0])
    # workers: w1's grid was split (a decision), w3's two grids merged
    needs = {w["from"]: w for w in res["workers_needing_decision"]}
    assert GRIDS[0] in needs and "split" in needs[GRIDS[0]]["reason"]
    with eng.connect() as conn:
        w3 = conn.execute(
            text(
                "SELECT array_agg(unit_code ORDER BY unit_code) FROM "
                "account_unit WHERE account_id = :a"
            ),
            {"a": city.accounts["w3"].id},
        ).scalar_one()
    assert w3 == [GRIDS[2]]
    # time travel: the old date resolves to the old version and the old grid
    x, y = SPLIT_X - DX / 8, CY - DY / 2  # in the piece cut off
    with eng.connect() as conn:
        assert resolve_version(conn, as_of=t_before) == old_vid
        assert resolve_version(conn) == new_vid
    _, old_units = lookup_point(eng, x, y, as_of=t_before)
    _, new_units = lookup_point(eng, x, y)
    assert [u["code"] for u in old_units if u["level"] == "grid"] == [GRIDS[0]]
    assert [u["code"] for u in new_units if u["level"] == "grid"] == [new_code]
    assert plans.get_plan(ctx, p["id"])["status"] == "published"
    with pytest.raises(Conflict, match="published"):
        plans.add_edit(ctx, p["id"], "rename", {"code": GRIDS[1], "new_name": "x"})


def test_stale_plan_is_refused(ctx) -> None:
    a = plans.create_plan(ctx, [small_city.COMMUNITY], "a")
    b = plans.create_plan(ctx, [small_city.COMMUNITY], "b")
    _, cov = plans.plan_coverage(ctx, a["id"])
    code = cov.grids["code"].iloc[0]
    line = {
        "type": "LineString",
        "coordinates": [
            [float(v) for v in xy]
            for xy in shapely.get_coordinates(
                shapely.LineString([(CX - DX - 0.001, CY + DY / 3), (CX + DX + 0.001, CY + DY / 3)])
            )
        ],
    }
    geom = cov.grids.geometry.iloc[0]
    if not shapely.intersects(geom, shapely.from_geojson(str(line).replace("'", '"'))):
        code = cov.grids["code"][
            cov.grids.intersects(shapely.from_geojson(str(line).replace("'", '"')))
        ].iloc[0]
    added = plans.add_edit(ctx, a["id"], "split", {"code": code, "line": line})["added"]
    plans.set_staffing(ctx, a["id"], [{"action": "vacancy", "grid": g} for g in added])
    plans.publish_plan(ctx, a["id"])
    plans.add_edit(ctx, b["id"], "rename", {"code": GRIDS[1], "new_name": "b"})
    with pytest.raises(Conflict, match=f"changed communities {small_city.COMMUNITY}: create"):
        plans.publish_plan(ctx, b["id"])


def test_api(city) -> None:
    with small_city.serve(city) as http:
        body = {"name": "api plan", "communities": [small_city.COMMUNITY]}
        assert http.post("/plans", json=body).status_code == 401
        assert http.post("/plans", json=body, headers=city.auth("w1")).status_code == 403
        r = http.post("/plans", json=body, headers=city.auth("planner"))
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        grids = http.get(f"/plans/{pid}").json()["grids"]["features"]
        code = grids[0]["properties"]["code"]
        bad = http.post(
            f"/plans/{pid}/edits",
            headers=city.auth("planner"),
            json={
                "kind": "split",
                "params": {
                    "code": code,
                    "line": {"type": "LineString", "coordinates": [[0, 0], [0.0001, 0]]},
                },
            },
        )
        assert bad.status_code == 422
        assert bad.json()["error"] == "TopologyError" and bad.json()["findings"]
        ok = http.post(
            f"/plans/{pid}/autopartition", headers=city.auth("planner"), json={"n": 6, "cell_m": 60}
        )
        assert ok.status_code == 201, ok.text
        bal = ok.json()["balance"][small_city.COMMUNITY]
        assert bal["n"] == 6 and bal["max_min_ratio"] < 1.5
        imp = http.get(f"/plans/{pid}/impact").json()
        assert imp["plan"]["totals"]["grids"] == 6
        assert imp["plan"]["totals"]["incidents"] == imp["published"]["totals"]["incidents"]
        d = http.get(f"/plans/{pid}/diff").json()
        assert d["geojson"]["type"] == "FeatureCollection" and d["incidents"]["count"] > 0
        assert http.post(f"/plans/{pid}/undo", headers=city.auth("admin")).status_code == 200
        assert http.post(f"/plans/{pid}/redo", headers=city.auth("admin")).status_code == 200
        assert any(p["id"] == pid for p in http.get("/plans").json())
        pub = http.post(f"/plans/{pid}/publish", headers=city.auth("planner"))
        # the earlier tests of this module published other plans of this community
        assert pub.status_code in (200, 409), pub.text
