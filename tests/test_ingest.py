"""Bulk incident import: formats, CRS conversion, every bad-input case with file/row/field,
no partial writes, skip-bad with rejects, idempotent re-import, points outside kept."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely
from sqlalchemy import text

from geogrid.core import crs as gcrs
from geogrid.errors import DatabaseUnavailable, FileInputError
from geogrid.services.ingest import import_incidents, import_lock
from geogrid.store import get_engine
from tests.conftest import ADMIN_URL


@pytest.fixture(scope="module")
def city(make_db):
    """A database with the demo boundaries and the category catalogue, no incidents."""
    from geogrid.core.catalogue import load_categories
    from geogrid.demo.boundaries import build_hierarchy
    from geogrid.services.boundaries import save_hierarchy
    from geogrid.store.incidents import upsert_categories

    url = make_db()
    engine = get_engine(url)
    units = build_hierarchy()
    save_hierarchy(engine, units, label="demo", source="test")
    with engine.begin() as conn:
        upsert_categories(conn, load_categories())
    grids = units["grid"]
    pts = grids.geometry.representative_point()
    return {
        "url": url,
        "engine": engine,
        "grids": grids,
        "lon": pts.x.to_numpy(),
        "lat": pts.y.to_numpy(),
    }


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM incident")).scalar_one()


def _rows(city, n: int, start: int = 0, prefix: str = "t") -> pd.DataFrame:
    i = np.arange(start, start + n)
    return pd.DataFrame(
        {
            "source_id": [f"{prefix}-{k}" for k in i],
            "category": np.array(["sanitation", "neighbour_dispute", "illegal_construction"])[
                i % 3
            ],
            "lon": city["lon"][i % len(city["lon"])],
            "lat": city["lat"][i % len(city["lat"])],
            "reported_at": [f"2026-05-{1 + k % 28:02d}T08:30:00" for k in i],
            "description": "测试",
        }
    )


def test_csv_import_attributes_and_converts(city, tmp_path):
    engine = city["engine"]
    df = _rows(city, 300, prefix="csv")
    p = tmp_path / "a.csv"
    df.to_csv(p, index=False)
    rep = import_incidents(engine, p)
    assert (rep.rows, rep.loaded, rep.rejected, rep.outside) == (300, 300, 0, 0)
    with engine.connect() as conn:
        got = pd.DataFrame(
            conn.execute(
                text(
                    "SELECT source_id, grid_code, community_code, district_code, ST_X(geom) x, "
                    "ST_Y(geom) y, reported_at, due_at, assigned_level, src_crs FROM incident "
                    "WHERE source_id LIKE 'csv-%' ORDER BY id"
                )
            )
            .mappings()
            .all()
        )
    codes = city["grids"]["code"].to_numpy()
    assert list(got["grid_code"]) == list(codes[np.arange(300) % len(codes)])
    assert all(
        g.startswith(c) for g, c in zip(got["grid_code"], got["community_code"], strict=True)
    )
    # naive times are China Standard Time: 08:30 local = 00:30 UTC
    assert got["reported_at"].iloc[0] == pd.Timestamp("2026-05-01T00:30:00Z")
    # due = reported + the category's limit (sanitation: 24 h)
    assert got["due_at"].iloc[0] - got["reported_at"].iloc[0] == pd.Timedelta(hours=24)
    assert set(got["src_crs"]) == {"wgs84"}


@pytest.mark.parametrize("name", ["gcj02", "bd09"])
def test_chinese_crs_converted_on_ingest(city, tmp_path, name):
    df = _rows(city, 50, prefix=f"crs-{name}")
    fwd = gcrs.wgs84_to_gcj02 if name == "gcj02" else gcrs.wgs84_to_bd09
    df["lon"], df["lat"] = fwd(df["lon"].to_numpy(), df["lat"].to_numpy())
    p = tmp_path / f"{name}.geojson"
    gpd.GeoDataFrame(
        df.drop(columns=["lon", "lat"]),
        geometry=gpd.points_from_xy(df["lon"], df["lat"]),
        crs="EPSG:4326",
    ).to_file(p)
    rep = import_incidents(city["engine"], p, crs=name)
    assert rep.loaded == 50
    with city["engine"].connect() as conn:
        got = conn.execute(
            text(
                "SELECT ST_X(geom), ST_Y(geom), src_lon, src_lat, src_crs FROM incident "
                "WHERE source_id LIKE :p ORDER BY id"
            ),
            {"p": f"crs-{name}-%"},
        ).all()
    x, y, sx, sy, sc = map(np.array, zip(*got, strict=True))
    want_x, want_y = gcrs.to_wgs84(sx.astype(float), sy.astype(float), name)
    assert np.allclose(x, want_x, atol=1e-9) and np.allclose(y, want_y, atol=1e-9)
    # and back at the grid positions we started from (within 1e-6 degrees)
    assert np.allclose(x, city["lon"][:50], atol=1e-6)
    assert set(sc) == {name}


def _just_outside(city) -> tuple[float, float]:
    """A point ~2.6 km east of the easternmost grid: outside every grid, near the city."""
    coords = shapely.get_coordinates(city["grids"].geometry.to_numpy())
    east = coords[np.argmax(coords[:, 0])]
    return float(east[0] + 0.03), float(east[1])


def test_geoparquet_and_outside_points_kept(city, tmp_path):
    df = _rows(city, 20, prefix="pq")
    df.loc[0, ["lon", "lat"]] = list(_just_outside(city))  # outside every grid, but near
    p = tmp_path / "a.parquet"
    gpd.GeoDataFrame(
        df.drop(columns=["lon", "lat"]),
        geometry=gpd.points_from_xy(df["lon"], df["lat"]),
        crs="EPSG:4326",
    ).to_parquet(p)
    rep = import_incidents(city["engine"], p)
    assert rep.loaded == 20 and rep.outside == 1
    with city["engine"].connect() as conn:
        row = conn.execute(
            text("SELECT grid_code, district_code FROM incident WHERE source_id = 'pq-0'")
        ).one()
    assert row == (None, None)
    # far away (here 100°E 30°N, ~1,000 km from Yulin) is a mistake, as the API says
    df.loc[0, ["lon", "lat"]] = [100.0, 30.0]
    df["source_id"] = df["source_id"] + "-far"
    gpd.GeoDataFrame(
        df.drop(columns=["lon", "lat"]),
        geometry=gpd.points_from_xy(df["lon"], df["lat"]),
        crs="EPSG:4326",
    ).to_parquet(p)
    with pytest.raises(
        FileInputError, match=r"row 1, field 'lon/lat': \(100, 30\) is more than 20"
    ):
        import_incidents(city["engine"], p)


def _bad_frame(city) -> pd.DataFrame:
    df = _rows(city, 12, prefix="bad").astype(object)
    df.loc[1, "lon"] = None  # missing coordinate
    df.loc[3, "lat"] = "abc"  # non-numeric
    df.loc[5, "lon"] = 181.5  # out of range
    df.loc[7, "category"] = "alien_landing"  # unknown category
    df.loc[9, "reported_at"] = "yesterday"  # bad timestamp
    return df


def test_every_bad_row_reported_and_nothing_written(city, tmp_path):
    p = tmp_path / "bad.csv"
    _bad_frame(city).to_csv(p, index=False)
    before = _count(city["engine"])
    with pytest.raises(FileInputError) as info:
        import_incidents(city["engine"], p, batch_size=5)  # bad rows in several batches
    errs = {(e.row, e.field) for e in info.value.errors}
    assert errs == {(2, "lon"), (4, "lat"), (6, "lon"), (8, "category"), (10, "reported_at")}
    msg = str(info.value)
    assert "bad.csv, row 2, field 'lon': coordinate is missing" in msg
    assert "row 4, field 'lat': 'abc' is not a number" in msg
    assert "row 6, field 'lon': 181.5 is outside [-180.0, 180.0]" in msg
    assert "unknown category 'alien_landing'" in msg
    assert "'yesterday' is not a timestamp" in msg
    assert _count(city["engine"]) == before


def test_skip_bad_writes_rejects_and_loads_the_rest(city, tmp_path):
    p = tmp_path / "bad2.csv"
    _bad_frame(city).assign(source_id=lambda d: d["source_id"] + "-s").to_csv(p, index=False)
    before = _count(city["engine"])
    rep = import_incidents(city["engine"], p, skip_bad=True, batch_size=5)
    assert rep.loaded == 7 and rep.rejected == 5
    rej = pd.read_csv(rep.rejects_path)
    assert list(rej["row"]) == [2, 4, 6, 8, 10]
    assert rej["error"].str.contains("lon|lat|category|reported_at").all()
    assert _count(city["engine"]) == before + 7


def test_reimport_is_idempotent(city, tmp_path):
    p = tmp_path / "again.csv"
    df = _rows(city, 100, prefix="idem")
    df.to_csv(p, index=False)
    first = import_incidents(city["engine"], p)
    n = _count(city["engine"])
    second = import_incidents(city["engine"], p)
    assert first.loaded == 100 and second.loaded == 0 and second.already_stored == 100
    assert _count(city["engine"]) == n
    # without a source id column the content hash keeps it idempotent too
    p2 = tmp_path / "noid.csv"
    df.drop(columns=["source_id"]).to_csv(p2, index=False)
    a = import_incidents(city["engine"], p2)
    b = import_incidents(city["engine"], p2)
    assert a.loaded == 100 and b.loaded == 0


def test_locator_attribution_equals_postgis(city):
    """Every stored incident's grid equals PostGIS's ST_Covers join (off-edge points)."""
    with city["engine"].connect() as conn:
        disagree = conn.execute(
            text(
                "SELECT count(*) FROM incident i JOIN unit u ON u.level = 'grid' "
                "AND u.version_id = i.version_id AND ST_Covers(u.geom, i.geom) "
                "WHERE i.grid_code IS DISTINCT FROM u.code"
            )
        ).scalar_one()
    assert disagree == 0


def test_cli_import_reports_rows_per_second_and_errors(city, tmp_path):
    env = {**os.environ, "GEOGRID_DATABASE_URL": city["url"]}
    p = tmp_path / "cli.csv"
    _rows(city, 40, prefix="cli").rename(columns={"lon": "x", "lat": "y"}).to_csv(p, index=False)
    res = subprocess.run(
        [sys.executable, "-m", "geogrid.cli", "incidents", "import", str(p)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 0, res.stderr
    out = " ".join(res.stdout.split())  # the console wraps long paths at its width
    assert "40 loaded" in out and "rows/s" in out
    bad = tmp_path / "clibad.csv"
    _bad_frame(city).to_csv(bad, index=False)
    res = subprocess.run(
        [sys.executable, "-m", "geogrid.cli", "incidents", "import", str(bad)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 2
    assert "clibad.csv, row 8, field 'category'" in res.stderr


def test_points_exactly_on_an_edge_go_to_one_grid(city):
    from geogrid.services.attribution import attributor_for_version

    att = attributor_for_version(city["engine"])
    g = city["grids"]
    a, b = g.geometry.iloc[0], None
    for j in range(1, 200):
        if g.geometry.iloc[j].touches(a) and shapely.intersection(a, g.geometry.iloc[j]).length > 0:
            b = g.geometry.iloc[j]
            break
    assert b is not None
    edge = shapely.intersection(a.boundary, b.boundary)
    pt = (
        shapely.line_interpolate_point(shapely.line_merge(edge), 0.37, normalized=True)
        if edge.geom_type != "Point"
        else edge
    )
    lon, lat = np.array([pt.x] * 3), np.array([pt.y] * 3)
    got = att.attribute(lon, lat)["grid_code"]
    assert got.nunique() == 1 and got.iloc[0] in (g["code"].iloc[0], g["code"].iloc[j])


def test_missing_or_bad_times_without_source_ids(city, tmp_path):
    """Rows without a source id are hashed; a missing time must still be a clear error."""
    p = tmp_path / "times.csv"
    p.write_text(
        "category,lon,lat,reported_at\n"
        f"sanitation,{city['lon'][0]},{city['lat'][0]},notadate\n"
        f"sanitation,{city['lon'][0]},{city['lat'][0]},\n"
    )
    with pytest.raises(FileInputError) as info:
        import_incidents(city["engine"], p)
    msgs = [str(e) for e in info.value.errors]
    assert "row 1, field 'reported_at': 'notadate' is not a timestamp" in msgs[0]
    assert "row 2, field 'reported_at': timestamp is missing" in msgs[1]
    q = tmp_path / "notime.csv"
    q.write_text(f"category,lon,lat\nsanitation,{city['lon'][0]},{city['lat'][0]}\n")
    with pytest.raises(FileInputError, match="no reported_at column"):
        import_incidents(city["engine"], q)


# ----------------------------------------------------------------- issue 10, item 11
def _line(sid, lon, lat, when, desc="x", category="sanitation") -> str:
    return f"{sid},{category},{lon},{lat},{when},{desc}\n"


def _item11_file(city, tmp_path, prefix: str):
    """Good rows (naive and +08:00 timestamps mixed) and one row of each bad case."""
    lon, lat = city["lon"], city["lat"]
    good = [
        _line(f"{prefix}-g1", lon[0], lat[0], "2026-05-01T08:00:00"),
        _line(f"{prefix}-g2", lon[1], lat[1], "2026-05-01T08:00:00+08:00"),
        _line(f"{prefix}-g3", lon[2], lat[2], "2026-05-01T00:00:00Z"),
        _line(f"{prefix}-g4", *_just_outside(city), "2026-05-02 09:15"),
    ]
    bad = {
        5: _line(f"{prefix}-nul", lon[3], lat[3], "2026-05-01T08:00:00", "a\x00b"),
        6: _line(f"{prefix}-extra", lon[4], lat[4], "2026-05-01T08:00:00").rstrip("\n")
        + ",surplus\n",
        7: _line(f"{prefix}-zero", 0, 0, "2026-05-01T08:00:00"),
        8: _line(f"{prefix}-1900", lon[5], lat[5], "1900-01-01T00:00:00"),
        9: _line(f"{prefix}-2300", lon[6], lat[6], "2300-01-01T00:00:00+08:00"),
        10: _line(f"{prefix}-far", 100.0, 30.0, "2026-05-01T08:00:00"),
    }
    p = tmp_path / f"{prefix}.csv"
    with open(p, "w", encoding="utf-8", newline="") as f:
        f.write("source_id,category,lon,lat,reported_at,description\n")
        f.writelines(good + list(bad.values()))
        f.write(_line(f"{prefix}-g11", lon[7], lat[7], "2026-05-03T10:00:00+08:00"))
    expected = {
        5: "description",
        6: "columns",
        7: "lon/lat",
        8: "reported_at",
        9: "reported_at",
        10: "lon/lat",
    }
    return p, expected


def test_item11_cases_refused_with_one_clear_message(city, tmp_path):
    p, expected = _item11_file(city, tmp_path, "i11a")
    before = _count(city["engine"])
    with pytest.raises(FileInputError) as info:
        import_incidents(city["engine"], p, batch_size=4)
    assert {(e.row, e.field) for e in info.value.errors} == set(expected.items())
    msg = str(info.value)
    assert "row 5, field 'description': contains a NUL byte" in msg
    assert "row 6, field 'columns': 7 values where the header has 6 columns" in msg
    assert "row 7, field 'lon/lat': (0, 0) is more than 20 km from every grid" in msg
    assert "row 8, field 'reported_at': '1900-01-01T00:00:00' is outside the supported" in msg
    assert "row 9, field 'reported_at': '2300-01-01T00:00:00+08:00' is outside" in msg
    assert _count(city["engine"]) == before
    # the command line: one message naming file, row and field; no traceback
    env = {**os.environ, "GEOGRID_DATABASE_URL": city["url"]}
    res = subprocess.run(
        [sys.executable, "-m", "geogrid.cli", "incidents", "import", str(p)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert f"{p.name}, row 6, field 'columns'" in res.stderr.replace("\n", "")


def test_item11_cases_rejected_row_by_row_with_skip_bad(city, tmp_path):
    p, expected = _item11_file(city, tmp_path, "i11b")
    before = _count(city["engine"])
    env = {**os.environ, "GEOGRID_DATABASE_URL": city["url"]}
    res = subprocess.run(
        [sys.executable, "-m", "geogrid.cli", "incidents", "import", str(p), "--skip-bad"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    out = " ".join(res.stdout.split())  # the console wraps long paths at its width
    assert "5 loaded" in out and "6 rejected" in out
    rej = pd.read_csv(p.with_suffix(".rejects.csv"))
    assert list(rej.columns[:3]) == ["file", "row", "field"] and "error" in rej.columns
    assert (rej["file"] == str(p)).all()
    assert dict(zip(rej["row"], rej["field"], strict=True)) == expected
    assert _count(city["engine"]) == before + 5
    with city["engine"].connect() as conn:
        stored = dict(
            conn.execute(
                text(
                    "SELECT source_id, reported_at FROM incident WHERE source_id IN "
                    "('i11b-g1', 'i11b-g2', 'i11b-g3')"
                )
            ).all()
        )
    # a naive time is the city's local time: 08:00 in Asia/Shanghai == 08:00+08:00 == 00:00Z
    assert len(set(stored.values())) == 1


def test_concurrent_import_of_the_same_file_waits(city, tmp_path):
    p = tmp_path / "same.csv"
    _rows(city, 300, prefix="conc").to_csv(p, index=False)
    before = _count(city["engine"])
    waited = threading.Event()
    result: dict[str, object] = {}

    def run() -> None:
        result["report"] = import_incidents(city["engine"], p, on_wait=waited.set)

    with import_lock(city["engine"], p):  # as if another import of this file were running
        t = threading.Thread(target=run)
        t.start()
        assert waited.wait(30)
        time.sleep(0.5)
        assert t.is_alive() and _count(city["engine"]) == before
    t.join(60)
    assert result["report"].loaded == 300
    # two imports of the same file at once: one loads, the other waits and skips
    q = tmp_path / "same2.csv"
    _rows(city, 3000, prefix="conc2").to_csv(q, index=False)
    reports = []
    threads = [
        threading.Thread(target=lambda: reports.append(import_incidents(city["engine"], q)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted((r.loaded, r.already_stored) for r in reports) == [(0, 3000), (3000, 0)]
    assert _count(city["engine"]) == before + 3300


def test_connection_lost_mid_import_is_one_message_and_nothing_written(city, tmp_path):
    p = tmp_path / "crash.csv"
    _rows(city, 2000, prefix="crash").to_csv(p, index=False)
    before = _count(city["engine"])
    db = city["url"].rsplit("/", 1)[1]

    def kill(done_rows: int) -> None:  # after the first batch's COPY: the server "crashes"
        if done_rows:
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (db,),
                )

    with pytest.raises(DatabaseUnavailable, match="connection was lost.*nothing was written"):
        import_incidents(city["engine"], p, batch_size=500, progress=kill)
    assert _count(city["engine"]) == before
    rep = import_incidents(city["engine"], p, batch_size=500)  # and it can be run again
    assert rep.loaded == 2000


def test_cli_connection_lost_mid_import_is_a_message_not_a_traceback(city, tmp_path):
    p = tmp_path / "crashcli.csv"
    _rows(city, 200_000, prefix="crashcli").to_csv(p, index=False)
    before = _count(city["engine"])
    db = city["url"].rsplit("/", 1)[1]
    env = {**os.environ, "GEOGRID_DATABASE_URL": city["url"]}
    proc = subprocess.Popen(
        [sys.executable, "-m", "geogrid.cli", "incidents", "import", str(p)]
        + ["--batch-size", "10000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    killed = 0
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and not killed:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND query LIKE 'COPY incident%%' AND state = 'active'",
                (db,),
            ).fetchone()[0]
            time.sleep(0.02)
    out, errs = proc.communicate(timeout=120)
    assert killed, "the import ended before a COPY was seen"
    assert proc.returncode == 2, out + errs
    assert "Traceback" not in errs
    assert "connection was lost" in errs and "nothing was written" in errs
    assert _count(city["engine"]) == before


def test_multi_month_load_into_new_and_existing_partitions(city, tmp_path):
    """Months without a partition are loaded as tables of their own, indexed once and
    attached; a month that has one goes through the parent; both in the one transaction,
    and a second import loads nothing."""
    from datetime import UTC, datetime

    from geogrid.services import incidents, partitions
    from tests.test_partitions import assert_rollup_exact

    engine = city["engine"]
    partitions.ensure(engine, datetime(2025, 2, 10, tzinfo=UTC))  # 2025-02 exists
    incidents.create_incident(  # and holds a row (an empty one is replaced: below)
        engine,
        category="sanitation",
        lon=float(city["lon"][0]),
        lat=float(city["lat"][0]),
        reported_at=datetime(2025, 2, 20, 2, tzinfo=UTC),
    )
    df = _rows(city, 90, prefix="mm")
    months = np.array(["2025-01", "2025-02", "2025-03"])[np.arange(90) % 3]
    df["reported_at"] = [f"{m}-{1 + k % 27:02d}T08:30:00" for k, m in enumerate(months)]
    df.loc[0, "reported_at"] = "2025-01-31T23:30:00"  # local time: still January in the city
    p = tmp_path / "months.csv"
    df.to_csv(p, index=False)
    rep = import_incidents(engine, p, batch_size=40)
    assert rep.loaded == 90
    assert sorted(rep.months_new) == ["2025-01", "2025-03"]
    assert rep.months_existing == 30
    assert {"copy", "index", "attach", "keys", "encode"} <= set(rep.phases)
    with engine.connect() as conn:
        homes = dict(
            conn.execute(
                text(
                    "SELECT tableoid::regclass::text, count(*) FROM incident "
                    "WHERE source_id LIKE 'mm-%' GROUP BY 1"
                )
            ).all()
        )
        assert homes == {"incident_p2025_01": 30, "incident_p2025_02": 30, "incident_p2025_03": 30}
        assert (
            conn.execute(
                text("SELECT count(*) FROM incident_key WHERE source_id LIKE 'mm-%'")
            ).scalar_one()
            == 90
        )
        parent = conn.execute(
            text("SELECT count(*) FROM pg_index WHERE indrelid = 'incident'::regclass")
        ).scalar_one()
        for name in ("incident_p2025_01", "incident_p2025_03"):
            assert (
                conn.execute(
                    text("SELECT count(*) FROM pg_indexes WHERE tablename = :t"), {"t": name}
                ).scalar_one()
                == parent
            )
            assert not conn.execute(
                text("SELECT count(*) FROM pg_constraint WHERE conname = :c"),
                {"c": f"{name}_bound"},
            ).scalar_one()
        # the loaded ids are keys: their history can be written
        iid = conn.execute(text("SELECT id FROM incident WHERE source_id = 'mm-0'")).scalar_one()
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO incident_event (incident_id, kind) VALUES (:i, 'note')"), {"i": iid}
        )
    again = import_incidents(engine, p, batch_size=40)
    assert (again.loaded, again.already_stored) == (0, 90)
    with engine.connect() as conn:  # months attached whole are in the daily rollup too
        assert_rollup_exact(conn)


def test_an_empty_partition_of_a_month_that_is_over_is_replaced(city, tmp_path):
    """Issue 12: the empty partition of a past month (the service makes the last month's
    ahead) does not send the month through the parent: the month is loaded standalone,
    indexed once, and takes the empty partition's place — same name, same indexes, keys
    and rollup exact. An empty partition of a month not over yet is kept."""
    from datetime import UTC, datetime

    from geogrid.services import partitions
    from tests.test_partitions import assert_rollup_exact

    engine = city["engine"]
    partitions.ensure(engine, datetime(2025, 6, 10, tzinfo=UTC))  # 2025-06: empty, over
    with engine.connect() as conn:
        before = conn.execute(text("SELECT 'incident_p2025_06'::regclass::oid")).scalar_one()
    df = _rows(city, 40, prefix="rp")
    df["reported_at"] = [f"2025-06-{1 + k % 28:02d}T08:30:00" for k in range(40)]
    p = tmp_path / "june.csv"
    df.to_csv(p, index=False)
    rep = import_incidents(engine, p, batch_size=15)
    assert (rep.loaded, rep.months_new, rep.months_existing) == (40, ["2025-06"], 0)
    with engine.connect() as conn:
        after = conn.execute(text("SELECT 'incident_p2025_06'::regclass::oid")).scalar_one()
        assert after != before  # another table took the month's place
        homes = conn.execute(
            text(
                "SELECT tableoid::regclass::text, count(*) FROM incident "
                "WHERE source_id LIKE 'rp-%' GROUP BY 1"
            )
        ).all()
        assert homes == [("incident_p2025_06", 40)]
        parent = conn.execute(
            text("SELECT count(*) FROM pg_index WHERE indrelid = 'incident'::regclass")
        ).scalar_one()
        assert (
            conn.execute(
                text("SELECT count(*) FROM pg_indexes WHERE tablename = 'incident_p2025_06'")
            ).scalar_one()
            == parent
        )
        assert (
            conn.execute(
                text("SELECT count(*) FROM incident_key WHERE source_id LIKE 'rp-%'")
            ).scalar_one()
            == 40
        )
        assert_rollup_exact(conn)
    again = import_incidents(engine, p, batch_size=15)
    assert (again.loaded, again.already_stored) == (0, 40)

    # this month's partition, empty or not, is never replaced: reports arrive there
    from datetime import timedelta

    now = datetime.now(UTC) - timedelta(minutes=1)
    partitions.ensure(engine, now)
    df = _rows(city, 6, prefix="rn")
    df["reported_at"] = [now.strftime("%Y-%m-%dT%H:%M:%S+00:00")] * 6
    p = tmp_path / "now.csv"
    df.to_csv(p, index=False)
    rep = import_incidents(engine, p)
    assert (rep.loaded, rep.months_new, rep.months_existing) == (6, [], 6)


def _bulk_tables(engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT relname FROM pg_class WHERE relkind = 'r' "
                    "AND starts_with(relname, 'incident_bulk_')"
                )
            ).scalars()
        )


@pytest.mark.parametrize("sides", [0, 2])
def test_new_months_loaded_with_or_without_side_connections(city, tmp_path, sides):
    """Months without a partition are loaded in the import's connection (sides=0) or by
    side connections as tables of their own, then renamed and attached by the import's
    transaction: the same partitions, keys, indexes and primary key either way."""
    engine = city["engine"]
    year = 2019 + sides  # months no other test makes
    df = _rows(city, 60, prefix=f"side{sides}")
    df["reported_at"] = [f"{year}-{1 + k % 3:02d}-{1 + k % 27:02d}T08:30:00" for k in range(60)]
    p = tmp_path / f"side{sides}.csv"
    df.to_csv(p, index=False)
    rep = import_incidents(engine, p, batch_size=25, sides=sides)
    assert rep.loaded == 60 and sorted(rep.months_new) == [f"{year}-0{m}" for m in (1, 2, 3)]
    assert _bulk_tables(engine) == []
    with engine.connect() as conn:
        homes = dict(
            conn.execute(
                text(
                    "SELECT tableoid::regclass::text, count(*) FROM incident "
                    "WHERE source_id LIKE :p GROUP BY 1"
                ),
                {"p": f"side{sides}-%"},
            ).all()
        )
        assert homes == {f"incident_p{year}_0{m}": 20 for m in (1, 2, 3)}
        parent = set(
            conn.execute(
                text(
                    "SELECT regexp_replace(indexname, '^incident_', '') FROM pg_indexes "
                    "WHERE tablename = 'incident'"
                )
            ).scalars()
        )
        for m in (1, 2, 3):
            name = f"incident_p{year}_0{m}"
            own = set(
                conn.execute(
                    text(
                        "SELECT regexp_replace(indexname, :pre, '') FROM pg_indexes "
                        "WHERE tablename = :t"
                    ),
                    {"pre": f"^{name}_", "t": name},
                ).scalars()
            )
            assert own == parent  # named as the partitions' indexes are
            assert (
                conn.execute(
                    text(
                        "SELECT contype FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) "
                        "AND conname = :c"
                    ),
                    {"t": name, "c": f"{name}_pkey"},
                ).scalar_one()
                == "p"
            )
            assert (
                conn.execute(
                    text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": name}
                ).scalar_one()
                == 20
            )  # ANALYZEd before it is read
        assert (
            conn.execute(
                text("SELECT count(*) FROM incident_key WHERE source_id LIKE :p"),
                {"p": f"side{sides}-%"},
            ).scalar_one()
            == 60
        )


def test_failed_import_leaves_no_side_tables_and_stale_ones_are_dropped(city, tmp_path):
    """A failure after side connections loaded months writes nothing and drops their
    tables; a table left by an import that could not drop it (no running import holds its
    lock) is dropped by the next import."""
    engine = city["engine"]
    df = _rows(city, 40, prefix="sidefail")
    df["reported_at"] = [f"2018-{1 + k % 2:02d}-10T08:30:00" for k in range(40)]
    p = tmp_path / "sidefail.csv"
    df.to_csv(p, index=False)
    before = _count(engine)

    def fail(done_rows: int) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        import_incidents(engine, p, batch_size=20, progress=fail)
    assert _count(engine) == before and _bulk_tables(engine) == []
    with engine.begin() as conn:  # as if an import died with its table committed
        conn.execute(text("CREATE TABLE incident_bulk_0badc0de_2018_05 (LIKE incident)"))
    rep = import_incidents(engine, p)
    assert rep.loaded == 40 and _bulk_tables(engine) == []
