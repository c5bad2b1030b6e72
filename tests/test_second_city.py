"""A second city, not Yulin: the city is configuration, not code.

A synthetic four-level city around lon 117.2, lat 31.85 (the CGCS2000 3-degree
Gauss-Kruger zone with central meridian 117E, EPSG:4548, two zones east of the demo's
EPSG:4546) is written to boundary files, imported level by level with the command line
(``geogrid boundaries import``, run in this process with the city's environment), and served by a real ``uvicorn`` process started the way
``geogrid serve`` starts it (``api.main:app_from_env``), configured only by its city file
(``GEOGRID_CITY_FILE``).

Its time zone is deliberately not China Standard Time: ``Asia/Urumqi`` (UTC+6), so local
months computed in the wrong zone would put the test incidents in other months.

Layout (codes 3401dd sss ccc ggg): 2 districts side by side, 2 streets each (south,
north), 2 communities each (west, east), 4 grids each (2 × 2): 32 grids over
117.00-117.40E, 31.70-32.00N.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import httpx
import pandas as pd
import pytest
import shapely
from conftest import create_database, drop_database
from numpy.testing import assert_allclose
from shapely import box
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from geogrid.cli import app as cli_app
from geogrid.core.catalogue import load_categories
from geogrid.services.city import FALLBACK_NAME, profile_for
from geogrid.settings import City, CityFileError, Settings, load_city

ROOT = Path(__file__).resolve().parents[1]
BOUNDS = (117.00, 31.70, 117.40, 32.00)
CITY_TOML = """\
[city]
code = "340100"
name_zh = "合肥测试市"
name_en = "Testcity"
timezone = "Asia/Urumqi"
source = "Testcity synthetic boundaries (tests)"
"""
#: the metric CRS the service must derive from the boundaries' longitude (CM 117E)
EXPECTED_CRS = "EPSG:4548"
CHROMIUM = "/usr/bin/chromium"


# ------------------------------------------------------------------ the synthetic city


def _split(geom: shapely.Polygon, axis: str, n: int) -> list[shapely.Polygon]:
    x0, y0, x1, y1 = geom.bounds
    if axis == "x":
        xs = [x0 + (x1 - x0) * i / n for i in range(n + 1)]
        return [box(xs[i], y0, xs[i + 1], y1) for i in range(n)]
    ys = [y0 + (y1 - y0) * i / n for i in range(n + 1)]
    return [box(x0, ys[i], x1, ys[i + 1]) for i in range(n)]


def city_layers() -> dict[str, gpd.GeoDataFrame]:
    """The four levels (code, name, parent_code, geometry; EPSG:4326)."""
    rows: dict[str, list[tuple[str, str, str | None, shapely.Polygon]]] = {
        "district": [],
        "street": [],
        "community": [],
        "grid": [],
    }
    for d, dgeom in enumerate(_split(box(*BOUNDS), "x", 2), start=1):
        dcode = f"3401{d:02d}"
        rows["district"].append((dcode, f"测试{'西东'[d - 1]}区", None, dgeom))
        for s, sgeom in enumerate(_split(dgeom, "y", 2), start=1):
            scode = f"{dcode}{s:03d}"
            rows["street"].append((scode, f"测试{d}区{'南北'[s - 1]}街道", dcode, sgeom))
            for c, cgeom in enumerate(_split(sgeom, "x", 2), start=1):
                ccode = f"{scode}{c:03d}"
                rows["community"].append((ccode, f"{scode}号{c}社区", scode, cgeom))
                cells = [g for half in _split(cgeom, "x", 2) for g in _split(half, "y", 2)]
                for g, ggeom in enumerate(cells, start=1):
                    rows["grid"].append((f"{ccode}{g:03d}", f"{ccode}第{g}网格", ccode, ggeom))
    return {
        level: gpd.GeoDataFrame(
            {
                "code": [r[0] for r in rs],
                "name": [r[1] for r in rs],
                "parent_code": [r[2] for r in rs],
            },
            geometry=[r[3] for r in rs],
            crs="EPSG:4326",
        )
        for level, rs in rows.items()
    }


def _write_files(layers: dict[str, gpd.GeoDataFrame], folder: Path) -> dict[str, Path]:
    """One file per level in several formats; streets carry no parent field, so their
    parents are matched by containment."""
    paths = {
        "district": folder / "district.geojson",
        "street": folder / "street.geojson",
        "community": folder / "community.gpkg",
        "grid": folder / "grid.parquet",
    }
    layers["district"][["code", "name", "geometry"]].to_file(paths["district"], driver="GeoJSON")
    layers["street"][["code", "name", "geometry"]].to_file(paths["street"], driver="GeoJSON")
    layers["community"].to_file(paths["community"], driver="GPKG")
    layers["grid"].to_parquet(paths["grid"])
    return paths


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    url: str
    env: dict[str, str]
    layers: dict[str, gpd.GeoDataFrame]
    http: httpx.Client
    base: str
    category: str
    grid: str


def _cli(args: list[str], env: dict[str, str]) -> str:
    """Run a ``geogrid`` command in this process with ``env`` as its environment; its
    output, whitespace normalised."""
    res = CliRunner().invoke(cli_app, args, env=env)
    assert res.exit_code == 0, f"geogrid {' '.join(args)}: {res.output}\n{res.exception!r}"
    return " ".join(res.output.split())


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    """The second city imported with the CLI and served by a uvicorn process."""
    folder = tmp_path_factory.mktemp("testcity")
    city_file = folder / "testcity.toml"
    city_file.write_text(CITY_TOML, encoding="utf-8")
    layers = city_layers()
    paths = _write_files(layers, folder)
    url = create_database("geogrid_city2")
    env = {
        **os.environ,
        "GEOGRID_DATABASE_URL": url,
        "GEOGRID_CITY_FILE": str(city_file),
        "GEOGRID_HOME": str(folder / "home"),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("GEOGRID_CATEGORIES", None)
    proc = None
    try:
        for level in ("district", "street", "community", "grid"):
            out = _cli(["boundaries", "import", str(paths[level]), "--level", level], env)
            assert f"areas in {EXPECTED_CRS}" in out
        assert "stored" in _cli(["city", "categories"], env)

        # two incidents in the first grid: one at an explicit UTC instant, one naive
        # (read in the city's zone, Asia/Urumqi, UTC+6)
        grid = layers["grid"].iloc[0]
        lon, lat = grid.geometry.centroid.x, grid.geometry.centroid.y
        category = str(load_categories().index[0])
        # (one file each: the importer reads one file's times in one way)
        for source_id, reported_at in (
            # Urumqi: 2026-02-28 23:30 (Shanghai would say 1 March, 01:30)
            ("T-1", "2026-02-28T17:30:00Z"),
            # naive: Urumqi 2026-04-01 01:00 = 2026-03-31T19:00Z (it would be 31 March in
            # Urumqi had it been misread as Shanghai time)
            ("T-2", "2026-04-01 01:00:00"),
        ):
            csv = folder / f"{source_id}.csv"
            pd.DataFrame(
                {
                    "source_id": [source_id],
                    "category": [category],
                    "lon": [lon],
                    "lat": [lat],
                    "reported_at": [reported_at],
                }
            ).to_csv(csv, index=False)
            assert "1 loaded" in _cli(["incidents", "import", str(csv)], env)

        port = _free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.main:app_from_env",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=ROOT,
        )
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(600):
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError("the server exited")
                time.sleep(0.1)
            else:  # pragma: no cover
                raise RuntimeError("the server did not start")
            yield Served(url, env, layers, client, base, category, str(grid["code"]))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        drop_database(url)


# ------------------------------------------------------------------ configuration served


def test_config_follows_the_city_file(served: Served) -> None:
    cfg = served.http.get("/config").json()
    city = cfg["city"]
    assert city["code"] == "340100"
    assert (city["name_zh"], city["name_en"]) == ("合肥测试市", "Testcity")
    assert city["timezone"] == "Asia/Urumqi"
    # not configured: derived from the published boundaries' central longitude
    assert city["metric_crs"] == EXPECTED_CRS
    assert_allclose(city["center"], [117.2, 31.85], atol=1e-9)
    assert 7 <= city["zoom"] <= 12
    assert city["source"] == "Testcity synthetic boundaries (tests)"
    assert [lv["key"] for lv in cfg["levels"]] == ["district", "street", "community", "grid"]
    assert [lv["code_length"] for lv in cfg["levels"]] == [6, 9, 12, 15]
    assert {"incidents", "area_m2", "load_index"} <= {m["key"] for m in cfg["metrics"]}
    assert cfg["statuses"][0] == "reported"
    assert served.category in {c["code"] for c in cfg["categories"]}
    assert set(cfg["categories"][0]) == {"code", "name_zh", "name_en"}
    assert "玉林" not in str(cfg) and "Yulin" not in str(cfg)


def test_openapi_and_page_do_not_name_yulin(served: Served) -> None:
    doc = served.http.get("/openapi.json").json()
    assert "Yulin" not in doc["info"]["title"] + doc["info"].get("description", "")
    assert "玉林" not in doc["info"]["title"] + doc["info"].get("description", "")
    page = served.http.get("/")
    assert page.status_code == 200
    assert "玉林" not in page.text and "Yulin" not in page.text


def test_cli_shows_the_city_as_served(served: Served) -> None:
    out = _cli(["city", "show"], served.env)
    assert '"metric_crs": "EPSG:4548"' in out and '"timezone": "Asia/Urumqi"' in out
    assert "合肥测试市" in out and '"published_version": 4' in out


# ------------------------------------------------------------------ areas in its own zone


@pytest.mark.parametrize("level", ["district", "street", "community", "grid"])
def test_areas_are_measured_in_the_citys_gauss_kruger_zone(served: Served, level: str) -> None:
    got = served.http.get(f"/boundaries/{level}").json()["features"]
    served_area = pd.Series(
        {f["properties"]["code"]: f["properties"]["area_m2"] for f in got}, dtype=float
    )
    layer = served.layers[level].set_index("code")
    assert sorted(served_area.index) == sorted(layer.index)
    expected = layer.geometry.to_crs(EXPECTED_CRS).area
    assert_allclose(served_area[expected.index], expected.to_numpy(), rtol=1e-6)
    # the demo's zone (CM 111E) would be ~0.9 % off here: the check tells them apart
    other = layer.geometry.to_crs("EPSG:4546").area
    assert (other / expected - 1).abs().min() > 1e-3


def test_streets_got_their_parents_by_containment(served: Served) -> None:
    streets = served.http.get("/boundaries/street").json()["features"]
    parents = {f["properties"]["code"]: f["properties"]["parent_code"] for f in streets}
    assert parents == {c: c[:6] for c in parents}


# ------------------------------------------------------------------ times in its own zone


def test_local_months_follow_the_citys_time_zone(served: Served) -> None:
    with create_engine(served.url).connect() as conn:
        stored = dict(conn.execute(text("SELECT source_id, reported_at FROM incident")).all())
    # the naive time was read in Asia/Urumqi (UTC+6)
    assert stored["T-2"].isoformat() == "2026-03-31T19:00:00+00:00"
    assert stored["T-1"].isoformat() == "2026-02-28T17:30:00+00:00"

    r = served.http.get(
        f"/metrics/grid/{served.grid}/trend",
        params={"interval": "month", "from": "2026-01-01", "to": "2026-05-01"},
    )
    assert r.status_code == 200, r.text
    periods = r.json()["periods"]
    assert [p["period"] for p in periods] == [
        "2026-01-01",
        "2026-02-01",
        "2026-03-01",
        "2026-04-01",
    ]
    # local midnight in Urumqi is 18:00 UTC the day before
    assert [p["period_start"] for p in periods] == [
        "2025-12-31T18:00:00+00:00",
        "2026-01-31T18:00:00+00:00",
        "2026-02-28T18:00:00+00:00",
        "2026-03-31T18:00:00+00:00",
    ]
    # 17:30Z on 28 Feb is still February in Urumqi; 19:00Z on 31 March is already April
    assert [p["incidents"] for p in periods] == [0, 1, 0, 1]


# ------------------------------------------------------------------ the page


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed")
def test_page_title_and_header_name_the_city(served: Served) -> None:
    from playwright.sync_api import sync_playwright  # the browser driver: dev extra only

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(served.base + "/")
            page.wait_for_function("document.body.dataset.ready === '1'", timeout=120_000)
            assert "合肥测试市" in page.title()
            text_shown = page.inner_text("body")
            assert "合肥测试市" in text_shown
            assert "玉林" not in page.title() + text_shown
        finally:
            browser.close()


# ------------------------------------------------------------------ settings


def test_a_city_file_must_name_its_zone_and_a_projected_crs(tmp_path: Path) -> None:
    no_zone = tmp_path / "nozone.toml"
    no_zone.write_text('[city]\nname_en = "X"\n', encoding="utf-8")
    with pytest.raises(CityFileError, match="timezone is required"):
        load_city(no_zone)
    bad_crs = tmp_path / "badcrs.json"
    bad_crs.write_text('{"timezone": "Asia/Shanghai", "metric_crs": "EPSG:4326"}')
    with pytest.raises(CityFileError, match="not a projected"):
        load_city(bad_crs)
    bad_zone = tmp_path / "badzone.toml"
    bad_zone.write_text('timezone = "Mars/Olympus"\n', encoding="utf-8")
    with pytest.raises(CityFileError, match="unknown time zone"):
        load_city(bad_zone)
    with pytest.raises(CityFileError, match="no such file"):
        load_city(tmp_path / "missing.toml")


def test_city_from_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GEOGRID_CITY_FILE", raising=False)
    monkeypatch.setenv("GEOGRID_CITY__NAME_ZH", "合肥测试市")
    monkeypatch.setenv("GEOGRID_CITY__TIMEZONE", "Asia/Urumqi")
    monkeypatch.setenv("GEOGRID_CITY__METRIC_CRS", "epsg:4548")
    city = Settings().city
    assert (city.name_zh, city.timezone, city.metric_crs) == (
        "合肥测试市",
        "Asia/Urumqi",
        "EPSG:4548",
    )
    # with a file: the variables override the file's fields, the rest comes from the file
    path = tmp_path / "city.toml"
    path.write_text(CITY_TOML.replace("合肥测试市", "文件市"), encoding="utf-8")
    monkeypatch.setenv("GEOGRID_CITY_FILE", str(path))
    monkeypatch.delenv("GEOGRID_CITY__TIMEZONE")
    city = Settings().city
    assert (city.name_zh, city.name_en, city.code) == ("合肥测试市", "Testcity", "340100")
    assert (city.timezone, city.metric_crs) == ("Asia/Urumqi", "EPSG:4548")


def test_an_unconfigured_city_on_an_empty_database_is_neutral(make_db) -> None:
    vid, profile = profile_for(create_engine(make_db()), City())
    assert vid is None
    assert (profile.name_zh, profile.name_en, profile.source) == (FALLBACK_NAME,) * 3
    assert profile.metric_crs is None
    assert profile.timezone == "Asia/Shanghai"  # the documented China-wide default
