"""Registry import (issue 15) on a small city: an Excel file with Chinese headers, a bad ID
and a duplicate person imported with --skip-bad through the real CLI and its rejects file
read back; idempotent re-import; all or nothing without --skip-bad; no ID number or phone
in clear in a pg_dump; counts from the registry; re-attribution after a boundary change;
a scoped, audited export.

No test depends on another's rows: a test that writes has a city of its own, filled by the
fixtures up to the stage it starts from (``STAGES``); the others read one module-scoped
city loaded with every file."""

from __future__ import annotations

import base64
import csv
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import small_city
from openpyxl import Workbook
from sqlalchemy import text

from geogrid.core.registry.ids import id_check_char
from geogrid.errors import FileInputError
from geogrid.services.boundaries import save_hierarchy
from geogrid.services.registry_import import import_registry, reattribute_registry
from geogrid.settings import Settings

KEY = base64.b64encode(bytes(range(100, 132))).decode()


def _id(birth: str, seq: int) -> str:
    first = f"450902{birth}{seq:03d}"
    return first + id_check_char(first)


# people: (name, ID, sex, phone, relation, household, residence, building, room, care)
P = {
    "a": ("张伟", _id("19800101", 11), "男", "13877001001", "户主", "H1", "户籍", "B1", "101", ""),
    "b": ("李娜", _id("19820202", 22), "女", "13877001002", "配偶", "H1", "户籍", "B1", "101",
          "低保户"),
    "c": ("王芳", _id("19400303", 32), "女", "0775-2345671", "户主", "H2", "流动", "B2", "201",
          "独居老人"),
    "e": ("陈刚", _id("20100505", 51), "男", "", "户主", "H3", "户籍", "B3", "301", "留守儿童"),
}  # fmt: skip
BAD_ID = P["a"][1][:17] + ("0" if P["a"][1][17] != "0" else "1")  # wrong check character
BAD_PHONE = "1387700"
#: the people file: a, b, c and e good; a bad ID (row 5), a duplicate of a (row 6) and a
#: bad phone (row 8) rejected
PEOPLE_ROWS = [
    P["a"],
    P["b"],
    P["c"],
    ("赵敏", BAD_ID, "男", "13877001009", "户主", "H4", "户籍", "B2", "202", ""),  # row 5
    (P["a"][0], P["a"][1], "男", "13877001001", "户主", "H2", "户籍", "B2", "201", ""),  # dup
    P["e"],
    ("孙丽", _id("19900707", 72), "女", BAD_PHONE, "户主", "H5", "户籍", "B3", "302", ""),
]  # fmt: skip
#: a good person in a file with a bad one (all or nothing: never written)
NEW = ("周杰", _id("19750808", 81), "男", "13877001081", "户主", "H6", "户籍", "B1", "102", "")
#: the care file's unknown person
UNKNOWN_ID = _id("19990909", 91)
#: every ID number and phone a test hands in: none may be written anywhere in clear
SEEDED = [
    *(p[1] for p in P.values()),
    *(p[3] for p in P.values() if p[3]),
    BAD_ID,
    PEOPLE_ROWS[-1][1],
    NEW[1],
    NEW[3],
    UNKNOWN_ID,
]
HEADERS = ["姓名", "公民身份号码", "性别", "联系电话", "与户主关系", "户号", "人口类型", "楼栋",
           "房号", "关爱类型"]  # fmt: skip
#: the registry files of a loaded city, in the order they are imported
STAGES = ("buildings", "people", "households", "care")


@pytest.fixture(scope="module", autouse=True)
def registry_env(tmp_path_factory):
    """The registry key and a home of the module's own in the environment (read by
    ``Settings()`` and by the CLI's subprocesses)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GEOGRID_REGISTRY_KEY", KEY)
        mp.setenv("GEOGRID_HOME", str(tmp_path_factory.mktemp("home")))
        yield


def _fill(city, folder: Path, upto: str) -> None:
    """Import the files of ``STAGES`` up to ``upto`` into ``city`` through the service."""
    for stage in STAGES[: STAGES.index(upto) + 1]:
        if stage == "buildings":
            path, kw = _buildings_csv(folder / "楼栋.csv"), {"kind": "buildings"}
        elif stage == "people":
            path, kw = _people_xlsx(folder / "人口.xlsx", PEOPLE_ROWS), {"skip_bad": True}
        elif stage == "households":
            path, kw = _households_csv(folder / "户.csv"), {}
        else:
            path, kw = _care_csv(folder / "关爱.csv"), {"skip_bad": True}
        import_registry(city.engine, path, settings=Settings(), **kw)


@pytest.fixture
def empty_city():
    """A small city of the test's own, without registry records."""
    with small_city.build() as c:
        yield c


@pytest.fixture
def city_with_buildings(empty_city, tmp_path):
    """The test's own city with buildings B1–B3 (in grids 1–3)."""
    _fill(empty_city, tmp_path, "buildings")
    return empty_city


@pytest.fixture
def city_with_people(city_with_buildings, tmp_path):
    """The test's own city with the buildings and the people file (a, b, c, e in H1–H3)."""
    _fill(city_with_buildings, tmp_path, "people")
    return city_with_buildings


@pytest.fixture(scope="module")
def loaded_city(tmp_path_factory):
    """One city with every file of ``STAGES`` imported, shared by the tests that only read
    it (or try a write that must be refused, and check that nothing changed)."""
    folder = tmp_path_factory.mktemp("loaded")
    with small_city.build() as c:
        _fill(c, folder, STAGES[-1])
        yield c


def _cli(city, *args):
    env = {**os.environ, "GEOGRID_DATABASE_URL": city.url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "geogrid.cli", "registry", *args],
        capture_output=True,
        text=True,
        env=env,
    )


def _buildings_csv(path: Path) -> Path:
    rows = [
        ("B1", "江滨一号楼", "江滨路1号", 6, small_city.CENTRES[small_city.GRIDS[0]]),
        ("B2", "江滨二号楼", "江滨路2号", 8, small_city.CENTRES[small_city.GRIDS[1]]),
        ("B3", "江滨三号楼", "江滨路3号", 5, small_city.CENTRES[small_city.GRIDS[2]]),
    ]
    frame = pd.DataFrame(
        [(r, n, a, f, x, y) for r, n, a, f, (x, y) in rows],
        columns=["楼栋编号", "名称", "地址", "层数", "经度", "纬度"],
    )
    path.write_bytes(frame.to_csv(index=False).encode("gb18030"))
    return path


def _people_xlsx(path: Path, rows: list[tuple]) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.append(HEADERS)
    for r in rows:
        ws.append(list(r))
    wb.save(path)
    return path


def _households_csv(path: Path) -> Path:
    """H10 new; H1 (implied by the people file) gains an address."""
    path.write_text("户号,地址,楼栋,房号\nH10,江滨路1号102室,B1,102\nH1,江滨路1号101室,B1,101\n",
                    encoding="utf-8-sig")  # fmt: skip
    return path


def _care_csv(path: Path) -> Path:
    """a joins the key group (every 10 days); the second row names an unknown person."""
    path.write_text(
        f"身份证号,关爱类型,走访周期(天),备注\n{P['a'][1]},重点人群,10,\n{UNKNOWN_ID},残疾人,,\n",
        encoding="utf-8",
    )
    return path


def _count(city, table: str) -> int:
    with city.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_buildings_csv_gb18030_attributed(empty_city, tmp_path):
    city = empty_city
    res = _cli(city, "import", str(_buildings_csv(tmp_path / "楼栋.csv")), "--kind", "buildings")
    assert res.returncode == 0, res.stderr
    with city.engine.connect() as conn:
        got = dict(conn.execute(text("SELECT ref, grid_code FROM reg_building")).all())
    assert got == {"B1": small_city.GRIDS[0], "B2": small_city.GRIDS[1], "B3": small_city.GRIDS[2]}


def test_excel_skip_bad_with_rejects_then_idempotent(city_with_buildings, tmp_path):
    city = city_with_buildings
    xlsx = _people_xlsx(tmp_path / "人口.xlsx", PEOPLE_ROWS)
    rejects = tmp_path / "rejects.csv"
    res = _cli(city, "import", str(xlsx), "--skip-bad", "--rejects", str(rejects))
    assert res.returncode == 0, res.stderr
    out = " ".join(res.stdout.split())
    assert "4 inserted" in out and "3 rejected" in out
    with open(rejects, encoding="utf-8-sig") as f:
        got = list(csv.DictReader(f))
    assert [(r["row"], r["field"]) for r in got] == [
        ("5", "id_number"),
        ("6", "id_number"),
        ("8", "phone"),
    ]
    assert got[0]["message"] == "the check character does not match (GB 11643)"
    assert "duplicate person" in got[1]["message"] and "row 2" in got[1]["message"]
    assert got[0]["file"].endswith("人口.xlsx")
    text_of_rejects = rejects.read_text(encoding="utf-8-sig")
    for v in SEEDED:
        assert v not in text_of_rejects
    assert got[0]["value"] == BAD_ID[:4] + "*" * 10 + BAD_ID[-4:]
    assert _count(city, "reg_person") == 4
    assert _count(city, "reg_household") == 3  # H1, H2, H3 implied by the people file
    assert _count(city, "reg_care") == 3
    with city.engine.connect() as conn:
        before = conn.execute(
            text("SELECT id, id_enc, phone_enc, updated_at FROM reg_person ORDER BY id")
        ).all()
        people = conn.execute(
            text(
                "SELECT p.name, p.sex, p.birth_date, p.id_mask, p.phone_mask, p.residence, "
                "h.ref, p.grid_code FROM reg_person p JOIN reg_household h "
                "ON h.id = p.household_id ORDER BY p.id"
            )
        ).all()
    by_name = {p[0]: p for p in people}
    assert by_name["张伟"][:3] == ("张伟", "M", pd.Timestamp("1980-01-01").date())
    assert by_name["张伟"][3] == P["a"][1][:4] + "*" * 10 + P["a"][1][-4:]
    assert by_name["张伟"][4] == "138****1001" and by_name["张伟"][6] == "H1"
    assert by_name["王芳"][5] == "floating" and by_name["王芳"][7] == small_city.GRIDS[1]
    assert by_name["陈刚"][4] is None  # no phone

    # the same file again: nothing changes (no new row, no update, same ciphertexts)
    res = _cli(city, "import", str(xlsx), "--skip-bad", "--rejects", str(rejects))
    assert res.returncode == 0, res.stderr
    out = " ".join(res.stdout.split())
    assert "0 inserted, 0 updated, 4 unchanged" in out
    with city.engine.connect() as conn:
        after = conn.execute(
            text("SELECT id, id_enc, phone_enc, updated_at FROM reg_person ORDER BY id")
        ).all()
    assert after == before
    assert _count(city, "reg_care") == 3


def test_all_or_nothing_without_skip_bad(loaded_city, tmp_path):
    city = loaded_city
    xlsx = _people_xlsx(
        tmp_path / "bad.xlsx",
        [NEW, ("吴昊", BAD_ID, "男", "13877001009", "户主", "H7", "户籍", "B1", "103", "")],
    )
    n0, h0 = _count(city, "reg_person"), _count(city, "reg_household")
    res = _cli(city, "import", str(xlsx))
    assert res.returncode == 2
    msg = " ".join(res.stderr.split())
    assert "bad.xlsx, row 3, field 'id_number'" in msg and "nothing was written" in msg
    assert BAD_ID not in res.stderr
    assert (_count(city, "reg_person"), _count(city, "reg_household")) == (n0, h0)


def test_person_in_another_household_in_the_db_is_refused(loaded_city, tmp_path):
    city = loaded_city
    xlsx = _people_xlsx(
        tmp_path / "moved.xlsx",
        [(P["b"][0], P["b"][1], "女", "13877001002", "户主", "H9", "户籍", "B3", "309", "")],
    )
    with pytest.raises(FileInputError) as err:
        import_registry(city.engine, xlsx, settings=Settings())
    e = err.value.errors[0]
    assert (e.row, e.field) == (2, "id_number")
    assert "already registered in household H1" in e.message
    assert P["b"][1] not in str(err.value)


def test_households_and_care_files(city_with_people, tmp_path):
    city = city_with_people
    hh = _households_csv(tmp_path / "户.csv")
    rep = import_registry(city.engine, hh, settings=Settings())
    assert (rep.kind, rep.inserted, rep.updated) == ("households", 1, 1)  # H1 gains an address
    again = import_registry(city.engine, hh, settings=Settings())
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    care = _care_csv(tmp_path / "关爱.csv")
    with pytest.raises(FileInputError) as err:
        import_registry(city.engine, care, settings=Settings())
    assert [(e.row, e.field) for e in err.value.errors] == [(3, "id_number")]
    assert "unknown person" in err.value.errors[0].message
    rep = import_registry(city.engine, care, skip_bad=True, settings=Settings())
    assert (rep.kind, rep.inserted, rep.rejected) == ("care", 1, 1)
    with city.engine.connect() as conn:
        days = conn.execute(
            text("SELECT visit_every_days FROM reg_care WHERE group_code = 'key_group'")
        ).scalar_one()
    assert days == 10


def test_units_counts_come_from_the_registry(loaded_city):
    city = loaded_city
    with city.engine.connect() as conn:
        rows = dict(
            conn.execute(
                text("SELECT code, population FROM unit WHERE version_id = :v AND level = 'grid'"),
                {"v": city.version_id},
            ).all()
        )
        floating = conn.execute(
            text("SELECT attrs->>'floating' FROM unit WHERE version_id = :v AND code = :c"),
            {"v": city.version_id, "c": small_city.GRIDS[1]},
        ).scalar_one()
        community = conn.execute(
            text("SELECT population, households FROM unit WHERE version_id = :v AND code = :c"),
            {"v": city.version_id, "c": small_city.COMMUNITY},
        ).one()
    assert rows[small_city.GRIDS[0]] == 2 and rows[small_city.GRIDS[1]] == 1
    assert floating == "1"
    assert tuple(community) == (4, 4)  # H1, H2, H3 and H10 (the households file)


def test_export_is_scoped_audited_and_masked(loaded_city, tmp_path):
    city = loaded_city
    out = tmp_path / "export.csv"
    res = _cli(city, "export", str(out), "--reason", "年度核查")
    assert res.returncode == 0, res.stderr
    body = out.read_text(encoding="utf-8-sig")
    assert "张*" in body and all(v not in body for v in SEEDED)
    res = _cli(city, "export", str(out), "--reason", "上级核查", "--clear",
               "--unit", small_city.GRIDS[0])  # fmt: skip
    assert res.returncode == 0, res.stderr
    body = out.read_text(encoding="utf-8-sig")
    assert P["a"][1] in body and P["c"][1] not in body  # only grid 1's people
    out.unlink()
    res = _cli(city, "export", str(out))
    assert res.returncode != 0  # --reason is required
    with city.engine.connect() as conn:
        details = conn.execute(
            text("SELECT action, detail::text FROM audit_log WHERE action LIKE 'registry.%'")
        ).all()
    assert {"registry.export", "registry.import"} <= {a for a, _ in details}
    assert any("上级核查" in d for _, d in details)


def test_no_id_number_or_phone_in_clear_in_a_dump(loaded_city):
    city = loaded_city
    dump = subprocess.run(
        ["pg_dump", "--data-only", "--no-owner", city.url.replace("+psycopg", "")],
        capture_output=True,
        check=True,
    ).stdout
    assert b"reg_person" in dump and len(dump) > 1000
    for v in SEEDED:
        assert v.encode() not in dump, "a seeded value is in the dump in clear"
        digits = "".join(ch for ch in v if ch.isdigit())
        if len(digits) >= 11:
            assert digits.encode() not in dump


def test_reattribution_after_a_boundary_change(city_with_people):
    city = city_with_people
    layers = small_city.layers()
    grids = layers["grid"].copy()
    # swap the geometries of grids 1 and 3: buildings B1 and B3 change grids
    g = grids.geometry.tolist()
    g[0], g[2] = g[2], g[0]
    layers["grid"] = grids.set_geometry(g)
    vid = save_hierarchy(city.engine, layers, label="swap", source="test")
    with city.engine.begin() as conn:
        moved = reattribute_registry(conn, vid)
    assert moved["buildings"] == 2
    with city.engine.connect() as conn:
        got = dict(conn.execute(text("SELECT name, grid_code FROM reg_person")).all())
        hh = dict(conn.execute(text("SELECT ref, grid_code FROM reg_household")).all())
    assert got["张伟"] == small_city.GRIDS[2] and got["陈刚"] == small_city.GRIDS[0]
    assert got["王芳"] == small_city.GRIDS[1]  # B2 did not move
    assert hh["H1"] == small_city.GRIDS[2]


def test_bulk_load_of_the_demo_generator_and_geoparquet_import(tmp_path):
    """The demo's bulk path on a second small city: every person's ID number and phone
    sealed (they open to the generated values), blind indexes match, grams searchable,
    unit counts from the registry; then a GeoParquet file of organisations imported."""
    import geopandas as gpd
    import numpy as np

    from geogrid.demo.registry import build_registry
    from geogrid.services.registry_import import load_registry
    from geogrid.services.registry_keys import vault

    v = vault(Settings())
    with small_city.build() as c2:
        rng = np.random.default_rng(5)
        k = 200
        x = small_city.CX + (rng.random(k) - 0.5) * 1.9 * small_city.DX
        y = small_city.CY + (rng.random(k) - 0.5) * 1.9 * small_city.DY
        col = (x > small_city.CX).astype(int) + 2 * (y > small_city.CY).astype(int)
        pts = gpd.GeoDataFrame(
            {"households": rng.integers(1, 20, k), "grid_code": np.array(small_city.GRIDS)[col]},
            geometry=gpd.points_from_xy(x, y),
            crs=4326,
        )
        reg = build_registry(small_city.layers(), pts, n=3000, seed=9)
        rep = load_registry(c2.engine, reg, vault=v, workers=2, chunk=500)
        assert rep["records"] == 3000
        with c2.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT id, id_enc, id_blind, phone_enc, grid_code FROM reg_person")
            ).all()
            hits = conn.execute(
                text(
                    "SELECT count(*) FROM reg_person WHERE name_grams @> CAST(:g AS text[]) "
                    "AND name LIKE :q"
                ),
                {"g": [reg.people["name"].iloc[0][:2]], "q": reg.people["name"].iloc[0][:2] + "%"},
            ).scalar_one()
            pop = dict(
                conn.execute(
                    text(
                        "SELECT code, population FROM unit WHERE level = 'grid' AND version_id = :v"
                    ),
                    {"v": c2.version_id},
                ).all()
            )
            dump_ok = conn.execute(
                text(
                    "SELECT count(*) FROM reg_person WHERE position(:p in encode(id_enc, 'escape')) > 0"
                ),
                {"p": reg.people["id_number"].iloc[0]},
            ).scalar_one()
        assert len(rows) == len(reg.people)
        people = reg.people.set_index("id")
        for pid, id_enc, id_blind, phone_enc, grid in rows[:300]:
            p = people.loc[pid]
            assert v.open(id_enc) == p["id_number"]
            assert bytes(id_blind) == v.blind("id", p["id_number"])
            assert (phone_enc is None) == (not isinstance(p["phone"], str))
            assert grid == p["grid_code"]
        assert hits >= 1 and dump_ok == 0
        expect = people.groupby("grid_code").size().to_dict()
        assert {g: pop[g] for g in expect} == expect
        assert sum(pop.values()) == len(reg.people)  # grids without records: 0

        orgs = gpd.GeoDataFrame(
            {"统一社会信用代码": ["91350100M000100Y43", "91440300708461136T"],
             "单位名称": ["测试商店", "测试公司"], "类型": ["商铺", "企业"]},
            geometry=gpd.points_from_xy(
                [small_city.CENTRES[small_city.GRIDS[3]][0]] * 2,
                [small_city.CENTRES[small_city.GRIDS[3]][1]] * 2,
            ),
            crs=4326,
        )  # fmt: skip
        pq = tmp_path / "orgs.parquet"
        orgs.to_parquet(pq)
        rep2 = import_registry(c2.engine, pq, settings=Settings())
        assert (rep2.kind, rep2.inserted) == ("orgs", 2)
        with c2.engine.connect() as conn:
            grid = conn.execute(
                text("SELECT grid_code FROM reg_org WHERE uscc = '91350100M000100Y43'")
            ).scalar_one()
        assert grid == small_city.GRIDS[3]
