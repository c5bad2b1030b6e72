"""Vector tiles, heat tiles and change-driven invalidation over real HTTP.

* MVT tiles decode with mapbox_vector_tile and carry the fields TileJSON announces;
* the incident budget (features and bytes) holds at z0–z6 and clusters conserve counts;
* ETag / Cache-Control / 304;
* heat tiles are seamless across a tile edge and share one colour scale per zoom;
* an edit in a separate database (incident inserted with ``record_incident_change`` in
  the same transaction; a boundary publish) changes exactly the affected tiles.
"""

from __future__ import annotations

import io
import itertools
import time

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely
from PIL import Image
from sqlalchemy import text

from geogrid.core.tiles import (
    LAYERS,
    MAX_BYTES,
    MAX_FEATURES,
    layer_fields,
    tile_bounds_3857,
    tile_bounds_lonlat,
    tile_range,
)
from geogrid.services.mapservice import METRICS_REFRESH

YULIN = (109.55, 21.63, 110.90, 23.13)
MVT = "application/vnd.mapbox-vector-tile"


def _decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data) if data else {}


# ------------------------------------------------------------------ TileJSON and fields


@pytest.mark.parametrize("layer", list(LAYERS))
def test_tilejson_and_tiles_carry_the_announced_fields(demo_http, layer):
    tj = demo_http.get(f"/tiles/{layer}.json", params={"from": "2026-01-01"}).json()
    assert tj["tilejson"] == "3.0.0" and tj["minzoom"] == 0 and tj["maxzoom"] >= 16
    assert tj["tiles"][0].endswith(f"/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt?from=2026-01-01")
    w, s, e, n = tj["bounds"]
    assert 109 < w < e < 111 and 21 < s < n < 24 and len(tj["center"]) == 3
    vl = tj["vector_layers"][0]
    assert vl["id"] == layer and set(vl["fields"]) == set(layer_fields(layer))
    z = 12 if layer in ("grids", "incidents") else 9
    x0, y0, x1, y1 = tile_range((110.14, 22.62, 110.16, 22.64), z)
    url = tj["tiles"][0].format(z=z, x=x0, y=y0).split(str(demo_http.base_url))[-1]
    r = demo_http.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == MVT
    feats = _decode(r.content)[layer]["features"]
    assert feats and feats[0]["geometry"]["type"] in ("Polygon", "MultiPolygon", "Point")
    seen = set().union(*(f["properties"] for f in feats))
    assert seen <= set(vl["fields"])
    if layer == "grids":
        assert {
            "code",
            "name",
            "parent_code",
            "incidents",
            "open_backlog",
            "overdue",
            "per_1000_residents",
            "load_index",
        } <= seen


def test_grid_metrics_in_tiles_match_the_window(demo_http, demo_db_url):
    z, x, y = 13, *tile_range((110.15, 22.63, 110.15, 22.63), 13)[:2]
    r = demo_http.get(
        f"/tiles/grids/{z}/{x}/{y}.mvt",
        params={"from": "2026-05-01", "to": "2026-06-01", "category": "vendor"},
    )
    feats = _decode(r.content)["grids"]["features"]
    got = {f["properties"]["code"]: f["properties"]["incidents"] for f in feats}
    with psycopg.connect(demo_db_url.replace("+psycopg", "")) as c:
        rows = dict(
            c.execute(
                "SELECT grid_code, count(*) FROM incident WHERE category = 'vendor' AND "
                "reported_at >= '2026-05-01 00:00+08' AND reported_at < '2026-06-01 00:00+08' "
                "AND grid_code = ANY(%s) GROUP BY 1",
                (list(got),),
            ).fetchall()
        )
    # the window's dates are read by geogrid.services.metrics (local days, Asia/Shanghai)
    assert sum(got.values()) > 0
    assert {k: v for k, v in got.items() if v} == rows


def test_bad_tile_requests(demo_http):
    for path, param in [
        ("/tiles/roads/1/0/0.mvt", "layer"),
        ("/tiles/grids/3/8/0.mvt", "x/y"),
        ("/tiles/grids/23/0/0.mvt", "z"),
        ("/tiles/grids/3/1/1.mvt?category=nope", "category"),
        ("/tiles/grids/3/1/1.mvt?from=soon", "from"),
        ("/tiles/grids/3/1/1.mvt?from=2026-02-01&to=2026-01-01", "from/to"),
        ("/heatmap/3/9/0.png", "x/y"),
    ]:
        r = demo_http.get(path)
        assert r.status_code == 400, path
        assert r.json()["parameter"] == param, path


def test_etag_cache_control_and_304(demo_http):
    path = "/tiles/grids/12/3299/1786.mvt"
    a, b = demo_http.get(path), demo_http.get(path)
    assert a.headers["etag"] == b.headers["etag"] and a.content == b.content
    assert "must-revalidate" in a.headers["cache-control"]
    r = demo_http.get(path, headers={"If-None-Match": a.headers["etag"]})
    assert r.status_code == 304 and not r.content and r.headers["etag"] == a.headers["etag"]
    r = demo_http.get(path, headers={"If-None-Match": '"other"'})
    assert r.status_code == 200


# ------------------------------------------------------------------ budgets


@pytest.mark.parametrize("z", range(0, 7))
def test_incident_budget_and_conservation_z0_z6(demo_http, demo_db_url, z):
    params = {"from": "2025-01-01", "to": "2027-01-01"}  # every demo incident
    total = features = 0
    x0, y0, x1, y1 = tile_range(YULIN, z)
    for x, y in itertools.product(range(x0, x1 + 1), range(y0, y1 + 1)):
        r = demo_http.get(f"/tiles/incidents/{z}/{x}/{y}.mvt", params=params)
        for _ in range(3):  # busy (503 + Retry-After) on a loaded machine: as a client would
            if r.status_code != 503:
                break
            time.sleep(min(float(r.headers.get("retry-after", 1)), 5))
            r = demo_http.get(f"/tiles/incidents/{z}/{x}/{y}.mvt", params=params)
        assert r.status_code == 200 and len(r.content) <= MAX_BYTES, r.text[:300]
        feats = _decode(r.content).get("incidents", {"features": []})["features"]
        assert len(feats) <= MAX_FEATURES
        assert all(f["properties"]["cluster"] == 1 for f in feats)
        total += sum(f["properties"]["count"] for f in feats)
        features += len(feats)
    with psycopg.connect(demo_db_url.replace("+psycopg", "")) as c:
        n = c.execute("SELECT count(*) FROM incident").fetchone()[0]
    assert total == n  # every incident counted once (cells aligned to tile bounds)
    assert features < n / 10


def test_points_fall_back_to_clusters_over_budget(demo_db_url):
    from geogrid.store import get_engine
    from geogrid.store.tiles import incident_tile

    z, (x, y) = 14, tile_range((110.15, 22.63, 110.15, 22.63), 14)[:2]
    with get_engine(demo_db_url).connect() as conn:
        data, n, cell = incident_tile(conn, z, x, y)
        assert cell is None and n > 60  # points
        data, n2, cell = incident_tile(conn, z, x, y, max_features=50)
        assert cell is not None and n2 <= 50
        assert all(f["properties"]["cluster"] == 1 for f in _decode(data)["incidents"]["features"])
        data, n3, cell = incident_tile(conn, z, x, y, max_bytes=2000)
        assert len(data) <= 2000 or cell == 256


def test_unit_budget_keeps_largest_units(demo_db_url):
    from geogrid.store import get_engine
    from geogrid.store.tiles import unit_tile

    with get_engine(demo_db_url).connect() as conn:
        data, n = unit_tile(conn, "grid", "grids", 6, 51, 27)
        small, n2 = unit_tile(conn, "grid", "grids", 6, 51, 27, max_features=100, max_bytes=20_000)
    assert n > 1000 and n2 <= 100 and len(small) <= 20_000 < len(data)


# ------------------------------------------------------------------ heat map


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def test_heat_tiles_seamless_and_one_scale_per_zoom(demo_http, demo_db_url):
    from geogrid.core.heatmap import to_png

    z = 12
    x, y = tile_range((110.15, 22.63, 110.15, 22.63), z)[:2]
    a = demo_http.get(f"/heatmap/{z}/{x}/{y}.png")
    b = demo_http.get(f"/heatmap/{z}/{x + 1}/{y}.png")
    assert a.status_code == b.status_code == 200 and a.headers["content-type"] == "image/png"
    pa, pb = _png(a.content), _png(b.content)
    assert pa[..., 3].any()
    # one render of both tiles side by side, coloured with the same zoom scale: a
    # MapService of our own on the same database computes the same source and scale
    from geogrid.services.mapservice import MapService
    from geogrid.services.tilecache import TileCache
    from geogrid.settings import get_settings
    from geogrid.store import get_engine

    svc = MapService(get_engine(demo_db_url), get_settings(), cache=TileCache())
    win = svc.window()
    src = svc.heat_source(win)
    xa0, ya0, xa1, ya1 = tile_bounds_3857(z, x, y)
    big = src.density(
        (xa0, ya0, tile_bounds_3857(z, x + 1, y)[2], ya1), (256, 512), svc.heat_bandwidth_m(z)
    )
    ref = _png(to_png(big, vmax=svc.heat_scale(z, win)))
    joined = np.concatenate([pa, pb], axis=1)
    diff = np.abs(joined.astype(int) - ref.astype(int))
    assert diff.max() <= 1  # identical up to rounding, across the edge too
    # continuity across the edge: the step between the last and first columns is no
    # larger than the steps inside the tiles
    step_edge = np.abs(pa[:, -1, :3].astype(int) - pb[:, 0, :3].astype(int)).max()
    step_in = np.abs(np.diff(pa[..., :3].astype(int), axis=1)).max()
    assert step_edge <= step_in
    # one scale per zoom, whatever tile is asked first; zooms differ
    assert svc.heat_scale(z, win) == svc.heat_scale(z, win) > 0
    other = MapService(get_engine(demo_db_url), get_settings(), cache=TileCache())
    other.heat_tile(z, x + 3, y + 2, other.window())
    assert other.heat_scale(z, other.window()) == svc.heat_scale(z, win)


# ------------------------------------------------------------------ invalidation

N = 6  # N×N grids of 500 m in a 3 km square south-west of (110.15, 22.63)


def _city() -> dict[str, gpd.GeoDataFrame]:
    from shapes import layer, square

    d, st = "450902", "450902001"
    comms = [f"{st}{i:03d}" for i in (1, 2)]
    grids = []
    for r, c in itertools.product(range(N), range(N)):
        comm = comms[c * 2 // N]
        grids.append((f"{comm}{r * N + c + 1:03d}", comm, square(c * 500, r * 500, 500)))
    return {
        "district": layer("district", [(d, None, square(0, 0, N * 500))]),
        "street": layer("street", [(st, d, square(0, 0, N * 500))]),
        "community": layer(
            "community",
            [
                (comms[0], st, shapely.box(0, 0, N * 250, N * 500)),
                (comms[1], st, shapely.box(N * 250, 0, N * 500, N * 500)),
            ],
        ),
        "grid": layer("grid", grids),
    }


@pytest.fixture(scope="module")
def edit_city(make_db):
    from conftest import LiveServer

    from geogrid.core.catalogue import load_categories
    from geogrid.services.boundaries import save_hierarchy
    from geogrid.store import get_engine
    from geogrid.store.incidents import upsert_categories

    url = make_db()
    engine = get_engine(url)
    with engine.begin() as conn:
        upsert_categories(conn, load_categories())
    city = _city()
    for lv in city.values():
        lv["population"] = 1000
    save_hierarchy(engine, city, label="edit test", source="tests")
    srv = LiveServer(url)
    import httpx

    with httpx.Client(base_url=srv.base, timeout=60) as client:
        yield engine, client, city
    srv.stop()


def _area(city) -> tuple[float, float, float, float]:
    return tuple(city["district"].total_bounds)


def _tiles(city, zooms=(13, 14, 15, 16)) -> list[tuple[int, int, int]]:
    a = _area(city)
    out = []
    for z in zooms:
        x0, y0, x1, y1 = tile_range(a, z)
        out += [(z, x, y) for x in range(x0 - 1, x1 + 2) for y in range(y0 - 1, y1 + 2)]
    out.append((14, *tile_range((110.6, 22.3, 110.6, 22.3), 14)[:2]))  # ~55 km away
    return out


def _etags(client, layer, tiles) -> dict:
    out = {}
    for z, x, y in tiles:
        r = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt")
        assert r.status_code == 200
        out[(z, x, y)] = r.headers["etag"]
    return out


def _near(tile, bbox) -> bool:
    from geogrid.core.tiles import tile_pad_deg

    w, s, e, n = tile_bounds_lonlat(*tile)
    m = tile_pad_deg(tile[0])
    return w - m <= bbox[2] and bbox[0] <= e + m and s - m <= bbox[3] and bbox[1] <= n + m


def _wait_applied(client, layer, tile, old_tag, timeout=5.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if (
            client.get(f"/tiles/{layer}/{tile[0]}/{tile[1]}/{tile[2]}.mvt").headers["etag"]
            != old_tag
        ):
            return
        time.sleep(0.1)
    raise AssertionError(f"{layer} {tile} did not change within {timeout} s")


def test_new_incident_changes_exactly_the_affected_tiles(edit_city):
    from geogrid.store.changes import record_incident_change

    engine, client, city = edit_city
    tiles = _tiles(city)
    before = {lay: _etags(client, lay, tiles) for lay in ("incidents", "grids")}
    assert before == {lay: _etags(client, lay, tiles) for lay in ("incidents", "grids")}
    grid = city["grid"].iloc[2 * N + 3]  # row 2, column 3
    p = grid.geometry.centroid
    with engine.begin() as conn:  # the edit and its change row: one transaction
        conn.execute(
            text(
                "INSERT INTO incident (category, reported_at, updated_at, status, due_at, "
                "grid_code, community_code, street_code, district_code, geom) VALUES "
                "('sanitation', now(), now(), 'reported', now() + interval '1 day', :g, :c, "
                "'450902001', '450902', ST_SetSRID(ST_MakePoint(:x, :y), 4326))"
            ),
            {"g": grid["code"], "c": grid["parent_code"], "x": p.x, "y": p.y},
        )
        record_incident_change(conn, [p.x], [p.y], "create")
    home = (16, *tile_range((p.x, p.y, p.x, p.y), 16)[:2])
    _wait_applied(client, "incidents", home, before["incidents"][home])
    # unit tiles follow with the next metrics refresh (at most METRICS_REFRESH s later)
    _wait_applied(client, "grids", home, before["grids"][home], timeout=METRICS_REFRESH + 10)
    after = {lay: _etags(client, lay, tiles) for lay in ("incidents", "grids")}
    pt = (p.x, p.y, p.x, p.y)
    gb = tuple(grid.geometry.bounds)
    for lay, region in (("incidents", pt), ("grids", gb)):
        changed = {t for t in tiles if after[lay][t] != before[lay][t]}
        for z in (13, 14, 15, 16):  # the tile holding the point changed at every zoom
            assert (z, *tile_range(pt, z)[:2]) in changed, (lay, z)
        assert all(_near(t, region) for t in changed), (lay, changed)
        kept = [t for t in tiles if not _near(t, region)]
        assert kept and all(after[lay][t] == before[lay][t] for t in kept)
    assert after["grids"][tiles[-1]] == before["grids"][tiles[-1]]  # far away


def test_boundary_publish_changes_exactly_the_affected_tiles(edit_city):
    from geogrid.core.geometry import as_multipolygons
    from geogrid.store import units as store_units
    from geogrid.store.changes import record_units_change

    engine, client, city = edit_city
    tiles = _tiles(city, zooms=(14, 15, 16))
    before = _etags(client, "grids", tiles)
    g = city["grid"]
    a, b = g.iloc[0], g.iloc[1]  # row 0, columns 0 and 1: move their shared edge 150 m east
    from shapes import lonlat

    moved = gpd.GeoDataFrame(
        pd.DataFrame([a.drop("geometry"), b.drop("geometry")]).reset_index(drop=True),
        geometry=as_multipolygons(
            [lonlat(shapely.box(0, 0, 650, 500)), lonlat(shapely.box(650, 0, 1000, 500))]
        ),
        crs="EPSG:4326",
    )
    with engine.begin() as conn:
        old = store_units.published_version_id(conn)
        new = store_units.create_version(conn, "edge moved", source="tests", based_on=old)
        store_units.copy_units(conn, old, new, exclude_codes=[a["code"], b["code"]])
        store_units.insert_units(conn, new, moved)
        store_units.publish_version(conn, new)
        record_units_change(conn, new, [a["code"], b["code"]], "publish", previous_version_id=old)
    region = tuple(
        np.r_[
            np.minimum(a.geometry.bounds[:2], b.geometry.bounds[:2]),
            np.maximum(a.geometry.bounds[2:], b.geometry.bounds[2:]),
        ]
    )
    edge = lonlat(shapely.Point(575, 250))
    home = (16, *tile_range((edge.x, edge.y, edge.x, edge.y), 16)[:2])
    _wait_applied(client, "grids", home, before[home])
    after = _etags(client, "grids", tiles)
    changed = {t for t in tiles if after[t] != before[t]}
    assert home in changed and all(_near(t, region) for t in changed)
    kept = [t for t in tiles if not _near(t, region)]
    assert len(kept) > 10 and all(after[t] == before[t] for t in kept)


def test_cached_tile_fast_path_answers_like_the_route(demo_http):
    """A cached tile is answered before routing (api.routes.tiles.CachedTiles) with the
    route's bytes and headers; an extra query parameter sends the same request to the
    route, which reads the same cached tile."""
    for path in ("/tiles/grids/13/6599/3573.mvt", "/heatmap/12/3299/1786.png"):
        demo_http.get(path).raise_for_status()  # cached now
        fast = demo_http.get(path)
        routed = demo_http.get(path, params={"x": "1"})
        assert fast.status_code == routed.status_code == 200
        assert fast.content == routed.content and len(fast.content) > 0
        keep = ("etag", "cache-control", "content-type", "content-length")
        assert {k: fast.headers.get(k) for k in keep} == {k: routed.headers.get(k) for k in keep}
        r = demo_http.get(path, headers={"If-None-Match": f'"x", {fast.headers["etag"]}'})
        assert r.status_code == 304 and not r.content
        assert r.headers["etag"] == fast.headers["etag"]
        assert "content-type" not in r.headers
        head = demo_http.head(path)
        assert head.status_code == 200 and not head.content
        assert head.headers["etag"] == fast.headers["etag"]
    # a bad window is still the route's 400
    r = demo_http.get("/tiles/grids/13/6599/3573.mvt", params={"from": "soon"})
    assert r.status_code == 400 and r.json()["parameter"] == "from"


def test_cold_tile_fast_path_draws_like_the_route(demo_http):
    """A tile in no cache is drawn before routing too (issue 12: FastAPI's routing and
    validation were a third of a cold z14 tile): the first request of each tile below, in
    a window of its own, answers the bytes and headers the route then gives for it; a tile
    outside the pyramid is still the route's 400, naming the parameter."""
    window = {"from": "2026-07-03", "to": "2026-08-03"}  # no other test asks for it
    for path in ("/tiles/grids/14/13198/7148.mvt", "/heatmap/13/6600/3574.png"):
        head = demo_http.head(path, params=window)
        assert head.status_code == 200 and not head.content
        first = demo_http.get(path, params=window)
        routed = demo_http.get(path, params={**window, "x": "1"})
        assert first.status_code == routed.status_code == 200
        assert first.content == routed.content and len(first.content) > 0
        keep = ("etag", "cache-control", "content-type", "content-length")
        assert {k: first.headers.get(k) for k in keep} == {k: routed.headers.get(k) for k in keep}
        assert head.headers["etag"] == first.headers["etag"]
    r = demo_http.get("/tiles/grids/3/9/1.mvt", params=window)
    assert r.status_code == 400 and r.json()["parameter"] == "x/y"


def _grid_incidents(data: bytes, code: str) -> int:
    feats = _decode(data)["grids"]["features"]
    return next(
        int(f["properties"].get("incidents") or 0) for f in feats if f["properties"]["code"] == code
    )


def test_writes_refresh_the_metrics_instead_of_clearing_them(edit_city):
    """Issue 12: an incident keeps the metrics frames (refreshed, coalesced) and the static
    memos; the grid tile around it shows the new count at once when no refresh ran
    recently, and after the next coalesced refresh otherwise; a far tile is untouched."""
    from geogrid.services.mapservice import MapService
    from geogrid.services.tilecache import TileCache
    from geogrid.settings import get_settings
    from geogrid.store.changes import record_incident_change

    engine, _, city = edit_city
    svc = MapService(engine, get_settings(), cache=TileCache())
    try:
        win = svc.window()
        svc.poll(force=True)  # the change log's high-water mark
        grid = city["grid"].iloc[4 * N + 1]
        p = grid.geometry.centroid
        home = (15, *tile_range((p.x, p.y, p.x, p.y), 15)[:2])
        far = (15, *tile_range((110.6, 22.3, 110.6, 22.3), 15)[:2])
        n0 = _grid_incidents(svc.vector_tile("grids", *home, win)[0], grid["code"])
        far_tag = svc.vector_tile("grids", *far, win)[1]
        svc.bounds()

        def report() -> None:
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO incident (category, reported_at, updated_at, status, "
                        "due_at, grid_code, community_code, street_code, district_code, geom) "
                        "VALUES ('sanitation', now(), now(), 'reported', now() + interval "
                        "'1 day', :g, :c, '450902001', '450902', "
                        "ST_SetSRID(ST_MakePoint(:x, :y), 4326))"
                    ),
                    {"g": grid["code"], "c": grid["parent_code"], "x": p.x, "y": p.y},
                )
                record_incident_change(conn, [p.x], [p.y], "create")

        report()
        assert svc.poll(force=True) == 1
        assert svc.refreshes == 1  # applied at once: the frame first, then the tiles
        # drawn again by the refresh (issue 12): in memory with the new count, not missing
        held = svc.cache.peek("grids", *home, win.key)
        assert held is not None and _grid_incidents(held[0], grid["code"]) == n0 + 1
        misses = svc.cache.misses
        assert _grid_incidents(svc.vector_tile("grids", *home, win)[0], grid["code"]) == n0 + 1
        assert svc.cache.misses == misses
        frames = [k for k in svc.metrics.keys() if k[0] == "frame"]
        assert frames and svc.static.peek("bounds") is not None  # kept, not cleared
        report()  # right after a refresh: coalesced into the next one
        assert svc.poll(force=True) == 1 and svc.refreshes == 1
        assert svc.metrics.peek(frames[0]) is not None
        deadline = time.monotonic() + 30
        while svc.refreshes < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert svc.refreshes == 2
        assert _grid_incidents(svc.vector_tile("grids", *home, win)[0], grid["code"]) == n0 + 2
        assert svc.cache.misses == misses
        assert svc.vector_tile("grids", *far, win)[1] == far_tag
    finally:
        svc.close()


def test_an_expired_frame_is_answered_while_one_thread_builds_it_again(edit_city):
    """A province's grid frame takes ~20 s (docs/scale.md): an expired frame is answered as
    it is while one thread builds it again, and what was derived from it (the tiles' index)
    follows the new frame instead of being served with it."""
    from geogrid.services.mapservice import MapService
    from geogrid.services.tilecache import TileCache
    from geogrid.settings import get_settings

    engine, _, city = edit_city
    svc = MapService(engine, get_settings(), cache=TileCache(), metrics_ttl=0.5)
    try:
        win = svc.window()
        first = svc.unit_metrics("grid", win)
        index = svc._metric_index("grid", win)
        assert svc._metric_index("grid", win) is index  # held with its frame
        time.sleep(0.6)  # expired
        assert svc.unit_metrics("grid", win) is first  # answered at once, renewed meanwhile
        deadline = time.monotonic() + 30
        while svc.unit_metrics("grid", win) is first and time.monotonic() < deadline:
            time.sleep(0.05)
        renewed = svc.unit_metrics("grid", win)
        assert renewed is not first and len(renewed) == len(first) == len(city["grid"])
        cols = [c for c in first.columns if c in renewed.columns]
        pd.testing.assert_frame_equal(renewed[cols], first[cols])  # nothing changed
        assert svc._metric_index("grid", win) is not index  # made again from the new frame
    finally:
        svc.close()


def test_a_request_that_builds_a_frame_gives_it_the_standard_budget(edit_city):
    """A frame is shared by every tile of its level and window: the request that builds it
    lends it the standard class's statement budget, not its own (a tile's cheap 5 s ended a
    province's grid frame in a 503 for every tile). The rollup is locked by another
    transaction for 1.5 s: the metrics themselves, under a 0.5 s budget, are cancelled;
    the map's frame, asked for under the same budget, waits and is built."""
    import threading

    from sqlalchemy.exc import OperationalError

    from geogrid.services.limits import statement_timeout
    from geogrid.services.mapservice import MapService
    from geogrid.services.metrics import metrics_frame
    from geogrid.services.tilecache import TileCache
    from geogrid.settings import get_settings

    engine, _, city = edit_city
    svc = MapService(engine, get_settings(), cache=TileCache())
    win = svc.window("2026-03-01", "2026-04-01")  # no other test asks for it
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with engine.begin() as conn:
            conn.execute(text("LOCK TABLE incident_daily IN ACCESS EXCLUSIVE MODE"))
            locked.set()
            release.wait(1.5)

    try:
        for ask in ("metrics", "map"):
            release.clear()
            holder = threading.Thread(target=hold)
            holder.start()
            assert locked.wait(10)
            locked.clear()
            try:
                with statement_timeout(500):
                    if ask == "metrics":
                        with pytest.raises(
                            (OperationalError, psycopg.errors.QueryCanceled),
                            match="statement timeout",
                        ):
                            metrics_frame(engine, "grid", start=win.start, end=win.end)
                    else:
                        frame = svc.unit_metrics("grid", win)
                        assert len(frame) == len(city["grid"])
            finally:
                holder.join()
    finally:
        svc.close()


def test_incident_points_read_by_binary_copy_equal_the_rows(edit_city):
    """The heat map's points (binary COPY decoded by NumPy) are exactly the incidents of
    the window and categories as plain SQL rows give them, as float8."""
    from datetime import UTC, datetime

    from geogrid.store.tiles import incident_points

    engine, _, _ = edit_city
    pts = [
        (110.1 + i / 997, 22.6 + i / 1009, "sanitation" if i % 3 else "noise") for i in range(50)
    ]
    with engine.begin() as conn:
        for i, (x, y, cat) in enumerate(pts):
            conn.execute(
                text(
                    "INSERT INTO incident (category, reported_at, updated_at, status, grid_code, "
                    "geom) VALUES (:c, :t, :t, 'reported', NULL, "
                    "ST_SetSRID(ST_MakePoint(:x, :y), 4326))"
                ),
                {"c": cat, "t": datetime(2025, 3, 1 + i % 28, 12, tzinfo=UTC), "x": x, "y": y},
            )
    start, end = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 15, tzinfo=UTC)
    try:
        with engine.connect() as conn:
            lon, lat = incident_points(conn, start=start, end=end, categories=["sanitation"])
            rows = conn.execute(
                text(
                    "SELECT ST_X(geom), ST_Y(geom) FROM incident WHERE reported_at >= :s "
                    "AND reported_at < :e AND category = 'sanitation' ORDER BY 1, 2"
                ),
                {"s": start, "e": end},
            ).all()
            none = incident_points(conn, start=end, end=end)
        assert len(rows) > 10
        got = sorted(zip(lon.tolist(), lat.tolist(), strict=True))
        assert got == [(float(x), float(y)) for x, y in rows]
        assert lon.dtype == lat.dtype == np.float64 and len(none[0]) == len(none[1]) == 0
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM incident WHERE reported_at < '2025-04-01'"))
