"""The daily rollup ``incident_daily`` (migration 0016) and the metrics read from it.

A small city of its own (four grids in two communities, two categories) gets a few
hundred incidents spread over April–June 2026, many of them close to the midnights of
UTC and of the rollup's zone (Asia/Shanghai). After each kind of write — a bulk insert,
single reports, status transitions, a publish's re-attribution and a delete — the test
checks that:

* the rollup equals a fresh ``GROUP BY`` over ``incident`` (what the triggers keep equals
  what a rebuild would give), and
* :func:`geogrid.store.rollup.aggregate_units_rollup` equals the base-table aggregate
  :func:`geogrid.store.metrics.aggregate_units` for windows on the rollup's midnights, on
  UTC midnights, on odd hours, with the state read now and in the past, with a category
  filter, at grid, community and district level (counts exactly; effort and hours to
  1e-9).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from row_city import C1, C2, X0, Y0, D, S, incident_row, point, square, units
from sqlalchemy import insert, text

from geogrid.core.loadindex import LoadWeights
from geogrid.core.unitmetrics import AGGREGATE_COUNTS
from geogrid.services import metrics
from geogrid.services.unitcache import UnitCache
from geogrid.store import get_engine, rollup
from geogrid.store import metrics as sm
from geogrid.store.plans import reattribute_incidents
from geogrid.store.tables import category, incident
from geogrid.store.units import copy_units, create_version, insert_units, publish_version
from geogrid.store.workflow import update_incident

GRIDS = [C1 + "001", C1 + "002", C2 + "001", C2 + "002"]
ZONE = "Asia/Shanghai"
SH = timedelta(hours=8)

#: (start, end, now) windows: Shanghai midnights, UTC midnights, odd hours; now = later
#: (state read at the end, in the past) or inside the window (state read now)
WINDOWS = [
    (datetime(2026, 5, 1) - SH, datetime(2026, 6, 1) - SH, datetime(2026, 7, 1, tzinfo=UTC)),
    (datetime(2026, 5, 1), datetime(2026, 6, 1), datetime(2026, 6, 1)),
    (datetime(2026, 5, 3, 7, 30), datetime(2026, 5, 29, 13), datetime(2026, 6, 20)),
    (datetime(2026, 5, 10, 16), datetime(2026, 6, 10, 16), datetime(2026, 6, 2, 9)),
    (datetime(2026, 5, 14, 2), datetime(2026, 5, 14, 9), datetime(2026, 5, 14, 9)),
]


def _aware(d: datetime) -> datetime:
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _span(s: datetime, e: datetime, t: datetime) -> dict[str, datetime]:
    """The window [s, e), the one as long before it, and the time its state is read."""
    return {"prev_start": s - (e - s), "start": s, "end": e, "t": t}


def _units() -> gpd.GeoDataFrame:
    return units(
        [
            (D, "区", "district", None, 4000, 1400, 4e6, square(0, 4)),
            (S, "街道", "street", D, 4000, 1400, 4e6, square(0, 4)),
            (C1, "社区1", "community", S, 3000, 1000, 2e6, square(0, 2)),
            (C2, "社区2", "community", S, 1000, 400, 2e6, square(2, 4)),
            *[
                (g, f"网格{i}", "grid", g[:12], 500, 200, 1e6, square(i, i + 1))
                for i, g in enumerate(GRIDS)
            ],
        ]
    )


def _incidents(rng: np.random.Generator, n: int, vid: int, prefix: str) -> list[dict]:
    """Random incidents, a third of them within an hour of a UTC or a Shanghai midnight."""
    base = datetime(2026, 3, 20, tzinfo=UTC)
    out = []
    for k in range(n):
        day = int(rng.integers(0, 90))
        near = rng.random()
        if near < 0.17:
            rep = base + timedelta(days=day, minutes=float(rng.uniform(-60, 60)))
        elif near < 0.33:
            rep = base + timedelta(days=day, hours=16, minutes=float(rng.uniform(-60, 60)))
        else:
            rep = base + timedelta(days=day, hours=float(rng.uniform(0, 24)))
        cat = "A" if rng.random() < 0.6 else "B"
        g = None if rng.random() < 0.05 else GRIDS[int(rng.integers(0, 4))]
        status = str(
            rng.choice(
                ["reported", "accepted", "in_progress", "resolved", "closed", "rejected"],
                p=[0.15, 0.1, 0.1, 0.3, 0.25, 0.1],
            )
        )
        res = closed = None
        if status in ("resolved", "closed"):
            res = rep + timedelta(hours=float(rng.uniform(0.5, 120)))
        if status in ("closed", "rejected"):
            closed = (res or rep) + timedelta(hours=float(rng.uniform(0, 48)))
        i = GRIDS.index(g) if g else 6
        out.append(
            incident_row(
                f"{prefix}{k}", g, cat, rep, status, res, closed, version_id=vid, geom=point(i)
            )
        )
    return out


@pytest.fixture(scope="module")
def city(make_db):
    url = make_db()
    eng = get_engine(url)
    with eng.begin() as conn:
        vid = create_version(conn, "rollup test")
        insert_units(conn, vid, _units())
        publish_version(conn, vid)
        conn.execute(
            insert(category),
            [
                {"code": "A", "name_zh": "甲", "name_en": "A", "limit_hours": 24.0, "effort": 1.0},
                {"code": "B", "name_zh": "乙", "name_en": "B", "limit_hours": 48.0, "effort": 1.7},
            ],
        )
    return eng, vid


def _rollup_equals_rebuild(eng) -> None:
    key = "version_id, grid_code, community_code, street_code, district_code, category"
    kept = f"SELECT day, {key}, incidents, resolved FROM incident_daily"
    rebuilt = (
        f"SELECT (reported_at AT TIME ZONE '{ZONE}')::date, {key}, count(*), "
        "count(*) FILTER (WHERE status IN ('resolved', 'closed')) "
        "FROM incident GROUP BY 1, 2, 3, 4, 5, 6, 7"
    )
    with eng.connect() as conn:
        extra = conn.execute(text(f"{kept} EXCEPT ALL {rebuilt}")).all()
        missing = conn.execute(text(f"{rebuilt} EXCEPT ALL {kept}")).all()
        n = conn.execute(text("SELECT count(*) FROM incident_daily")).scalar_one()
    assert extra == [] and missing == [] and n > 0


def _same_aggregates(eng, vid: int) -> None:
    for start, end, now in WINDOWS:
        s, e, now_d = _aware(start), _aware(end), _aware(now)
        t = min(e, now_d)
        for level in ("grid", "community", "district"):
            for cats in (None, ["B"]):
                kw = dict(_span(s, e, t), categories=cats, version_id=vid, past=t < now_d)
                old = sm.aggregate_units(eng, level, **kw)
                new = rollup.aggregate_units_rollup(eng, level, zone=ZONE, **kw)
                key = lambda f: f.assign(code=f["code"].fillna("-")).set_index("code").sort_index()  # noqa: E731
                old, new = key(old), key(new)
                # the rollup path may list a unit with nothing (all zero) that the base
                # path leaves out, or the reverse: compare on the union, zeros filled
                codes = old.index.union(new.index)
                o, n = old.reindex(codes), new.reindex(codes)
                where = f"{level} {start}–{end} now {now} cats {cats}"
                for c in AGGREGATE_COUNTS:
                    assert (o[c].fillna(0).astype(int) == n[c].fillna(0).astype(int)).all(), (
                        c,
                        where,
                        o[c].to_dict(),
                        n[c].to_dict(),
                    )
                # (the base path leaves the hours of the no-unit group NaN: no metric shows
                # that group, so it is left out here)
                o, n = o.drop(index="-", errors="ignore"), n.drop(index="-", errors="ignore")
                for c in ("effort_incidents", "median_hours", "p90_hours"):
                    fill = 0.0 if c == "effort_incidents" else np.nan
                    np.testing.assert_allclose(
                        n[c].astype(float).fillna(fill),
                        o[c].astype(float).fillna(fill),
                        rtol=1e-9,
                        err_msg=f"{c} {where}",
                    )


def test_rollup_follows_every_write_and_metrics_match_the_base_table(city):
    eng, vid = city
    rng = np.random.default_rng(12)
    # 1. a bulk insert (one statement)
    with eng.begin() as conn:
        conn.execute(insert(incident), _incidents(rng, 600, vid, "bulk"))
    _rollup_equals_rebuild(eng)
    _same_aggregates(eng, vid)

    # 2. single reports, one statement each, some of them on a Shanghai midnight exactly
    rows = _incidents(rng, 12, vid, "one")
    rows[0]["reported_at"] = datetime(2026, 5, 1) - SH
    rows[1]["reported_at"] = datetime(2026, 5, 20, tzinfo=UTC)
    with eng.begin() as conn:
        for r in rows:
            conn.execute(insert(incident).values(**r))
    _rollup_equals_rebuild(eng)

    # 3. status transitions (open → resolved → closed, and reopened), one row at a time
    with eng.begin() as conn:
        ids = conn.execute(
            text("SELECT id, reported_at, status FROM incident ORDER BY id LIMIT 80")
        ).all()
        for i, rep, status in ids:
            if status in ("reported", "accepted", "in_progress"):
                at = rep + timedelta(hours=30)
                update_incident(
                    conn, i, {"status": "resolved", "resolved_at": at, "updated_at": at}
                )
            elif status == "resolved":
                at = rep + timedelta(hours=200)
                update_incident(conn, i, {"status": "closed", "closed_at": at, "updated_at": at})
            elif status == "closed":
                update_incident(
                    conn, i, {"status": "in_progress", "resolved_at": None, "closed_at": None}
                )
    _rollup_equals_rebuild(eng)
    _same_aggregates(eng, vid)
    _same_metrics(eng, vid)
    _refresh_equals_rebuild(eng, vid, rng)

    # 4. a publish's re-attribution: a new version where the first grid's incidents move
    #    to the second grid (and some outside ones come in), counts move between grids
    with eng.begin() as conn:
        v2 = create_version(conn, "redrawn", based_on=vid)
        copy_units(conn, vid, v2)
        publish_version(conn, v2)
        moved = (
            conn.execute(
                text(
                    "SELECT id FROM incident WHERE grid_code = :g OR grid_code IS NULL ORDER BY id"
                ),
                {"g": GRIDS[0]},
            )
            .scalars()
            .all()
        )
        g = GRIDS[1]
        attribution = pd.DataFrame(
            {"id": moved, "grid": g, "community": g[:12], "street": g[:9], "district": g[:6]}
        )
        reattribute_incidents(conn, attribution, v2, vid)
    _rollup_equals_rebuild(eng)
    _same_aggregates(eng, v2)  # incidents of version 1 remain: 'mismatched' is compared too

    # 5. deletes (a few rows, then a whole day)
    with eng.begin() as conn:
        conn.execute(
            text(
                "DELETE FROM incident WHERE id IN (SELECT id FROM incident ORDER BY id DESC LIMIT 7)"
            )
        )
        conn.execute(
            text("DELETE FROM incident WHERE (reported_at AT TIME ZONE :z)::date = '2026-05-12'"),
            {"z": ZONE},
        )
    _rollup_equals_rebuild(eng)
    _same_aggregates(eng, v2)


def _same_metrics(eng, vid: int) -> None:
    """load_metrics (rollup path) equals the base-table aggregate through the same
    arithmetic (metrics_from_aggregates)."""
    start, end = datetime(2026, 5, 1) - SH, datetime(2026, 6, 1) - SH
    s, e = start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)
    got = metrics.load_metrics(eng, "community", start=s, end=e, now=e, tz=ZONE)
    assert got.attrs["path"] == "sql"
    old = sm.aggregate_units(
        eng, "community", **_span(s, e, e), categories=None, version_id=vid, past=False
    )
    want = metrics.metrics_from_aggregates(
        eng,
        "community",
        old,
        version_id=vid,
        **_span(s, e, e),
        categories=None,
        weights=LoadWeights(),
        cache=UnitCache(),
        path="sql",
    )[got.columns]
    assert int(got["incidents"].sum()) > 0
    pd.testing.assert_frame_equal(
        pd.DataFrame(got.drop(columns="geometry")),
        pd.DataFrame(want.drop(columns="geometry")),
        rtol=1e-9,
    )


def _refresh_equals_rebuild(eng, vid: int, rng: np.random.Generator) -> None:
    """A map's frame refreshed for the units a few reports touched equals a rebuilt one."""
    start, end = datetime(2026, 5, 10) - SH, datetime(2026, 6, 9) - SH
    s, e = start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)
    now = datetime(2026, 6, 1, 3, tzinfo=UTC)  # inside the window: the state is read now
    for level in ("grid", "community"):
        before = metrics.metrics_frame(eng, level, start=s, end=e, now=now, tz=ZONE)
        rows = _incidents(rng, 5, vid, f"refresh-{level}-")
        for k, r in enumerate(rows):
            r["grid_code"], r["community_code"] = GRIDS[2], GRIDS[2][:12]
            r["reported_at"] = datetime(2026, 5, 20 + k, 16, tzinfo=UTC)
            r["updated_at"] = max(r["updated_at"], r["reported_at"])
        with eng.begin() as conn:
            conn.execute(insert(incident), rows)
        with eng.connect() as conn:
            codes = rollup.unit_codes_meeting(
                conn, vid, level, [(X0 + 0.025, Y0 + 0.005, X0 + 0.025, Y0 + 0.005)]
            )
        assert codes == [GRIDS[2] if level == "grid" else GRIDS[2][:12]]
        got = metrics.refresh_metrics_frame(eng, before, codes, now=now, tz=ZONE)
        want = metrics.metrics_frame(eng, level, start=s, end=e, now=now, tz=ZONE)
        assert got is not None
        changed = got.set_index("code")["incidents"] - before.set_index("code")["incidents"]
        assert changed.to_dict()[codes[0]] > 0 and changed.drop(codes[0]).eq(0).all()
        pd.testing.assert_frame_equal(
            pd.DataFrame(got.drop(columns="geometry")),
            pd.DataFrame(want.drop(columns="geometry")),
            rtol=1e-9,
        )


def test_whole_days_and_zone():
    s, e = datetime(2026, 5, 1, 16, tzinfo=UTC), datetime(2026, 6, 1, 16, tzinfo=UTC)
    assert rollup.whole_days(s, e, ZONE) == (
        datetime(2026, 5, 2).date(),
        datetime(2026, 6, 2).date(),
    )
    # a window shorter than a day has no whole day
    d = rollup.whole_days(s + timedelta(hours=1), s + timedelta(hours=5), ZONE)
    assert d[0] == d[1]
