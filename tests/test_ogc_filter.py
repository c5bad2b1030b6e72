"""OGC API - Features Part 3 (filtering) over real HTTP on the demo database: queryables,
CQL2 text and JSON filters against PostGIS counts, ``?name=value`` for every queryable,
``sortby``, ``properties``, refused injections, and GDAL's OAPIF driver pushing
``-where`` to the server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time

import psycopg
import pytest

from geogrid.core.cql2 import Queryable, parse_filter
from geogrid.core.ogc import FILTER_CONFORMANCE, INCIDENT_QUERYABLES
from geogrid.errors import InvalidInput

ITEMS = "/ogc/collections/incidents/items"


@pytest.fixture(scope="module")
def pg(demo_db_url):
    with psycopg.connect(demo_db_url.replace("postgresql+psycopg://", "postgresql://")) as c:
        yield c


def _count(pg, sql, *args) -> int:
    return pg.execute(sql, args).fetchone()[0]


@pytest.fixture(scope="module")
def busy_grid(pg) -> str:
    """A grid with several incidents of more than one status."""
    return pg.execute(
        "SELECT grid_code FROM incident WHERE grid_code IS NOT NULL GROUP BY grid_code "
        "HAVING count(DISTINCT status) > 1 ORDER BY count(*) DESC, grid_code LIMIT 1"
    ).fetchone()[0]


# ------------------------------------------------------------------ pure (core)


@pytest.mark.parametrize(
    "text,lang,needle",
    [
        ("description = 'x'", "cql2-text", "unknown property 'description'"),
        ('{"op":"=","args":[{"property":"reporter_id"},1]}', "cql2-json", "reporter_id"),
        ("grid_code = 5", "cql2-text", "is text"),
        ("id = 'x'", "cql2-text", "is a number"),
        ("pg_sleep(5) = 1", "cql2-text", "functions"),
        ("grid_code = category", "cql2-text", "literal"),
        ("grid_code = 'x'; DROP TABLE incident", "cql2-text", "cannot parse"),
        ("S_INTERSECTS(geometry, BBOX(110, 22, 200, 23))", "cql2-text", "longitudes"),
        ("S_INTERSECTS(grid_code, BBOX(110, 22, 111, 23))", "cql2-text", "geometry property"),
        ("{not json", "cql2-json", "not JSON"),
    ],
)
def test_parse_filter_refuses(text, lang, needle):
    with pytest.raises(InvalidInput) as e:
        parse_filter(text, lang, INCIDENT_QUERYABLES)
    assert e.value.parameter == "filter" and needle in str(e.value)


def test_parse_filter_languages_and_crs():
    q = {"a_b": Queryable("a_b", "string")}
    with pytest.raises(InvalidInput) as e:
        parse_filter("a_b = 'x'", "sql", q)
    assert e.value.parameter == "filter-lang"
    with pytest.raises(InvalidInput) as e:
        parse_filter("a_b = 'x'", None, q, "http://www.opengis.net/def/crs/EPSG/0/3857")
    assert e.value.parameter == "filter-crs"
    # the text and JSON encodings of one filter give one expression
    t = parse_filter("a_b IN ('x', 'y') AND NOT a_b LIKE 'z%'", "cql2-text", q)
    j = parse_filter(
        json.dumps(
            {
                "op": "and",
                "args": [
                    {"op": "in", "args": [{"property": "a_b"}, ["x", "y"]]},
                    {"op": "not", "args": [{"op": "like", "args": [{"property": "a_b"}, "z%"]}]},
                ],
            }
        ),
        "cql2-json",
        q,
    )
    assert t == j


# ------------------------------------------------------------------ metadata


def test_conformance_and_queryables(demo_http):
    conf = demo_http.get("/ogc/conformance").json()["conformsTo"]
    assert set(FILTER_CONFORMANCE) <= set(conf)
    col = demo_http.get("/ogc/collections/incidents").json()
    ql = next(lk for lk in col["links"] if lk["rel"].endswith("/queryables"))
    r = demo_http.get(ql["href"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/schema+json")
    doc = r.json()
    assert doc["$id"] == ql["href"] and doc["type"] == "object"
    props = doc["properties"]
    assert props["geometry"]["x-ogc-role"] == "primary-geometry"
    assert props["geometry"]["format"] == "geometry-point"
    assert props["reported_at"] == {
        "title": "reported_at",
        "description": "when it was reported (UTC)",
        "type": "string",
        "format": "date-time",
    }
    assert "sanitation" in props["category"]["enum"] and props["id"]["type"] == "integer"
    for personal in ("description", "reporter_id", "assignee_id", "src_lon"):
        assert personal not in props
    grids = demo_http.get("/ogc/collections/grids/queryables").json()
    assert grids["properties"]["population"]["type"] == "integer"
    assert demo_http.get("/ogc/collections/roads/queryables").status_code == 404


def test_ogc_openapi_lists_queryables_per_collection(demo_http, demo_server):
    land = demo_http.get("/ogc/").json()
    desc = next(lk for lk in land["links"] if lk["rel"] == "service-desc")
    api = demo_http.get(desc["href"]).json()
    assert api["servers"][0]["url"] == f"{demo_server}/ogc"
    params = {p["name"] for p in api["paths"]["/collections/incidents/items"]["get"]["parameters"]}
    assert {"grid_code", "status", "reported_at", "id", "filter", "filter-lang", "sortby"} <= params
    assert "code" not in params
    gp = {p["name"] for p in api["paths"]["/collections/grids/items"]["get"]["parameters"]}
    assert {"code", "parent_code", "population"} <= gp and "grid_code" not in gp


# ------------------------------------------------------------------ filters


def test_cql2_text_matches_postgis(demo_http, pg, busy_grid):
    flt = f"grid_code = '{busy_grid}' AND status IN ('closed', 'resolved', 'reported')"
    r = demo_http.get(ITEMS, params={"filter": flt, "limit": 1000})
    assert r.status_code == 200, r.text
    fc = r.json()
    expect = _count(
        pg,
        "SELECT count(*) FROM incident WHERE grid_code = %s "
        "AND status IN ('closed', 'resolved', 'reported')",
        busy_grid,
    )
    assert fc["numberMatched"] == fc["numberReturned"] == expect > 0
    assert {f["properties"]["grid_code"] for f in fc["features"]} == {busy_grid}


def test_cql2_json_spatial_equals_bbox(demo_http, pg):
    bbox = [110.10, 22.60, 110.20, 22.68]
    flt = {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": bbox}]}
    r = demo_http.get(ITEMS, params={"filter": json.dumps(flt), "filter-lang": "cql2-json"})
    assert r.status_code == 200, r.text
    by_bbox = demo_http.get(ITEMS, params={"bbox": ",".join(map(str, bbox))}).json()
    text = demo_http.get(
        ITEMS, params={"filter": "S_INTERSECTS(geometry, BBOX(110.10, 22.60, 110.20, 22.68))"}
    ).json()
    expect = _count(
        pg,
        "SELECT count(*) FROM incident "
        "WHERE ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))",
        *bbox,
    )
    assert r.json()["numberMatched"] == by_bbox["numberMatched"] == text["numberMatched"]
    assert text["numberMatched"] == expect > 0
    poly = "POLYGON((110.1 22.6, 110.2 22.6, 110.2 22.68, 110.1 22.68, 110.1 22.6))"
    within = demo_http.get(ITEMS, params={"filter": f"S_WITHIN(geometry, {poly})"}).json()
    assert within["numberMatched"] == expect


def test_time_filters(demo_http, pg):
    t = "2026-06-01T00:00:00Z"
    expect = _count(pg, "SELECT count(*) FROM incident WHERE reported_at > %s", t)
    text = demo_http.get(ITEMS, params={"filter": f"reported_at > TIMESTAMP('{t}')"}).json()
    js = demo_http.get(
        ITEMS,
        params={
            "filter": json.dumps(
                {"op": "t_after", "args": [{"property": "reported_at"}, {"timestamp": t}]}
            ),
            "filter-lang": "cql2-json",
        },
    ).json()
    assert text["numberMatched"] == js["numberMatched"] == expect > 0
    iv = {"interval": ["2026-03-01T00:00:00Z", "2026-03-15T00:00:00Z"]}
    r = demo_http.get(
        ITEMS,
        params={
            "filter": json.dumps({"op": "t_intersects", "args": [{"property": "reported_at"}, iv]}),
            "filter-lang": "cql2-json",
        },
    ).json()
    assert (
        r["numberMatched"]
        == _count(
            pg,
            "SELECT count(*) FROM incident WHERE reported_at BETWEEN "
            "'2026-03-01Z' AND '2026-03-15Z'",
        )
        > 0
    )


def test_advanced_comparisons(demo_http, pg):
    r = demo_http.get(
        ITEMS,
        params={
            "filter": "CASEI(category) LIKE 'SAN%' AND NOT closed_at IS NULL AND id BETWEEN 1 AND 30000"
        },
    )
    assert r.status_code == 200, r.text
    expect = _count(
        pg,
        "SELECT count(*) FROM incident WHERE lower(category) LIKE 'san%%' "
        "AND closed_at IS NOT NULL AND id BETWEEN 1 AND 30000",
    )
    assert r.json()["numberMatched"] == expect > 0


def test_boundary_collections_filter_too(demo_http, pg):
    r = demo_http.get(
        "/ogc/collections/grids/items",
        params={"filter": "population > 1000 AND parent_code LIKE '450902%'", "limit": 1},
    )
    assert r.status_code == 200, r.text
    assert r.json()["numberMatched"] == _count(
        pg,
        "SELECT count(*) FROM unit u JOIN boundary_version v ON v.id = u.version_id "
        "WHERE v.status = 'published' AND level = 'grid' AND population > 1000 "
        "AND parent_code LIKE '450902%%'",
    )
    # the metrics are properties, not queryables
    e = demo_http.get("/ogc/collections/grids/items", params={"filter": "load_index > 1"})
    assert e.status_code == 400 and "load_index" in e.json()["message"]


def test_property_filters_for_every_queryable(demo_http, pg):
    row = pg.execute(
        "SELECT id, category, status, reported_at, assigned_level, assigned_unit, grid_code, "
        "community_code, street_code, district_code FROM incident "
        "WHERE assigned_unit IS NOT NULL ORDER BY id LIMIT 1"
    ).fetchone()
    iid, cat, status, rep, lvl, unit, grid, comm, street, dist = row
    one = demo_http.get(ITEMS, params={"id": iid}).json()
    assert [f["id"] for f in one["features"]] == [iid]
    for name, value, sql in (
        ("assigned_level", lvl, "assigned_level = %s"),
        ("assigned_unit", unit, "assigned_unit = %s"),
        ("community_code", comm, "community_code = %s"),
        ("reported_at", rep.isoformat(), "reported_at = %s"),
    ):
        r = demo_http.get(ITEMS, params={name: value})
        assert r.status_code == 200, (name, r.text)
        assert r.json()["numberMatched"] == _count(
            pg, f"SELECT count(*) FROM incident WHERE {sql}", value
        ), name
    bad = demo_http.get(ITEMS, params={"id": "seven"})
    assert bad.status_code == 400 and bad.json()["parameter"] == "id"
    pop = demo_http.get("/ogc/collections/grids/items", params={"population": "0"})
    assert pop.status_code == 200


def test_sortby_and_properties(demo_http, pg, busy_grid):
    r = demo_http.get(
        ITEMS,
        params={
            "grid_code": busy_grid,
            "sortby": "-reported_at",
            "properties": "status,reported_at",
            "limit": 10000,
        },
    )
    assert r.status_code == 200, r.text
    feats = r.json()["features"]
    times = [f["properties"]["reported_at"] for f in feats]
    assert len(times) > 1 and times == sorted(times, reverse=True)
    assert all(set(f["properties"]) == {"status", "reported_at"} for f in feats)
    asc = demo_http.get(
        ITEMS, params={"grid_code": busy_grid, "sortby": "+reported_at", "limit": 10000}
    ).json()["features"]
    assert [f["properties"]["reported_at"] for f in asc] == sorted(times)
    grids = demo_http.get(
        "/ogc/collections/grids/items", params={"sortby": "-population", "limit": 5}
    ).json()
    pops = [f["properties"]["population"] for f in grids["features"]]
    assert pops == sorted(pops, reverse=True) and pops[0] == _count(
        pg,
        "SELECT max(population) FROM unit u JOIN boundary_version v ON v.id = u.version_id "
        "WHERE v.status = 'published' AND level = 'grid'",
    )
    for params, param in (
        ({"sortby": "colour"}, "sortby"),
        ({"sortby": "geometry"}, "sortby"),
        ({"properties": "description"}, "properties"),
    ):
        e = demo_http.get(ITEMS, params=params)
        assert e.status_code == 400 and e.json()["parameter"] == param, e.text


def test_keyset_paging_follows_next_links(demo_http, pg, busy_grid):
    expect = [
        row[0]
        for row in pg.execute(
            "SELECT id FROM incident WHERE grid_code = %s ORDER BY id", (busy_grid,)
        ).fetchall()
    ]
    ids: list[int] = []
    r = demo_http.get(ITEMS, params={"grid_code": busy_grid, "limit": 50}).json()
    while True:
        assert r["numberMatched"] == len(expect)  # the count ignores the key
        ids += [f["id"] for f in r["features"]]
        rels = {lk["rel"]: lk["href"] for lk in r["links"]}
        if ids and len(ids) > 50:
            assert "prev" not in rels  # keyset pages have no prev
        if "next" not in rels:
            break
        assert f"after={ids[-1]}" in rels["next"] and "offset=" not in rels["next"]
        r = demo_http.get(rels["next"]).json()
    assert ids == expect and len(ids) > 100
    for params in ({"after": 5, "sortby": "-id"}, {"after": "x"}):
        e = demo_http.get(ITEMS, params=params)
        assert e.status_code == 400 and e.json()["parameter"] == "after", e.text
    e = demo_http.get("/ogc/collections/grids/items", params={"after": 5})
    assert e.status_code == 400 and e.json()["parameter"] == "after"


@pytest.mark.parametrize(
    "params,param,needle",
    [
        ({"filter": "colour = 'red'"}, "filter", "colour"),
        ({"filter": "reporter_id = 1"}, "filter", "reporter_id"),
        ({"filter": "grid_code = 'x'", "filter-lang": "sql"}, "filter-lang", "filter-lang"),
        ({"filter": "grid_code = 'x'", "filter-crs": "EPSG:3857"}, "filter-crs", "filter-crs"),
        ({"filter": ""}, "filter", "empty"),
    ],
)
def test_filter_errors_name_what_is_wrong(demo_http, params, param, needle):
    r = demo_http.get(ITEMS, params=params)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "InvalidInput" and body["parameter"] == param
    assert needle in body["message"]


INJECTIONS = [
    ("cql2-text", "grid_code = 'x'; DROP TABLE incident"),
    ("cql2-text", "grid_code = 'x' OR 1=1 --"),
    ("cql2-text", "grid_code = 'x'' OR ''1''=''1'"),
    ("cql2-text", "grid_code = 'x' UNION SELECT password_hash FROM account"),
    ("cql2-text", "\"grid_code; DROP TABLE incident\" = 'x'"),
    ("cql2-text", "pg_sleep(10) = 0"),
    ("cql2-text", "grid_code = (SELECT 1)"),
    ("cql2-json", '{"op":"=","args":[{"property":"1=1) OR (true"},"x"]}'),
    ("cql2-json", '{"op":"=","args":[{"property":"grid_code"},{"property":"password_hash"}]}'),
    ("cql2-json", '{"op":"pg_sleep","args":[10]}'),
]


@pytest.mark.parametrize("lang,text", INJECTIONS)
def test_cql2_injection_is_refused(demo_http, pg, lang, text):
    before = _count(pg, "SELECT count(*) FROM incident")
    t0 = time.perf_counter()
    r = demo_http.get(ITEMS, params={"filter": text, "filter-lang": lang})
    assert time.perf_counter() - t0 < 5  # no pg_sleep ran
    assert r.status_code == 400, r.text
    assert r.json()["parameter"] == "filter"
    assert _count(pg, "SELECT count(*) FROM incident") == before


def test_sql_in_a_value_is_only_a_value(demo_http):
    """A quoted value holding SQL is compared as text: no match, no error, no effect."""
    for value in ("x' OR '1'='1", "x\\' OR 1=1 --", "%' OR grid_code LIKE '%"):
        r = demo_http.get(ITEMS, params={"grid_code": value})
        assert r.status_code == 200 and r.json()["numberMatched"] == 0, value
    r = demo_http.get(ITEMS, params={"filter": "grid_code LIKE 'x\\\\%' OR grid_code = 'a--'"})
    assert r.status_code == 200 and r.json()["numberMatched"] == 0


# ------------------------------------------------------------------ GDAL


@pytest.fixture(scope="module")
def p90_grid(pg) -> str:
    """A grid at the 90th percentile of incidents per grid (GDAL 3.6 pages by 10, so a
    grid of n incidents costs n/10 + 5 requests)."""
    return pg.execute(
        "SELECT grid_code FROM (SELECT grid_code, count(*) AS n FROM incident "
        "WHERE grid_code IS NOT NULL GROUP BY grid_code) q WHERE n >= (SELECT "
        "percentile_disc(0.9) WITHIN GROUP (ORDER BY n) FROM (SELECT count(*) AS n FROM "
        "incident WHERE grid_code IS NOT NULL GROUP BY grid_code) c) ORDER BY n, grid_code "
        "LIMIT 1"
    ).fetchone()[0]


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL ogrinfo not installed")
def test_gdal_where_is_answered_by_the_server(demo_server, pg, p90_grid):
    """``ogrinfo OAPIF:… incidents -where "grid_code='…'"`` answers within 2 s, and the
    requests it made (GDAL's HTTP debug log) carry the filter: the server filtered."""
    busy_grid = p90_grid
    expect = _count(pg, "SELECT count(*) FROM incident WHERE grid_code = %s", busy_grid)
    env = dict(os.environ, CPL_DEBUG="ON", GDAL_HTTP_TIMEOUT="30")
    t0 = time.perf_counter()
    out = subprocess.run(
        [
            "ogrinfo",
            "-ro",
            f"OAPIF:{demo_server}/ogc",
            "incidents",
            "-where",
            f"grid_code='{busy_grid}'",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    took = time.perf_counter() - t0
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("OGRFeature(incidents)") == expect > 0
    fetched = re.findall(r"HTTP: Fetch\((\S+?)\)", out.stderr)
    items = [u for u in fetched if "/collections/incidents/items" in u]
    assert items, out.stderr[-2000:]
    filtered = [u for u in items if f"grid_code={busy_grid}" in u]
    assert filtered, items
    assert "evaluated on client side" not in out.stderr
    print(f"ogrinfo -where: {took:.2f} s, {len(fetched)} requests, {expect} features")
    assert took < 2.0, f"ogrinfo took {took:.2f} s"
