"""The care list of one test grid (issue 15): the people overdue for a visit match a hand
count, before and after register entries are added.

The small registry (tests/small_registry.py) puts three people of the first grid in care
groups, all joined on 2026-01-01:

====  =====================================  ======  ==================================
who   groups                                 every   household (index in the grid)
====  =====================================  ======  ==================================
p0    elderly living alone                   7 days  0 (shared with p3)
p1    low income, disability                 14      1 (strictest group counts)
p2    left-behind child                      14      2
====  =====================================  ======  ==================================

On 2026-03-01, before any visit, all three are overdue. Then the service register gets:

* 2026-02-22, naming p0 → p0 due 2026-03-01: due today, **not** overdue;
* 2026-02-10, for p1's household (no names) → p1 due 02-24: overdue 5 days;
* 2026-01-05, naming p2 and p4 → p2 due 01-19: overdue 41 days;

(entries recorded through the service register, :func:`geogrid.services.service_register.record_entry`)
* 2026-02-28, naming p3 (p0's housemate, not in a care group: a visit naming someone else
  is not p0's) and 2026-02-27 for a household of the second grid — neither changes anyone's
  last visit here.

So 2 overdue (p1, p2) by hand.
"""

from __future__ import annotations

import base64
import datetime as dt

import httpx
import pytest
import small_city
import small_registry as sr
from conftest import LiveServer
from small_city import GRIDS
from sqlalchemy import text

from geogrid.core.accounts import Account
from geogrid.core.scope import Scope
from geogrid.errors import Forbidden, InvalidInput
from geogrid.services.registry_care import care_list, grid_care
from geogrid.services.service_register import record_entry
from geogrid.settings import Settings

KEY = base64.b64encode(bytes(range(7, 39))).decode()
TODAY = dt.date(2026, 3, 1)
GRID = GRIDS[0]


@pytest.fixture(scope="module")
def world():
    settings = Settings(registry_key=KEY)
    with small_city.build() as city:
        reg = sr.load(city.engine, settings)
        yield city, reg, settings


def _entry(city, day: dt.date, *, person_ids=None, household_id=None, grid=GRID) -> None:
    """A visit recorded through the service register (TERM-B's service), by the grid's
    worker."""
    worker = "w1" if grid == GRID else "w2"
    record_entry(
        city.engine,
        actor=city.accounts[worker],
        day=day,
        kind="visit",
        result="走访",
        household_id=household_id,
        person_ids=person_ids,
    )


def test_overdue_matches_a_hand_count(world):
    city, reg, settings = world
    w1 = Scope.of(city.accounts["w1"])
    p = {i: reg.people[(GRID, i)] for i in range(sr.PEOPLE[GRID])}
    care_ids = {p[0].id, p[1].id, p[2].id}

    before = grid_care(city.engine, w1, GRID, today=TODAY, settings=settings)
    assert {r["person_id"] for r in before["people"]} == care_ids
    assert before["overdue"] == 3 and before["total"] == 3
    assert all(r["last_visit"] is None for r in before["people"])
    due = {r["person_id"]: r["due"] for r in before["people"]}
    assert due == {
        p[0].id: dt.date(2026, 1, 8),
        p[1].id: dt.date(2026, 1, 15),
        p[2].id: dt.date(2026, 1, 15),
    }

    _entry(city, dt.date(2026, 2, 22), person_ids=[p[0].id])
    _entry(city, dt.date(2026, 2, 10), household_id=reg.households[(GRID, 1)])
    _entry(city, dt.date(2026, 1, 5), person_ids=[p[2].id, p[4].id])
    _entry(city, dt.date(2026, 2, 28), person_ids=[p[3].id])
    _entry(city, dt.date(2026, 2, 27), household_id=reg.households[(GRIDS[1], 0)], grid=GRIDS[1])

    after = grid_care(city.engine, w1, GRID, today=TODAY, settings=settings)
    rows = {r["person_id"]: r for r in after["people"]}
    assert after["overdue"] == 2
    assert {i for i, r in rows.items() if r["overdue"]} == {p[1].id, p[2].id}
    assert rows[p[0].id]["last_visit"] == dt.date(2026, 2, 22)
    assert rows[p[0].id]["due"] == TODAY and not rows[p[0].id]["overdue"]
    assert rows[p[1].id]["last_visit"] == dt.date(2026, 2, 10)
    assert rows[p[1].id]["visit_every_days"] == 14 and rows[p[1].id]["days_overdue"] == 5
    assert rows[p[2].id]["last_visit"] == dt.date(2026, 1, 5)
    assert rows[p[2].id]["days_overdue"] == 41
    # overdue first, longest overdue first
    assert [r["person_id"] for r in after["people"]] == [p[2].id, p[1].id, p[0].id]
    only = grid_care(city.engine, w1, GRID, overdue_only=True, today=TODAY, settings=settings)
    assert [r["person_id"] for r in only["people"]] == [p[2].id, p[1].id]
    # the next day p0 is overdue too
    later = grid_care(city.engine, w1, GRID, today=TODAY + dt.timedelta(days=1), settings=settings)
    assert later["overdue"] == 3


def test_scope_and_audit(world):
    city, reg, settings = world
    # another grid's worker reads nobody of this grid; the street admin reads them all
    w2 = Scope.of(city.accounts["w2"])
    assert care_list(city.engine, w2, [GRID], today=TODAY, settings=settings) == []
    street = Scope.of(city.accounts["street"])
    rows = care_list(city.engine, street, GRIDS, today=TODAY, settings=settings)
    want = {p.id for p in reg.people.values() if p.care and p.place in GRIDS}
    assert {r["person_id"] for r in rows} == want
    with city.engine.connect() as c:
        audited = c.execute(
            text(
                "SELECT resource_ids, fields FROM audit_log WHERE actor_id = :a "
                "AND action = 'person.read' ORDER BY id DESC LIMIT 1"
            ),
            {"a": city.accounts["street"].id},
        ).one()
    assert {int(i) for i in audited.resource_ids} == want
    assert "name" in audited.fields
    # leaders read no care list; bad grid codes are refused naming the parameter
    with pytest.raises(Forbidden):
        care_list(city.engine, Scope.of(city.accounts["leader"]), [GRID], settings=settings)
    with pytest.raises(InvalidInput) as e:
        care_list(city.engine, street, ["450902001"], settings=settings)
    assert e.value.parameter == "grid"
    inactive = Account(999, "x", "worker", (GRID,), active=False)
    with pytest.raises(Forbidden):
        care_list(city.engine, Scope.of(inactive), [GRID], settings=settings)


def test_care_over_http(world):
    city, reg, settings = world
    srv = LiveServer(city.url, settings)
    try:
        with httpx.Client(base_url=srv.base, timeout=60) as client:
            r = client.get("/registry/care", params={"grid": GRID}, headers=city.auth("w1"))
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["total"] == 3
            assert {x["person_id"] for x in body["people"]} == {
                reg.people[(GRID, i)].id for i in range(3)
            }
            assert all("*" in (x["phone_mask"] or "*") for x in body["people"])
            r = client.get("/registry/care", params={"grid": GRID}, headers=city.auth("leader"))
            assert r.status_code == 403
            r = client.get("/registry/care", params={"grid": GRID})
            assert r.status_code == 401
            r = client.get("/registry/care", params={"grid": "x"}, headers=city.auth("w1"))
            assert r.status_code == 400
    finally:
        srv.stop()


def test_cli_care_and_search(world, monkeypatch):
    import json

    from typer.testing import CliRunner

    from geogrid.cli import app

    city, reg, _ = world
    monkeypatch.setenv("GEOGRID_DATABASE_URL", city.url)
    monkeypatch.setenv("GEOGRID_REGISTRY_KEY", KEY)
    runner = CliRunner()
    res = runner.invoke(app, ["registry", "care", GRID, "--format", "json"])
    assert res.exit_code == 0, res.output
    assert {r["person_id"] for r in json.loads(res.output)} == {
        reg.people[(GRID, i)].id for i in range(3)
    }
    p = reg.people[(GRIDS[2], 1)]
    res = runner.invoke(
        app, ["registry", "search", "--id-number", "-", "--format", "json"], input=p.id_number
    )
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.output)
    assert row["id"] == p.id and p.id_number not in res.output  # masked in a list
    res = runner.invoke(app, ["registry", "care", "450902001"])
    assert res.exit_code == 2 and "grid" in res.output
