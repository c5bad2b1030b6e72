"""The daily service register (issue 13): entries through the API, the monthly register of
entries plus incidents hand-counted for one worker and month, the Excel export read back
with openpyxl, the PDF's text, the CLI export, scoped reads of entries.

The month is the previous calendar month in the city's zone (entries may be recorded for
up to 400 days back, not for the future)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import small_city
from PIL import Image
from small_city import CENTRES, COMMUNITY, GRIDS
from sqlalchemy import text

from geogrid.core.crs import wgs84_to_gcj02
from geogrid.core.register import SERVICE_COLUMNS
from geogrid.core.scope import Scope
from geogrid.services import incidents as workflow
from geogrid.services.register import monthly_register

ROOT = Path(__file__).resolve().parents[1]
TZ = ZoneInfo("Asia/Shanghai")
_today = datetime.now(TZ).date()
_first = _today.replace(day=1)
PREV_LAST = _first - timedelta(days=1)  # the last day of the previous month
MONTH = PREV_LAST.strftime("%Y-%m")
FIRST = PREV_LAST.replace(day=1)


def _day(n: int) -> str:
    return (FIRST + timedelta(days=n - 1)).isoformat()


# (worker, day of the month, kind, people_count or None) — None: no count and no person
# ids, so 1 person
ENTRIES = [
    ("w1", 1, "visit", 2),
    ("w1", 3, "visit", 1),
    ("w1", 3, "visit", 3),
    ("w1", 5, "mediation", 2),
    ("w1", 8, "policy", 30),
    ("w1", 9, "policy", None),
    ("w1", 12, "hazard", None),
    ("w2", 4, "visit", None),
]
# hand count for w1: visit 3, mediation 1, paperwork 0, hazard 1, policy 2, other 0;
# 7 entries; people 2 + 1 + 3 + 2 + 30 + 1 + 1 = 40
W1_SERVICE = {
    "svc_visit": 3,
    "svc_mediation": 1,
    "svc_paperwork": 0,
    "svc_hazard": 1,
    "svc_policy": 2,
    "svc_other": 0,
}
W1_ENTRIES, W1_PEOPLE = 7, 40
# incidents of w1 in grid 001: one garbage report resolved after 6 h (on time, limit 24 h),
# one still open: reported 2, handled 1, on time 1, median 6.0 h


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        w1 = c.accounts["w1"]
        lon, lat = CENTRES[GRIDS[0]]
        t0 = datetime(FIRST.year, FIRST.month, 3, 9, tzinfo=TZ)
        a = workflow.create_incident(
            c.engine,
            category="garbage",
            lon=lon,
            lat=lat,
            reported_at=t0,
            reporter_id=w1.id,
            actor=w1,
        )
        for i, s in enumerate(("accepted", "in_progress")):
            workflow.transition(c.engine, a["id"], s, at=t0 + timedelta(hours=i + 1))
        workflow.transition(c.engine, a["id"], "resolved", at=t0 + timedelta(hours=6))
        workflow.create_incident(
            c.engine,
            category="garbage",
            lon=lon,
            lat=lat,
            reported_at=t0 + timedelta(days=7),
            reporter_id=w1.id,
            actor=w1,
        )
        yield c


@pytest.fixture(scope="module")
def client(city):
    with small_city.serve(city) as cl:
        for worker, day, kind, people in ENTRIES:
            body = {
                "day": _day(day),
                "kind": kind,
                "result": f"{kind} 已完成",
                "note": "13812341234",
            }
            if people is not None:
                body["people_count"] = people
            r = cl.post("/register/entries", json=body, headers=city.auth(worker))
            assert r.status_code == 201, r.text
        # the day before the month: not counted
        r = cl.post(
            "/register/entries",
            json={"day": (FIRST - timedelta(days=1)).isoformat(), "kind": "visit", "result": "x"},
            headers=city.auth("w1"),
        )
        assert r.status_code == 201, r.text
        yield cl


def test_monthly_register_hand_count(city, client):
    df = monthly_register(city.engine, MONTH, "worker", scope=Scope.system())
    row = df.set_index("worker_id").loc[city.accounts["w1"].id]
    assert {c: int(row[c]) for c in SERVICE_COLUMNS} == W1_SERVICE
    assert (int(row["entries"]), int(row["people_served"])) == (W1_ENTRIES, W1_PEOPLE)
    assert (row["reported"], row["handled"], row["on_time"]) == (2, 1, 1)
    assert row["median_hours"] == pytest.approx(6.0)
    w2 = df.set_index("worker_id").loc[city.accounts["w2"].id]
    assert (w2["svc_visit"], w2["entries"], w2["people_served"]) == (1, 1, 1)
    com = monthly_register(city.engine, MONTH, "community", scope=Scope.system()).iloc[0]
    assert com["code"] == COMMUNITY
    assert (com["svc_visit"], com["entries"], com["people_served"]) == (4, 8, 41)
    # the API answers the same row, for the worker themself
    reg = client.get("/register", params={"month": MONTH}, headers=city.auth("w1")).json()
    assert len(reg) == 1
    assert {c: reg[0][c] for c in SERVICE_COLUMNS} == W1_SERVICE
    assert (reg[0]["entries"], reg[0]["people_served"], reg[0]["reported"]) == (7, 40, 2)


def test_excel_export_reads_back(city, client):
    r = client.get(
        "/register.xlsx", params={"month": MONTH, "unit": COMMUNITY}, headers=city.auth("community")
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
    values = [list(row) for row in ws.iter_rows(values_only=True)]
    assert "社区网格员为民服务事项登记表" in values[0][0] and MONTH[:4] in values[0][0]
    head = values[1]
    assert head[:5] == ["序号", "网格员", "工号", "所属网格", "所属社区"]
    for h in (
        "走访入户",
        "矛盾调解",
        "代办服务",
        "隐患排查",
        "政策宣传",
        "其他",
        "服务人次",
        "上报事件",
    ):
        assert h in head
    rows = {r[1]: dict(zip(head, r, strict=True)) for r in values[2:-1]}
    w1 = rows[city.accounts["w1"].name]  # the community admin reads names in clear
    assert (w1["走访入户"], w1["矛盾调解"], w1["隐患排查"], w1["政策宣传"], w1["其他"]) == (
        3,
        1,
        1,
        2,
        0,
    )
    assert (w1["服务事项合计"], w1["服务人次"], w1["上报事件"], w1["办结事件"]) == (7, 40, 2, 1)
    assert w1["按时办结率"] == "100.0%" and w1["办结时长中位数（小时）"] == "6.0"
    total = dict(zip(head, values[-1], strict=True))
    assert total["序号"] == "合计" and total["走访入户"] == 4 and total["服务人次"] == 41
    # a leader's export has the names masked
    r = client.get("/register.xlsx", params={"month": MONTH}, headers=city.auth("leader"))
    ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
    names = [row[1] for row in ws.iter_rows(min_row=3, values_only=True)][:-1]
    assert names and all("*" in n for n in names)
    bad = client.get("/register.xlsx", params={"month": "2026-13"}, headers=city.auth("leader"))
    assert bad.status_code == 400 and "month" in bad.text


def test_pdf_export(city, client, tmp_path):
    r = client.get(
        "/register.pdf", params={"month": MONTH, "level": "community"}, headers=city.auth("admin")
    )
    assert r.status_code == 200, r.text
    assert r.content.startswith(b"%PDF") and len(r.content) > 2000
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed")
    f = tmp_path / "register.pdf"
    f.write_bytes(r.content)
    fonts = subprocess.run(["pdffonts", str(f)], capture_output=True, check=True, text=True)
    line = next(ln for ln in fonts.stdout.splitlines() if "WenQuanYi" in ln)
    assert " yes " in line  # the Chinese font is embedded (a subset)
    out = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=r.content, capture_output=True, check=True
    ).stdout.decode()
    assert "社区网格员为民服务事项登记表" in out
    assert "走访入户" in out and "江滨社区" in out and "合计" in out


def test_cli_export(city, client, tmp_path):
    env = {**os.environ, "GEOGRID_DATABASE_URL": city.url}
    xlsx, pdf = tmp_path / "r.xlsx", tmp_path / "r.pdf"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "geogrid.cli",
            "register",
            "export",
            MONTH,
            "--xlsx",
            str(xlsx),
            "--pdf",
            str(pdf),
            "--unit",
            GRIDS[0],
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    ws = openpyxl.load_workbook(xlsx).active
    rows = list(ws.iter_rows(min_row=3, values_only=True))
    assert [r[1] for r in rows[:-1]] == [city.accounts["w1"].name]  # only grid 001's worker
    assert pdf.read_bytes().startswith(b"%PDF")
    bad = subprocess.run(
        [sys.executable, "-m", "geogrid.cli", "register", "export", "May", "--xlsx", str(xlsx)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "month" in bad.stderr and "Traceback" not in bad.stderr


def test_entries_are_scoped_and_masked(city, client):
    w1, w2 = city.accounts["w1"], city.accounts["w2"]

    def get(key, **params):
        r = client.get(
            "/register/entries", params={"month": MONTH, **params}, headers=city.auth(key)
        )
        assert r.status_code == 200, r.text
        return r.json()

    mine = get("w1")
    assert len(mine) == 7 and {e["account_id"] for e in mine} == {w1.id}
    assert all(e["note"] == "13812341234" and e["grid_code"] == GRIDS[0] for e in mine)
    assert {e["account_id"] for e in get("w2")} == {w2.id}
    com = get("community")
    assert len(com) == 8 and {e["account_name"] for e in com} == {w1.name, w2.name}
    lead = get("leader")
    assert len(lead) == 8
    assert all(
        e["note"] == "***" and e["result"] == "***" and "*" in e["account_name"] for e in lead
    )
    assert "13812341234" not in str(lead)
    assert len(get("leader", account_id=w2.id)) == 1
    assert {e["kind_zh"] for e in mine} == {"走访入户", "矛盾调解", "政策宣传", "隐患排查"}


def _photo(client, headers) -> str | None:
    """A small PNG uploaded with PUT /media/{sha256} (None when the media service is not
    installed)."""
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 40, 40)).save(buf, format="PNG")
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    r = client.put(f"/media/{sha}", content=data, headers={**headers, "Content-Type": "image/png"})
    if r.status_code in (404, 405):
        return None
    assert r.status_code in (200, 201), r.text
    return sha


def test_entry_position_idempotency_and_errors(city, client):
    h = city.auth("w3")
    sha = _photo(client, h)
    lon, lat = wgs84_to_gcj02(*CENTRES[GRIDS[3]])
    body = {
        "day": _today.isoformat(),
        "kind": "paperwork",
        "result": "代办低保申请",
        "lon": lon,
        "lat": lat,
        "crs": "gcj02",
        "media": [sha] if sha else [],
    }
    k = {**h, "Idempotency-Key": "entry-1"}
    first = client.post("/register/entries", json=body, headers=k)
    again = client.post("/register/entries", json=body, headers=k)
    assert first.status_code == again.status_code == 201, first.text
    assert first.json()["id"] == again.json()["id"]
    e = first.json()
    assert e["grid_code"] == GRIDS[3] and e["src_crs"] == "gcj02"
    assert e["lon"] == pytest.approx(CENTRES[GRIDS[3]][0], abs=1e-5)
    assert e["media"] == ([sha] if sha else [])
    if sha:  # the entry's readers may fetch the photo, a worker of another grid not
        assert client.get(f"/media/{sha}", headers=city.auth("community")).status_code == 200
        assert client.get(f"/media/{sha}", headers=city.auth("w1")).status_code == 404
        other = client.post(
            "/register/entries",
            json={**body, "media": [sha]},
            headers={**city.auth("w1")},
        )
        assert other.status_code == 400 and "media" in other.text  # not w1's photo
    with city.engine.connect() as c:
        n = c.execute(
            text("SELECT count(*) FROM service_entry WHERE account_id = :a"),
            {"a": city.accounts["w3"].id},
        ).scalar_one()
    assert n == 1
    conflict = client.post("/register/entries", json={**body, "kind": "other"}, headers=k)
    assert conflict.status_code == 409
    for change, name in (
        ({"kind": "gossip"}, "kind"),
        ({"day": (_today + timedelta(days=3)).isoformat()}, "day"),
        ({"result": "  "}, "result"),
        ({"person_ids": [99999]}, "person_ids"),
        ({"people_count": 0, "person_ids": [1, 2]}, "people_count"),
        ({"household_id": 424242}, "household_id"),
        ({"lat": None}, "lon/lat"),
        ({"media": ["not-a-hash"]}, "media[0]"),
    ):
        r = client.post("/register/entries", json={**body, **change}, headers=h)
        assert r.status_code == 400, (change, r.text)
        assert name in r.text, (change, r.text)
    r = client.post("/register/entries", json=body, headers=city.auth("leader"))
    assert r.status_code == 403
    assert isinstance(date.fromisoformat(e["day"]), date)


def test_entry_attributed_by_a_registry_household(city, client):
    """A visit to a household of the registry (rows of 0009) without a position: the entry
    takes the household's grid; people_count defaults to the persons named; a leader reads
    the entry without the person ids."""
    with city.engine.begin() as c:
        hid = c.execute(
            text(
                "INSERT INTO reg_household (ref, address, grid_code, community_code, street_code, "
                "district_code) VALUES ('H-T1', '江滨路1号', :g, :c, :s, :d) RETURNING id"
            ),
            {"g": GRIDS[1], "c": COMMUNITY, "s": COMMUNITY[:9], "d": COMMUNITY[:6]},
        ).scalar_one()
        pids = [
            c.execute(
                text(
                    "INSERT INTO reg_person (household_id, name, id_enc, id_blind, id_mask, "
                    "grid_code, community_code, street_code, district_code) VALUES "
                    "(:h, :n, '\\x00', :b, '4509**********123X', :g, :c, :s, :d) RETURNING id"
                ),
                {
                    "h": hid,
                    "n": n,
                    "b": n.encode(),
                    "g": GRIDS[1],
                    "c": COMMUNITY,
                    "s": COMMUNITY[:9],
                    "d": COMMUNITY[:6],
                },
            ).scalar_one()
            for n in ("王大", "王二")
        ]
    body = {
        "day": _today.isoformat(),
        "kind": "visit",
        "result": "独居老人探访",
        "household_id": hid,
        "person_ids": pids,
    }
    r = client.post("/register/entries", json=body, headers=city.auth("w2"))
    assert r.status_code == 201, r.text
    e = r.json()
    assert e["grid_code"] == GRIDS[1] and e["people_count"] == 2 and e["person_ids"] == pids
    month = _today.strftime("%Y-%m")
    lead = client.get(
        "/register/entries",
        params={"month": month, "account_id": city.accounts["w2"].id},
        headers=city.auth("leader"),
    ).json()
    got = next(x for x in lead if x["id"] == e["id"])
    assert got["person_ids"] is None and got["household_id"] == hid
    w1 = client.get("/register/entries", params={"month": month}, headers=city.auth("w1")).json()
    assert e["id"] not in {x["id"] for x in w1}
