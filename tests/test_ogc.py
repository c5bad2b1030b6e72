"""OGC API - Features (/ogc) over real HTTP on the demo database: conformance points,
paging, bbox/datetime/property filters against PostGIS counts, errors, and two real
clients (GDAL's OAPIF driver and OWSLib)."""

from __future__ import annotations

import re
import shutil
import subprocess

import psycopg
import pytest

from geogrid.core.ogc import CONFORMANCE, parse_datetime
from geogrid.errors import InvalidInput

GEOJSON = "application/geo+json"


@pytest.fixture(scope="module")
def pg(demo_db_url):
    with psycopg.connect(demo_db_url.replace("postgresql+psycopg://", "postgresql://")) as c:
        yield c


def _count(pg, sql, *args) -> int:
    return pg.execute(sql, args).fetchone()[0]


def _rels(doc) -> dict:
    return {lk["rel"]: lk for lk in doc["links"]}


# ------------------------------------------------------------------ pure helpers


def test_parse_datetime_forms():
    s, e = parse_datetime("2026-03-01T08:00:00+08:00")
    assert s == e and s.utcoffset().total_seconds() == 8 * 3600
    assert parse_datetime("../2026-03-01T00:00:00Z")[0] is None
    assert parse_datetime("2026-03-01T00:00:00Z/")[1] is None
    assert parse_datetime("../..") == (None, None)
    for bad in (
        "yesterday",
        "2026-13-01T00:00:00Z",
        "2026-03-01T00:00:00",  # no zone
        "2026-03-02T00:00:00Z/2026-03-01T00:00:00Z",
        "a/b/c",
        "",
    ):
        with pytest.raises(InvalidInput, match="datetime"):
            parse_datetime(bad)


# ------------------------------------------------------------------ landing & metadata


def test_landing_conformance_collections(demo_http, demo_server):
    r = demo_http.get("/ogc/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    rels = _rels(r.json())
    assert {"self", "service-desc", "conformance", "data"} <= set(rels)
    assert rels["service-desc"]["href"] == f"{demo_server}/ogc/api"  # the OGC API alone
    assert demo_http.get(rels["service-desc"]["href"]).json()["openapi"].startswith("3.")
    assert rels["describedby"]["href"] == f"{demo_server}/openapi.json"
    conf = demo_http.get(rels["conformance"]["href"]).json()["conformsTo"]
    assert set(CONFORMANCE) <= set(conf)
    cols = demo_http.get(rels["data"]["href"]).json()
    ids = [c["id"] for c in cols["collections"]]
    assert ids == ["districts", "streets", "communities", "grids", "incidents"]
    for c in cols["collections"]:
        assert c["extent"]["spatial"]["bbox"][0][0] > 109 and "items" in _rels(c)
        one = demo_http.get(f"/ogc/collections/{c['id']}").json()
        assert one["id"] == c["id"] and _rels(one)["items"]["type"] == GEOJSON
    inc = next(c for c in cols["collections"] if c["id"] == "incidents")
    assert inc["extent"]["temporal"]["interval"][0][0].startswith("2025-1")
    assert demo_http.get("/ogc/?f=json").status_code == 200


def test_404s(demo_http):
    for path in (
        "/ogc/collections/roads",
        "/ogc/collections/roads/items",
        "/ogc/collections/grids/items/999",
        "/ogc/collections/incidents/items/0",
        "/ogc/collections/incidents/items/abc",
    ):
        r = demo_http.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"] == "NotFound"


# ------------------------------------------------------------------ items


def test_items_shape_and_metrics(demo_http):
    r = demo_http.get("/ogc/collections/grids/items", params={"limit": 3})
    assert r.status_code == 200 and r.headers["content-type"] == GEOJSON
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and fc["numberReturned"] == 3
    assert fc["numberMatched"] == 8798 and re.match(r"\d{4}-\d\d-\d\dT", fc["timeStamp"])
    f = fc["features"][0]
    assert f["id"] == f["properties"]["code"] and f["geometry"]["type"] == "MultiPolygon"
    for k in (
        "incidents",
        "open_backlog",
        "overdue",
        "per_1000_residents",
        "load_index",
        "population",
        "parent_code",
    ):
        assert k in f["properties"]
    assert "next" in _rels(fc) and "prev" not in _rels(fc)
    one = demo_http.get(f"/ogc/collections/grids/items/{f['id']}")
    assert one.status_code == 200 and one.headers["content-type"] == GEOJSON
    assert one.json()["properties"] == f["properties"]
    inc = demo_http.get("/ogc/collections/incidents/items", params={"limit": 1}).json()
    p = inc["features"][0]["properties"]
    assert inc["features"][0]["geometry"]["type"] == "Point"
    assert {"id", "category", "status", "reported_at", "due_at", "grid_code"} <= set(p)
    single = demo_http.get(f"/ogc/collections/incidents/items/{p['id']}").json()
    assert single["properties"]["category"] == p["category"]


def test_paging_until_exhausted(demo_http, pg):
    params = {
        "limit": 100,
        "datetime": "2026-03-01T00:00:00Z/2026-03-15T00:00:00Z",
        "category": "sanitation",
    }
    url, ids, pages, matched = "/ogc/collections/incidents/items", [], 0, None
    r = demo_http.get(url, params=params).json()
    while True:
        pages += 1
        matched = r["numberMatched"] if matched is None else matched
        assert r["numberMatched"] == matched and r["numberReturned"] == len(r["features"])
        ids += [f["id"] for f in r["features"]]
        nxt = _rels(r).get("next")
        if nxt is not None:  # incidents page by key (after=<last id>), not by offset
            assert f"after={r['features'][-1]['id']}" in nxt["href"]
        if nxt is None:
            break
        r = demo_http.get(nxt["href"]).json()
    assert len(ids) == len(set(ids)) == matched > 100 and ids == sorted(ids)
    assert pages in (-(-matched // 100), -(-matched // 100) + 1)  # + an empty last page
    # offset paging still works and has prev links
    off = demo_http.get(url, params={**params, "offset": 100}).json()
    assert "prev" in _rels(off) and [f["id"] for f in off["features"]] == ids[100:200]
    assert matched == _count(
        pg,
        "SELECT count(*) FROM incident WHERE category = 'sanitation' "
        "AND reported_at BETWEEN '2026-03-01Z' AND '2026-03-15Z'",
    )


@pytest.mark.parametrize("collection,table", [("grids", "grid"), ("incidents", None)])
def test_bbox_matches_postgis(demo_http, pg, collection, table):
    bbox = (110.10, 22.60, 110.20, 22.68)
    r = demo_http.get(
        f"/ogc/collections/{collection}/items",
        params={"bbox": ",".join(map(str, bbox)), "limit": 10000},
    ).json()
    env = "ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
    if table:
        expect = _count(
            pg,
            "SELECT count(*) FROM unit u JOIN boundary_version v ON "
            "v.id = u.version_id WHERE v.status = 'published' AND level = %s "
            f"AND ST_Intersects(geom, {env})",
            table,
            *bbox,
        )
    else:
        expect = _count(
            pg, f"SELECT count(*) FROM incident WHERE ST_Intersects(geom, {env})", *bbox
        )
    assert r["numberMatched"] == expect == r["numberReturned"] > 0


@pytest.mark.parametrize(
    "dt,where",
    [
        (
            "2026-06-01T00:00:00Z/2026-06-03T00:00:00Z",
            "reported_at BETWEEN '2026-06-01Z' AND '2026-06-03Z'",
        ),
        ("../2025-12-03T00:00:00Z", "reported_at <= '2025-12-03Z'"),
        ("2026-11-20T00:00:00Z/..", "reported_at >= '2026-11-20Z'"),
        ("2026-11-20T00:00:00Z/", "reported_at >= '2026-11-20Z'"),
        ("2026-06-01", "reported_at >= '2026-06-01Z' AND reported_at < '2026-06-02Z'"),
    ],
)
def test_datetime_intervals(demo_http, pg, dt, where):
    r = demo_http.get("/ogc/collections/incidents/items", params={"datetime": dt}).json()
    assert r["numberMatched"] == _count(pg, f"SELECT count(*) FROM incident WHERE {where}") > 0


def test_datetime_instant_and_boundaries(demo_http, pg):
    t = pg.execute("SELECT reported_at FROM incident ORDER BY id LIMIT 1").fetchone()[0]
    inst = t.isoformat().replace("+00:00", "Z")
    r = demo_http.get("/ogc/collections/incidents/items", params={"datetime": inst}).json()
    assert (
        r["numberMatched"]
        == _count(pg, "SELECT count(*) FROM incident WHERE reported_at = %s", t)
        >= 1
    )
    # boundaries: the version valid in the interval (published today) / none in 2000
    now = demo_http.get(
        "/ogc/collections/districts/items", params={"datetime": "2026-01-01T00:00:00Z/.."}
    ).json()
    assert now["numberMatched"] == 7
    old = demo_http.get(
        "/ogc/collections/districts/items", params={"datetime": "2000-01-01T00:00:00Z"}
    ).json()
    assert old["numberMatched"] == 0


def test_property_filters(demo_http, pg):
    r = demo_http.get(
        "/ogc/collections/incidents/items",
        params={"category": "sanitation,vendor", "status": "closed"},
    ).json()
    assert (
        r["numberMatched"]
        == _count(
            pg,
            "SELECT count(*) FROM incident WHERE category IN ('sanitation','vendor') "
            "AND status = 'closed'",
        )
        > 0
    )
    assert all(f["properties"]["status"] == "closed" for f in r["features"])
    kids = demo_http.get(
        "/ogc/collections/streets/items", params={"parent_code": "450902", "limit": 100}
    ).json()
    assert (
        kids["numberMatched"]
        == _count(
            pg,
            "SELECT count(*) FROM unit u JOIN boundary_version v ON v.id = u.version_id "
            "WHERE v.status = 'published' AND level = 'street' AND parent_code = '450902'",
        )
        > 0
    )
    one = demo_http.get("/ogc/collections/districts/items", params={"code": "450902"}).json()
    assert [f["id"] for f in one["features"]] == ["450902"]


@pytest.mark.parametrize(
    "path,param",
    [
        ("/ogc/collections/grids/items?limit=0", "limit"),
        ("/ogc/collections/grids/items?limit=10001", "limit"),
        ("/ogc/collections/grids/items?limit=ten", "limit"),
        ("/ogc/collections/grids/items?offset=-1", "offset"),
        ("/ogc/collections/grids/items?bbox=110,22,111", "bbox"),
        ("/ogc/collections/grids/items?bbox=110,22,0,111,23,10", "bbox"),
        ("/ogc/collections/grids/items?bbox=a,b,c,d", "bbox"),
        ("/ogc/collections/grids/items?bbox=110,95,111,96", "bbox"),
        ("/ogc/collections/incidents/items?datetime=last-week", "datetime"),
        ("/ogc/collections/incidents/items?datetime=2026-02-30T00:00:00Z", "datetime"),
        (
            "/ogc/collections/incidents/items?datetime=2026-03-02T00:00:00Z/2026-03-01T00:00:00Z",
            "datetime",
        ),
        ("/ogc/collections/incidents/items?colour=red", "colour"),
        ("/ogc/collections/grids/items?category=sanitation", "category"),
        ("/ogc/collections/grids/items?f=html", "f"),
        ("/ogc/collections?limit=3", "limit"),
    ],
)
def test_errors_are_400_naming_the_parameter(demo_http, path, param):
    r = demo_http.get(path)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "InvalidInput" and body["parameter"] == param
    assert param in body["message"]


def test_limit_max_is_accepted(demo_http):
    r = demo_http.get("/ogc/collections/grids/items", params={"limit": 10000}).json()
    assert r["numberReturned"] == 8798 and "next" not in _rels(r)


# ------------------------------------------------------------------ real clients


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL ogrinfo not installed")
def test_gdal_oapif_reads_the_collections(demo_server):
    out = subprocess.run(
        ["ogrinfo", "-ro", "-so", "-al", f"OAPIF:{demo_server}/ogc/"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    for layer in ("districts", "streets", "communities", "grids", "incidents"):
        assert f"Layer name: {layer}" in out.stdout
    assert "Feature Count: 8798" in out.stdout and "Feature Count: 7\n" in out.stdout
    feats = subprocess.run(
        ["ogrinfo", "-ro", f"OAPIF:{demo_server}/ogc/", "districts"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert feats.returncode == 0, feats.stderr
    assert feats.stdout.count("OGRFeature(districts)") == 7
    assert "MULTIPOLYGON" in feats.stdout and "load_index" in feats.stdout


def test_owslib_reads_the_collections(demo_server):
    features = pytest.importorskip("owslib.ogcapi.features")
    api = features.Features(f"{demo_server}/ogc/")
    assert set(CONFORMANCE) <= set(api.conformance()["conformsTo"])
    ids = [c["id"] for c in api.collections()["collections"]]
    assert "grids" in ids and "incidents" in ids
    d = api.collection_items("districts", limit=100)
    assert d["numberMatched"] == 7 and len(d["features"]) == 7
    inc = api.collection_items(
        "incidents", limit=5, bbox=[110.1, 22.6, 110.2, 22.7], datetime_="2026-06-01T00:00:00Z/.."
    )
    assert inc["numberReturned"] == 5
    code = api.collection_items("grids", limit=1)["features"][0]["id"]
    one = api.collection_item("grids", code)
    assert one["properties"]["level"] == "grid"
