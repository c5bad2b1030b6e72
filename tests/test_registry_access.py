"""The registry's role × endpoint × field test (issue 15), over the real API.

A small registry (tests/small_registry.py) on the small test city: people with names, ID
numbers, phones and household addresses in each of four grids and outside every grid.
For every caller — anonymous, a worker of the first grid, the community/street/district
admins, planner, leader, analyst, admin — and every registry endpoint, the answer is
checked field by field:

* **not at all**: anonymous callers get 401 on every record endpoint; planners, leaders
  and analysts 403 (aggregates only); a record outside the caller's units is 404;
* **clear**: a seeded name, household address, ID number or phone appears in clear only
  for a caller whose units cover its place — and the ID number and phone only in one
  person's record (and the admins' export);
* **masked**: lists carry ``id_mask``/``phone_mask`` and null ``id_number``/``phone``;
* every clear read is in ``audit_log`` (the table is read), never with a value;
* leaders' aggregates suppress counts below k; exact ID/phone search goes through the
  blind index (the lower-case ``x`` and a formatted phone find the same person).
"""

from __future__ import annotations

import base64
import csv
import io
import json
from typing import Any

import httpx
import pytest
import small_city
import small_registry as sr
from conftest import LiveServer
from small_city import GRIDS, STREET
from sqlalchemy import text

from geogrid.settings import Settings

KEY = base64.b64encode(bytes(range(100, 132))).decode()
CALLERS: tuple[str | None, ...] = (
    None,
    "w1",
    "community",
    "street",
    "district",
    "planner",
    "leader",
    "analyst",
    "admin",
)
#: the places whose records each caller reads (in clear)
COVERS: dict[str | None, set[str]] = {
    None: set(),
    "w1": {GRIDS[0]},
    "community": set(GRIDS),
    "street": set(GRIDS),
    "district": set(GRIDS),
    "planner": set(),
    "leader": set(),
    "analyst": set(),
    "admin": {*GRIDS, sr.OUTSIDE},
}
RECORD_READERS = {"w1", "community", "street", "district", "admin"}
EXPORTERS = {"community", "street", "district", "admin"}


class World:
    def __init__(self, city: Any, client: httpx.Client, reg: sr.Registry):
        self.city, self.client, self.reg = city, client, reg
        self.markers = sr.markers(reg)

    def get(self, caller: str | None, url: str, **kw: Any) -> httpx.Response:
        return self.client.get(url, headers=self.city.auth(caller) if caller else {}, **kw)

    def post(self, caller: str | None, url: str, body: Any) -> httpx.Response:
        headers = self.city.auth(caller) if caller else {}
        return self.client.post(url, json=body, headers=headers)

    def audit(self, caller: str) -> list[dict[str, Any]]:
        with self.city.engine.connect() as c:
            rows = c.execute(
                text(
                    "SELECT action, resource, resource_ids, fields, detail FROM audit_log "
                    "WHERE actor_id = :a ORDER BY id"
                ),
                {"a": self.city.accounts[caller].id},
            ).mappings()
            return [dict(r) for r in rows]


@pytest.fixture(scope="module")
def world():
    settings = Settings(registry_key=KEY)
    with small_city.build() as city:
        reg = sr.load(city.engine, settings)
        srv = LiveServer(city.url, settings)
        try:
            with httpx.Client(base_url=srv.base, timeout=60) as client:
                yield World(city, client, reg)
        finally:
            srv.stop()


def _leaks(w: World, caller: str | None, body: str, *, numbers_clear: bool) -> list[str]:
    """Seeded values in ``body`` that ``caller`` may not read in clear there."""
    out = []
    for kind, values in w.markers.items():
        for value, place in values.items():
            if value not in body:
                continue
            if place not in COVERS[caller]:
                out.append(f"{kind} {value!r} of {place}")
            elif kind in ("id_number", "phone") and not numbers_clear:
                out.append(f"{kind} {value!r} in clear in a list")
    return out


def _endpoints(w: World) -> list[tuple[str, str, Any, bool]]:
    """(method, url, body, numbers clear?) of every registry read, on records of every
    place."""
    r = w.reg
    out: list[tuple[str, str, Any, bool]] = [
        ("GET", "/registry/people?name=欧", None, False),
        ("GET", "/registry/people?address=滨河大道", None, False),
        ("POST", "/registry/search", {"name": "欧"}, False),
        ("GET", "/registry/orgs?name=超市", None, False),
        ("GET", "/registry/aggregates/grid", None, False),
        ("GET", "/registry/aggregates/community", None, False),
        ("GET", "/registry/geocode?q=滨河大道", None, False),
        ("GET", "/registry/export?reason=核查", None, True),
    ]
    for place in sr.PLACES:
        p = r.people[(place, 0)]
        out += [
            ("POST", "/registry/search", {"id_number": p.id_number}, False),
            ("POST", "/registry/search", {"phone": p.phone}, False),
            ("GET", f"/registry/people/{p.id}", None, True),
            ("GET", f"/registry/households/{r.households[(place, 0)]}", None, False),
            ("GET", f"/registry/buildings/{r.buildings[place]}", None, False),
        ]
        if place != sr.OUTSIDE:
            out.append(("GET", f"/registry/care?grid={place}", None, False))
    return out


def _record_place(w: World, url: str) -> str | None:
    """The place of the one record a URL names (None for lists)."""
    r = w.reg
    for place in sr.PLACES:
        if url == f"/registry/people/{r.people[(place, 0)].id}":
            return place
        if url == f"/registry/households/{r.households[(place, 0)]}":
            return place
        if url == f"/registry/buildings/{r.buildings[place]}":
            return place
    return None


def test_role_endpoint_field_matrix(world):
    w = world
    problems: list[str] = []
    for method, url, body, numbers_clear in _endpoints(w):
        for caller in CALLERS:
            resp = w.get(caller, url) if method == "GET" else w.post(caller, url, body)
            who = f"{method} {url} {json.dumps(body, ensure_ascii=False) if body else ''} " + (
                caller or "anonymous"
            )
            public_ok = url.startswith("/registry/geocode")
            aggregates = url.startswith("/registry/aggregates")
            if caller is None and not public_ok:
                if resp.status_code != 401:
                    problems.append(f"{who}: {resp.status_code}, expected 401")
                continue
            if url.startswith("/registry/export") and caller not in EXPORTERS:
                if resp.status_code != 403:
                    problems.append(f"{who}: {resp.status_code}, expected 403")
                continue
            if caller not in RECORD_READERS and not (public_ok or aggregates):
                if resp.status_code != 403:
                    problems.append(f"{who}: {resp.status_code}, expected 403")
                continue
            place = _record_place(w, url)
            if place is not None and place not in COVERS[caller]:
                if resp.status_code != 404:
                    problems.append(f"{who}: {resp.status_code}, expected 404 (out of scope)")
                continue
            if resp.status_code != 200:
                problems.append(f"{who}: {resp.status_code} {resp.text[:200]}")
                continue
            for leak in _leaks(w, caller, resp.text, numbers_clear=numbers_clear):
                problems.append(f"LEAK {who}: {leak}")
    assert not problems, "\n".join(problems)


def test_lists_are_clear_in_scope_with_numbers_masked(world):
    w = world
    for caller in ("w1", "street", "admin"):
        got = w.get(caller, "/registry/people", params={"name": "欧", "limit": 100}).json()
        places = {p.place for p in w.reg.people.values() if p.place in COVERS[caller]}
        want = {p.id for p in w.reg.people.values() if p.place in places}
        assert {i["id"] for i in got["items"]} == want, caller
        for item in got["items"]:
            person = next(p for p in w.reg.people.values() if p.id == item["id"])
            assert item["name"] == person.name  # clear
            assert item["id_number"] is None and item["phone"] is None
            assert item["id_mask"] == person.id_number[:4] + "*" * 10 + person.id_number[-4:]
            assert item["phone_mask"] == person.phone[:3] + "****" + person.phone[-4:]
    # paging: 2 per page, pages cover the same set without repeats
    seen: list[int] = []
    offset = 0
    while True:
        page = w.get(
            "street", "/registry/people", params={"name": "欧", "limit": 2, "offset": offset}
        )
        body = page.json()
        seen += [i["id"] for i in body["items"]]
        if not body["more"]:
            break
        offset += 2
    assert len(seen) == len(set(seen)) == sum(sr.PEOPLE[g] for g in GRIDS)


def test_one_record_decrypts_and_is_audited(world):
    w = world
    p = w.reg.people[(GRIDS[0], 1)]
    r = w.get("w1", f"/registry/people/{p.id}", params={"reason": "回访核实"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["id_number"] == p.id_number and got["phone"] == p.phone
    assert sorted(got["care_groups"]) == sorted(p.care)
    rows = [
        a for a in w.audit("w1") if a["action"] == "person.read" and str(p.id) in a["resource_ids"]
    ]
    assert rows, "the clear read is not in the audit log"
    last = rows[-1]
    assert {"id_number", "phone", "name"} <= set(last["fields"])
    assert last["detail"]["reason"] == "回访核实"
    dumped = json.dumps(w.audit("w1"), ensure_ascii=False, default=str)
    for value in (p.id_number, p.phone, p.name):
        assert value not in dumped  # never a value in the trail
    # a neighbouring grid's person does not exist for w1; the district admin reads it
    other = w.reg.people[(GRIDS[1], 0)]
    assert w.get("w1", f"/registry/people/{other.id}").status_code == 404
    assert w.get("district", f"/registry/people/{other.id}").status_code == 200
    outside = w.reg.people[(sr.OUTSIDE, 0)]
    assert w.get("district", f"/registry/people/{outside.id}").status_code == 404
    assert w.get("admin", f"/registry/people/{outside.id}").json()["id_number"] == outside.id_number


def test_every_clear_read_is_in_the_audit_log(world):
    w = world
    before = len(w.audit("community"))
    reads = [
        ("GET", "/registry/people?name=欧春", "person"),
        ("POST", "/registry/search", "person"),
        ("GET", f"/registry/households/{w.reg.households[(GRIDS[0], 0)]}", "household"),
        ("GET", f"/registry/buildings/{w.reg.buildings[GRIDS[0]]}", "household"),
        ("GET", f"/registry/care?grid={GRIDS[0]}", "person"),
        ("GET", "/registry/geocode?q=滨河大道", "household"),
        ("GET", "/registry/export?reason=年度核查", "person"),
    ]
    body = {"phone": w.reg.people[(GRIDS[2], 0)].phone}
    for method, url, resource in reads:
        n = len(w.audit("community"))
        r = w.get("community", url) if method == "GET" else w.post("community", url, body)
        assert r.status_code == 200, (url, r.text)
        new = w.audit("community")[n:]
        assert any(a["resource"] == resource and a["resource_ids"] for a in new), url
    assert len(w.audit("community")) >= before + len(reads)
    export = [a for a in w.audit("community") if a["action"] == "person.export"][-1]
    assert export["detail"]["reason"] == "年度核查"
    ids = {p.id for p in w.reg.people.values() if p.place in GRIDS}
    assert {int(i) for i in export["resource_ids"]} == ids


def test_blind_index_search(world):
    w = world
    p = w.reg.people[(GRIDS[2], 1)]
    for body in (
        {"id_number": p.id_number},
        {"id_number": p.id_number.lower()},
        {"phone": p.phone},
        {"phone": f"+86 {p.phone[:3]}-{p.phone[3:7]}-{p.phone[7:]}"},
    ):
        got = w.post("street", "/registry/search", body).json()
        assert [i["id"] for i in got["items"]] == [p.id], body
    # the worker of another grid finds nobody (the person exists, outside their scope)
    assert w.post("w1", "/registry/search", {"id_number": p.id_number}).json()["items"] == []
    # a near miss finds nobody
    wrong = p.id_number[:-2] + ("0" if p.id_number[-2] != "0" else "1") + p.id_number[-1]
    assert w.post("admin", "/registry/search", {"id_number": wrong}).json()["items"] == []
    # a malformed criterion: 400 naming the parameter
    r = w.post("admin", "/registry/search", {"phone": "  "})
    assert r.status_code == 400 and r.json()["parameter"] == "phone"
    # no criterion: the caller's people, page by page
    got = w.post("w1", "/registry/search", {"limit": 500}).json()
    assert {i["id"] for i in got["items"]} == {p.id for p in w.reg.in_place(GRIDS[0])}


def test_address_search_scope_order_and_pages(world):
    """An address search finds the people whose household's address or building's
    address or name contains the text, inside the caller's scope only, in household
    order (the household's id, then the person's), and its pages put together are that
    list."""
    w = world
    r = w.reg

    def expected(places: set[str], keep: Any = lambda p: True) -> list[int]:
        people = [p for p in r.people.values() if p.place in places and keep(p)]
        return [
            p.id for p in sorted(people, key=lambda p: (r.households[(p.place, p.household)], p.id))
        ]

    def ids(caller: str, **query: Any) -> list[int]:
        got = w.get(caller, "/registry/people", params={"limit": 100, **query})
        assert got.status_code == 200, got.text
        return [i["id"] for i in got.json()["items"]]

    everyone = expected(set(GRIDS))
    # the building's address (and its households'): the street's people, not OUTSIDE's
    assert ids("street", address="滨河大道") == everyone
    assert ids("admin", address="滨河大道") == expected(set(sr.PLACES))
    # a building's name only (no household address has it)
    assert ids("street", address="晖苑") == everyone
    assert ids("street", address=sr.building_name(GRIDS[0])) == expected({GRIDS[0]})
    assert ids("w1", address=sr.building_name(GRIDS[1])) == []  # outside w1's grid
    # one household's address (its room): that household's people only
    room = sr.household_address(GRIDS[0], 1)
    assert ids("street", address=room[-4:]) == expected(set(GRIDS), lambda p: p.household == 1)
    assert ids("w1", address=room) == expected({GRIDS[0]}, lambda p: p.household == 1)
    assert ids("w1", address=sr.household_address(GRIDS[2], 0)) == []
    # pages of 5 put together: the whole list, `more` on all but the last
    pages, off = [], 0
    while True:
        got = w.get(
            "street", "/registry/people", params={"address": "滨河大道", "limit": 5, "offset": off}
        ).json()
        pages += [i["id"] for i in got["items"]]
        off += 5
        if not got["more"]:
            break
    assert pages == everyone
    # with an ID number: that person when their household matches, else nobody
    p1, p0 = r.people[(GRIDS[0], 1)], r.people[(GRIDS[0], 0)]
    for p, want in ((p1, [p1.id]), (p0, [])):
        got = w.post("street", "/registry/search", {"address": room[-4:], "id_number": p.id_number})
        assert [i["id"] for i in got.json()["items"]] == want
    # with a name: the matching people of the matching households
    got = ids("street", address="滨河大道", name=p1.name)
    assert got == [p1.id]


def test_k_suppression_for_leaders(world):
    w = world
    k = Settings(registry_key=KEY).registry_k
    for caller in ("leader", "analyst", "planner"):
        got = w.get(caller, "/registry/aggregates/grid").json()
        assert got["k"] == k
        rows = {r["code"]: r for r in got["rows"]}
        for g in GRIDS:
            n = sr.PEOPLE[g]
            want = n if n >= k else None
            assert rows[g]["population"] == want, (caller, g)
            assert ("population" in rows[g]["suppressed"]) == (want is None)
            households = sr.HOUSEHOLDS[g]
            assert rows[g]["households"] == (households if households >= k else None)
    # the street admin reads the same counts unsuppressed
    got = w.get("street", "/registry/aggregates/grid").json()
    assert got["k"] is None
    rows = {r["code"]: r for r in got["rows"]}
    for g in GRIDS:
        n_float = sum(1 for p in w.reg.in_place(g) if p.floating)
        n_care = sum(1 for p in w.reg.in_place(g) if p.care)
        assert (rows[g]["population"], rows[g]["floating"], rows[g]["care"]) == (
            sr.PEOPLE[g],
            n_float,
            n_care,
        )
    # the worker reads only their grid; a community row is not theirs to read
    got = w.get("w1", "/registry/aggregates/grid").json()
    assert [r["code"] for r in got["rows"]] == [GRIDS[0]]
    assert w.get("w1", "/registry/aggregates/community").json()["rows"] == []
    community = w.get("street", "/registry/aggregates/community", params={"unit": STREET}).json()
    assert community["rows"][0]["population"] == sum(sr.PEOPLE[g] for g in GRIDS)


def test_geocode_public_buildings_only(world):
    w = world
    name = sr.building_name(GRIDS[1])
    anon = w.get(None, "/registry/geocode", params={"q": name}).json()
    assert anon and anon[0]["kind"] == "building" and anon[0]["name"] == name
    lon, lat = sr.point(GRIDS[1])
    assert abs(anon[0]["lon"] - lon) < 1e-9 and abs(anon[0]["lat"] - lat) < 1e-9
    anon = w.get(None, "/registry/geocode", params={"q": "滨河大道"}).json()
    assert {m["kind"] for m in anon} <= {"building", "unit"}
    staff = w.get("w1", "/registry/geocode", params={"q": "滨河大道", "limit": 50}).json()
    households = [m for m in staff if m["kind"] == "household"]
    want = {sr.household_address(GRIDS[0], h) for h in range(sr.HOUSEHOLDS[GRIDS[0]])}
    assert {m["address"] for m in households} == want
    unit = w.get(None, "/registry/geocode", params={"q": "江滨社区第2网格"}).json()
    assert unit[0]["kind"] == "unit" and unit[0]["code"] == GRIDS[1]


def test_export_csv(world):
    w = world
    r = w.get("street", "/registry/export", params={"reason": "核查", "unit": GRIDS[2]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    want = {p.id_number for p in w.reg.in_place(GRIDS[2])}
    assert {row["id_number"] for row in rows} == want
    assert w.get("street", "/registry/export").status_code == 400  # a reason is required
    assert w.get("w1", "/registry/export", params={"reason": "x"}).status_code == 403
