"""Boundary files (read/write every format), import into PostGIS (all or nothing), the
hierarchy checked against PostGIS, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from conftest import create_database, drop_database
from sqlalchemy import text

from geogrid.errors import FileInputError, InvalidInput, TopologyError
from geogrid.services.boundaries import import_layer, read_boundary_file, write_boundary_file
from geogrid.store import get_engine
from geogrid.store.units import load_units

ROOT = Path(__file__).resolve().parents[1]
YULIN = ROOT / "boundaries" / "yulin"


@pytest.fixture(scope="module")
def districts() -> gpd.GeoDataFrame:
    return read_boundary_file(YULIN / "yulin_counties_wgs84.geojson", "district")


@pytest.fixture(scope="module")
def demo_units():
    from geogrid.demo.boundaries import build_hierarchy

    return build_hierarchy()


def test_read_real_districts(districts):
    assert len(districts) == 7
    assert set(districts["code"]) == {
        "450902",
        "450903",
        "450921",
        "450922",
        "450923",
        "450924",
        "450981",
    }
    yz = districts.set_index("code").loc["450902"]
    assert yz["name"] == "玉州区"
    assert yz["area_m2"] == pytest.approx(438e6, rel=0.02)
    assert (districts.geometry.geom_type == "MultiPolygon").all()
    assert districts.crs.to_epsg() == 4326


def test_read_gcj02_file_is_converted(districts):
    gcj = read_boundary_file(YULIN / "yulin_counties_gcj02.geojson", "district", crs="gcj02")
    a = gcj.set_index("code").geometry.to_crs("EPSG:4546")
    b = districts.set_index("code").geometry.to_crs("EPSG:4546")
    for code in a.index:
        # the two files are an exact GCJ-02 pair: back to WGS84 within centimetres
        assert shapely.hausdorff_distance(a[code], b[code]) < 0.05


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".zip", ".parquet"])
def test_round_trip_every_format(tmp_path, demo_units, suffix):
    streets = demo_units["street"].head(30).copy()
    path = write_boundary_file(streets, tmp_path / f"streets{suffix}")
    back = read_boundary_file(path, "street")
    assert list(back["code"]) == list(streets["code"])
    assert list(back["name"]) == list(streets["name"])
    assert list(back["parent_code"]) == list(streets["parent_code"])
    assert list(back["population"]) == list(streets["population"])
    assert list(back["households"]) == list(streets["households"])
    assert np.allclose(back["area_m2"], streets["area_m2"], rtol=1e-9)
    assert shapely.equals_exact(back.geometry.values, streets.geometry.values, tolerance=1e-9).all()


def test_bad_files_name_row_and_field(tmp_path):
    p = tmp_path / "bad.geojson"
    p.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"code": "450902", "name": "a"},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [[[110, 22], [110.1, 22], [110.1, 22.1], [110, 22]]],
                        },
                    },
                    {
                        "type": "Feature",
                        "properties": {"code": None, "name": "b"},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [[[110, 22], [110.1, 22], [110.1, 22.1], [110, 22]]],
                        },
                    },
                    {
                        "type": "Feature",
                        "properties": {"code": "3", "name": "c"},
                        "geometry": {"type": "Point", "coordinates": [110, 22]},
                    },
                ],
            }
        )
    )
    with pytest.raises(FileInputError) as info:
        read_boundary_file(p, "district")
    msg = str(info.value)
    assert "row 2, field 'code': code is missing" in msg
    assert "row 3, field 'geometry': Point is not a polygon" in msg
    with pytest.raises(FileInputError, match="field 'nom'"):
        read_boundary_file(p, "district", name_field="nom")
    with pytest.raises(InvalidInput, match="level='town'"):
        read_boundary_file(p, "town")
    with pytest.raises(FileInputError, match="file not found"):
        read_boundary_file(tmp_path / "missing.geojson", "district")


def _snapshot(engine) -> tuple:
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT id, status FROM boundary_version ORDER BY id")).all()
        units = conn.execute(
            text(
                "SELECT count(*), coalesce(md5(string_agg(code || level || "
                "coalesce(parent_code, '') || ST_AsEWKB(geom)::text, ',' ORDER BY id)), '') "
                "FROM unit"
            )
        ).one()
    return tuple(versions), tuple(units)


def test_import_matches_parents_and_bad_import_changes_nothing(make_db, districts, demo_units):
    engine = get_engine(make_db())
    # the demo's districts: the real outlines snapped to the 1e-7 degree precision grid
    res = import_layer(engine, demo_units["district"], "district", source="test")
    assert res.published and res.count == 7
    # streets without a parent field: parents matched by containment
    streets = demo_units["street"].copy()
    truth = dict(zip(streets["code"], streets["parent_code"], strict=True))
    streets["parent_code"] = None
    res2 = import_layer(engine, streets, "street", source="test")
    stored = load_units(engine, "street")
    assert res2.version_id > res.version_id
    assert dict(zip(stored["code"], stored["parent_code"], strict=True)) == truth
    assert len(load_units(engine, "district")) == 7  # copied into the new version

    before = _snapshot(engine)
    # a bad layer: one community overlaps its sibling, another lies outside every street
    comms = demo_units["community"].copy()
    comms = comms[comms["parent_code"].str.startswith("450902")].head(20).copy()
    comms.loc[comms.index[1], "geometry"] = (
        shapely.MultiPolygon(
            [comms.geometry.iloc[1].union(comms.geometry.iloc[0].buffer(0.002)).buffer(0)]
        )
        if comms.geometry.iloc[1].union(comms.geometry.iloc[0].buffer(0.002)).geom_type == "Polygon"
        else comms.geometry.iloc[1]
    )
    with pytest.raises(TopologyError) as info:
        import_layer(engine, comms, "community", source="bad")
    kinds = {f.kind for f in info.value.findings}
    assert "gap" in kinds  # only 20 of the communities: streets are not covered
    assert _snapshot(engine) == before  # nothing written


def test_hierarchy_against_postgis(make_db, demo_units):
    from geogrid.services.boundaries import save_hierarchy

    url = make_db()
    engine = get_engine(url)
    vid = save_hierarchy(engine, demo_units, label="demo", source="test")
    with engine.connect() as conn:
        counts = dict(
            conn.execute(
                text("SELECT level, count(*) FROM unit WHERE version_id = :v GROUP BY level"),
                {"v": vid},
            ).all()
        )
        assert counts == {
            "district": 7,
            "street": len(demo_units["street"]),
            "community": len(demo_units["community"]),
            "grid": 8798,
        }
        # every child's interior point is covered by its parent, in PostGIS
        bad = conn.execute(
            text(
                "SELECT count(*) FROM unit c JOIN unit p ON p.version_id = c.version_id "
                "AND p.code = c.parent_code WHERE c.version_id = :v "
                "AND NOT ST_Covers(p.geom, ST_PointOnSurface(c.geom))"
            ),
            {"v": vid},
        ).scalar_one()
        assert bad == 0
        orphans = conn.execute(
            text(
                "SELECT count(*) FROM unit c LEFT JOIN unit p ON p.version_id = c.version_id "
                "AND p.code = c.parent_code WHERE c.version_id = :v AND c.level <> 'district' "
                "AND p.id IS NULL"
            ),
            {"v": vid},
        ).scalar_one()
        assert orphans == 0
        # our areas (pyproj, EPSG:4546) equal PostGIS's in the same CRS
        worst = conn.execute(
            text(
                "SELECT max(abs(area_m2 / ST_Area(ST_Transform(geom, 4546)) - 1)) FROM unit "
                "WHERE version_id = :v"
            ),
            {"v": vid},
        ).scalar_one()
        assert worst < 1e-6
        # grids sum to their community within 0.01 %
        worst_sum = conn.execute(
            text(
                "SELECT max(abs(s.a / c.area_m2 - 1)) FROM unit c JOIN (SELECT parent_code, "
                "sum(area_m2) a FROM unit WHERE version_id = :v AND level = 'grid' "
                "GROUP BY parent_code) s ON s.parent_code = c.code WHERE c.version_id = :v"
            ),
            {"v": vid},
        ).scalar_one()
        assert worst_sum < 1e-4
    # lookup in PostGIS agrees with the library's point lookup
    from geogrid.services.lookup import locate

    res = locate(110.18, 22.65, engine=engine)
    assert res["inside"] and set(res["units"]) == {"district", "street", "community", "grid"}
    assert res["units"]["district"]["code"] == "450902"
    chain = res["units"]
    assert chain["grid"]["parent_code"] == chain["community"]["code"]
    assert chain["community"]["parent_code"] == chain["street"]["code"]
    assert chain["street"]["parent_code"] == "450902"
    out = locate(100.0, 30.0, engine=engine)
    assert not out["inside"] and "outside every district" in out["message"]


def _cli(
    args: list[str], url: str, cwd: Path, columns: int | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "GEOGRID_DATABASE_URL": url}
    if columns is not None:  # rich's console width
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "geogrid.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
    )


def test_cli_validate_import_export(make_db, tmp_path, districts):
    url = make_db()
    # a crafted bad file: two districts overlapping, one bow-tie
    bad = districts.head(3).copy()
    bad.loc[bad.index[1], "geometry"] = shapely.MultiPolygon(
        [bad.geometry.iloc[1].geoms[0].union(bad.geometry.iloc[0].geoms[0].buffer(0.01))]
    )
    bad.loc[bad.index[2], "geometry"] = shapely.MultiPolygon(
        [shapely.Polygon([(110.0, 22.0), (110.01, 22.01), (110.01, 22.0), (110.0, 22.01)])]
    )
    path = write_boundary_file(bad, tmp_path / "bad.geojson")
    res = _cli(
        ["boundaries", "validate", str(path), "--level", "district", "--format", "geojson"],
        url,
        tmp_path,
    )
    assert res.returncode == 1, res.stderr
    kinds = {f["properties"]["kind"] for f in json.loads(res.stdout)["features"]}
    assert {"overlap", "invalid_geometry"} <= kinds
    res = _cli(["boundaries", "import", str(path), "--level", "district"], url, tmp_path)
    assert res.returncode == 2 and "nothing was imported" in res.stderr
    good = write_boundary_file(districts, tmp_path / "good.gpkg")
    res = _cli(["boundaries", "import", str(good), "--level", "district"], url, tmp_path)
    assert res.returncode == 0, res.stderr
    res = _cli(["boundaries", "validate"], url, tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    out = tmp_path / "out.zip"
    res = _cli(["boundaries", "export", str(out), "--level", "district"], url, tmp_path)
    assert res.returncode == 0, res.stderr
    back = read_boundary_file(out, "district")
    assert sorted(back["code"]) == sorted(districts["code"])


def _holed(districts: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, float]:
    """The districts with a 2 km × 2 km hole cut out of the first one (inside it, away
    from its edges), and the hole's area in the city's metric CRS (m²)."""
    first = districts.geometry.iloc[0]
    centre = first.representative_point()
    to_m = gpd.GeoSeries([centre], crs="EPSG:4326").to_crs("EPSG:4546").iloc[0]
    hole_m = shapely.box(to_m.x - 1000, to_m.y - 1000, to_m.x + 1000, to_m.y + 1000)
    hole = gpd.GeoSeries([hole_m], crs="EPSG:4546").to_crs("EPSG:4326").iloc[0]
    assert first.contains(hole)
    out = districts.copy()
    out.loc[out.index[0], "geometry"] = shapely.MultiPolygon(
        [g for g in shapely.get_parts(first.difference(hole))]
    )
    area = float(gpd.GeoSeries([hole], crs="EPSG:4326").to_crs("EPSG:4546").area.iloc[0])
    return out, area


def test_cli_validate_within_outline_reports_the_gap_area(make_db, tmp_path, districts):
    """``validate PATH --level district --within OUTLINE``: the hole is reported with its
    area (m², the city's metric CRS) within 1 %; a clean layer has nothing to report."""
    url = make_db()
    outline = gpd.GeoDataFrame(geometry=[districts.union_all()], crs="EPSG:4326")
    outline_path = tmp_path / "city.geojson"
    outline.to_file(outline_path, driver="GeoJSON")
    holed, hole_area = _holed(districts)
    path = write_boundary_file(holed, tmp_path / "holed.geojson")
    res = _cli(
        ["boundaries", "validate", str(path), "--level", "district", "--within", str(outline_path)]
        + ["--format", "geojson"],
        url,
        tmp_path,
    )
    assert res.returncode == 1, res.stderr
    gaps = [
        f["properties"]
        for f in json.loads(res.stdout)["features"]
        if f["properties"]["kind"] == "outline_gap"
    ]
    assert len(gaps) == 1, gaps
    assert gaps[0]["area_m2"] == pytest.approx(hole_area, rel=0.01)
    clean = write_boundary_file(districts, tmp_path / "clean.geojson")
    res = _cli(
        [
            "boundaries",
            "validate",
            str(clean),
            "--level",
            "district",
            "--within",
            str(outline_path),
        ],
        url,
        tmp_path,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    # the table names the kind and the area, with nothing cut short at 80 columns
    res = _cli(
        ["boundaries", "validate", str(path), "--level", "district", "--within", str(outline_path)],
        url,
        tmp_path,
        columns=80,
    )
    assert res.returncode == 1 and "outline_gap" in res.stdout and "…" not in res.stdout


def test_outline_is_kept_with_the_version(make_db, tmp_path, districts):
    """Importing the top level keeps its outline with the version; later versions keep it,
    and a top level with a hole is then refused with the gap's area, and found by
    ``validate`` of the stored version when forced."""
    engine = get_engine(make_db())
    res = import_layer(engine, districts, "district", source="test")
    holed, hole_area = _holed(districts)
    with pytest.raises(TopologyError) as info:
        import_layer(engine, holed, "district", source="holed")
    gaps = [f for f in info.value.findings if f.kind == "outline_gap"]
    assert len(gaps) == 1 and gaps[0].area_m2 == pytest.approx(hole_area, rel=0.01)
    forced = import_layer(engine, holed, "district", source="holed", force=True)
    assert forced.version_id > res.version_id
    from geogrid.services.boundaries import validate_stored

    found = validate_stored(engine, level="district")
    assert [f.kind for f in found] == ["outline_gap"]
    assert found[0].area_m2 == pytest.approx(hole_area, rel=0.01)


def test_force_with_duplicate_codes_is_refused_with_a_message(make_db, tmp_path, districts):
    url = make_db()
    dup = districts.copy()
    dup.loc[dup.index[1], "code"] = dup["code"].iloc[0]
    path = write_boundary_file(dup, tmp_path / "dup.geojson")
    res = _cli(
        ["boundaries", "import", str(path), "--level", "district", "--repair", "--force"],
        url,
        tmp_path,
    )
    assert res.returncode == 2
    assert "duplicate code" in res.stderr and "Traceback" not in res.stderr + res.stdout
    assert dup["code"].iloc[0] in res.stderr


def test_import_into_a_database_never_migrated_says_what_to_do(tmp_path, districts):
    url = create_database("geogrid_nomig", revision=None)
    try:
        path = write_boundary_file(districts, tmp_path / "d.geojson")
        res = _cli(["boundaries", "import", str(path), "--level", "district"], url, tmp_path)
        assert res.returncode == 2, res.stdout + res.stderr
        assert "run `geogrid db migrate`" in res.stderr and "Traceback" not in res.stderr
    finally:
        drop_database(url)


def test_cli_listings_take_format_table_json_csv(make_db, tmp_path, districts):
    url = make_db()
    import_layer(get_engine(url), districts, "district", source="a source path long enough")
    res = _cli(["boundaries", "versions", "--format", "json"], url, tmp_path)
    assert res.returncode == 0, res.stderr
    versions = json.loads(res.stdout)
    assert versions[0]["id"] >= 1 and versions[0]["status"] == "published"
    res = _cli(["boundaries", "versions", "--format", "csv"], url, tmp_path)
    assert res.returncode == 0 and res.stdout.splitlines()[0].startswith("id,")
    res = _cli(["boundaries", "versions"], url, tmp_path, columns=80)
    assert res.returncode == 0 and "…" not in res.stdout
    assert max(len(line) for line in res.stdout.splitlines()) <= 80
    res = _cli(["boundaries", "versions", "--format", "xml"], url, tmp_path)
    assert res.returncode == 2 and "--format" in res.stderr and "Traceback" not in res.stderr
    holed, _ = _holed(districts)
    path = write_boundary_file(holed, tmp_path / "holed.geojson")
    res = _cli(
        ["boundaries", "validate", str(path), "--level", "district", "--format", "csv"],
        url,
        tmp_path,
    )
    assert res.returncode == 1, res.stderr
    assert res.stdout.splitlines()[0] == "kind,level,codes,area_m2,where,message"
    assert "outline_gap" in res.stdout  # against the outline kept with the version
