"""Monthly partitions of ``incident`` (revision 0015): the schema after the migration, keys
and cascades, months made on demand (rows never refused), pruning read from EXPLAIN, the
archive → GeoParquet → restore round trip, and the migration's downgrade."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import geopandas as gpd
import pytest
from conftest import create_database, drop_database
from sqlalchemy import event, text

from geogrid.core.catalogue import load_categories
from geogrid.core.partitioning import month_range
from geogrid.core.scope import Scope
from geogrid.services import incidents as incident_service
from geogrid.services import partitions
from geogrid.store import get_engine
from geogrid.store.incidents import upsert_categories
from geogrid.store.partitions import list_partitions, month_digest
from geogrid.store.schema import alembic_config

ZONE = "Asia/Shanghai"


def assert_rollup_exact(conn) -> None:
    """The daily rollup (revision 0016) holds exactly what ``incident`` holds now, also
    for months that joined or left it whole (attached or detached, without triggers)."""
    key = "version_id, grid_code, community_code, street_code, district_code, category"
    kept = f"SELECT day, {key}, incidents, resolved FROM incident_daily"
    rebuilt = (
        f"SELECT (reported_at AT TIME ZONE incident_daily_zone())::date, {key}, count(*), "
        "count(*) FILTER (WHERE status IN ('resolved', 'closed')) "
        "FROM incident GROUP BY 1, 2, 3, 4, 5, 6, 7"
    )
    diff = f"({kept} EXCEPT ALL {rebuilt}) UNION ALL ({rebuilt} EXCEPT ALL {kept})"
    assert conn.execute(text(diff)).all() == []


@pytest.fixture(scope="module")
def engine(make_db):
    e = get_engine(make_db())
    with e.begin() as conn:
        upsert_categories(conn, load_categories())
    yield e
    partitions.forget(e)


def _insert(conn, at: datetime, source: str | None = None, n: int = 1) -> list[int]:
    """Raw SQL inserts (as tests and benches do): no partition made first."""
    ids = []
    for k in range(n):
        ids.append(
            conn.execute(
                text(
                    "INSERT INTO incident (source_id, category, reported_at, updated_at, "
                    "status, geom, description) VALUES (:s, 'sanitation', :t, :t, "
                    "'reported', ST_SetSRID(ST_MakePoint(109.7 + :k * 1e-4, 38.3), 4326), "
                    "'x') RETURNING id"
                ),
                {"s": f"{source}-{k}" if source else None, "t": at + timedelta(hours=k), "k": k},
            ).scalar_one()
        )
    return ids


def _home(conn, ids: list[int]) -> set[str]:
    rows = conn.execute(
        text("SELECT DISTINCT tableoid::regclass::text FROM incident WHERE id = ANY(:i)"),
        {"i": ids},
    ).scalars()
    return set(rows)


def test_schema_after_the_migration(engine):
    with engine.connect() as conn:
        strategy = conn.execute(
            text(
                "SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'incident'::regclass"
            )
        ).scalar_one()
        assert strategy == "r"
        names = [p.name for p in list_partitions(conn)]
        assert names[-1] == "incident_default"
        assert any(n.startswith("incident_p") for n in names)
        # the seven foreign keys now reference the key table, their actions kept
        fks = conn.execute(
            text(
                "SELECT conrelid::regclass::text, confdeltype FROM pg_constraint "
                "WHERE contype = 'f' AND confrelid = 'incident_key'::regclass"
            )
        ).all()
        assert len(fks) >= 7
        assert dict(fks)["dispute"] == "n" and dict(fks)["incident_event"] == "c"
        assert not conn.execute(
            text("SELECT count(*) FROM pg_constraint WHERE confrelid = 'incident'::regclass")
        ).scalar_one()
        idx = set(
            conn.execute(
                text("SELECT indexname FROM pg_indexes WHERE tablename = 'incident'")
            ).scalars()
        )
        assert {
            "incident_pkey",
            "incident_geom",
            "incident_grid",
            "incident_reported_at",
            "incident_status_due",
            "incident_open_assigned_unit",
            "incident_open_assignee",
        } <= idx
        triggers = set(
            conn.execute(
                text(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = 'incident'::regclass "
                    "AND NOT tgisinternal"
                )
            ).scalars()
        )
        assert {"incident_live_insert", "incident_live_status", "incident_key_insert"} <= triggers
        assert conn.execute(text("SELECT pg_get_serial_sequence('incident', 'id')")).scalar_one()


def test_keys_cascades_and_a_row_outside_every_month(engine):
    far = datetime(2031, 7, 15, 3, tzinfo=UTC)
    with engine.begin() as conn:
        (iid,) = _insert(conn, far, source=f"far-{uuid.uuid4().hex[:6]}")
        # no partition for 2031-07: the row waits in the DEFAULT one, nothing failed
        assert _home(conn, [iid]) == {"incident_default"}
        conn.execute(
            text("INSERT INTO incident_event (incident_id, kind) VALUES (:i, 'note')"), {"i": iid}
        )
        key = conn.execute(
            text("SELECT reported_at FROM incident_key WHERE id = :i"), {"i": iid}
        ).scalar_one()
        assert key == far
        source = conn.execute(
            text("SELECT source_id FROM incident WHERE id = :i"), {"i": iid}
        ).scalar_one()
    # the same source_id again is refused, as the unique constraint did before
    with pytest.raises(Exception, match="incident_source_id_key"):
        with engine.begin() as conn:
            _insert(conn, far, source=source.rsplit("-", 1)[0])
    made = partitions.ensure(engine, far, tz=ZONE)
    assert made == ["incident_p2031_07"]
    assert partitions.ensure(engine, far, tz=ZONE) == []  # known: no query, nothing made
    with engine.begin() as conn:
        assert _home(conn, [iid]) == {"incident_p2031_07"}  # moved out of the default
        # moving a row to another month keeps its key and its events
        conn.execute(
            text(
                "UPDATE incident SET reported_at = reported_at + interval '40 days' WHERE id = :i"
            ),
            {"i": iid},
        )
        assert (
            conn.execute(
                text("SELECT count(*) FROM incident_event WHERE incident_id = :i"), {"i": iid}
            ).scalar_one()
            == 1
        )
        conn.execute(text("DELETE FROM incident WHERE id = :i"), {"i": iid})
        # the delete cascades through the key, as the foreign keys did before
        assert not conn.execute(
            text("SELECT count(*) FROM incident_event WHERE incident_id = :i"), {"i": iid}
        ).scalar_one()
        assert not conn.execute(
            text("SELECT count(*) FROM incident_key WHERE id = :i"), {"i": iid}
        ).scalar_one()


def test_maintain_makes_months_ahead_and_empties_the_default(engine):
    at = datetime(2032, 2, 10, tzinfo=UTC)
    with engine.begin() as conn:
        ids = _insert(conn, at, n=3)
    made = partitions.maintain(engine, tz=ZONE)
    assert "incident_p2032_02" in made
    with engine.connect() as conn:
        assert _home(conn, ids) == {"incident_p2032_02"}
        assert not conn.execute(text("SELECT count(*) FROM incident_default")).scalar_one()
        now = datetime.now(UTC)
        for k in range(3):
            b = month_range(partitions.next_month(partitions.month_of(now, ZONE), k), ZONE)
            assert any(p.start == b.start for p in list_partitions(conn))


def test_a_one_month_query_scans_only_that_months_partition(engine):
    """The SQL of ``/incidents?start&end`` for May 2027 (captured as it runs), EXPLAINed:
    the plan reads incident_p2027_05 and no other partition."""
    for day in (
        datetime(2027, 4, 20, tzinfo=UTC),
        datetime(2027, 5, 20, tzinfo=UTC),
        datetime(2027, 6, 20, tzinfo=UTC),
    ):
        partitions.ensure(engine, day, tz=ZONE)
        with engine.begin() as conn:
            _insert(conn, day, n=2)
    start, end = month_range("2027-05", ZONE).start, month_range("2027-05", ZONE).end
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "FROM incident" in statement and "reported_at" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        found = incident_service.list_incidents(
            engine, start=start, end=end - timedelta(microseconds=1), scope=Scope.system()
        )
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(found) == 2
    assert seen
    statement, params = seen[0]
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            cur.execute("EXPLAIN (FORMAT JSON) " + statement, params)
            plan = cur.fetchone()[0]
    relations: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            if "Relation Name" in node:
                relations.add(node["Relation Name"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(plan)
    scanned = {r for r in relations if r.startswith("incident_p") or r == "incident_default"}
    assert scanned == {"incident_p2027_05"}, relations


def test_archive_and_restore_round_trip(engine, tmp_path):
    months = [datetime(2028, 3, 5, tzinfo=UTC), datetime(2028, 4, 5, tzinfo=UTC)]
    for at in months:
        partitions.ensure(engine, at, tz=ZONE)
    with engine.begin() as conn:
        march = _insert(conn, months[0], source=f"ar-{uuid.uuid4().hex[:6]}", n=25)
        _insert(conn, months[1], n=10)
        conn.execute(
            text("UPDATE incident SET reporter_id = 7, resolved_at = reported_at WHERE id = :i"),
            {"i": march[0]},
        )
        conn.execute(
            text("INSERT INTO incident_event (incident_id, kind) VALUES (:i, 'note')"),
            {"i": march[1]},
        )
        before = month_digest(conn, "incident_p2028_03")
        before_april = month_digest(conn, "incident_p2028_04")
    assert before["rows"] == 25
    report = partitions.archive_before(engine, "2028-04", tmp_path, tz=ZONE)
    with engine.connect() as conn:
        assert_rollup_exact(conn)  # the archived month left the rollup
    assert "incident_p2028_03" in report.files
    assert "incident_p2028_04" not in report.files
    with engine.connect() as conn:
        names = {p.name for p in list_partitions(conn)}
        assert "incident_p2028_03" not in names and "incident_p2028_04" in names
        assert not conn.execute(
            text("SELECT count(*) FROM incident WHERE id = ANY(:i)"), {"i": march}
        ).scalar_one()
        # the keys and the events of archived incidents stay
        assert (
            conn.execute(
                text("SELECT count(*) FROM incident_event WHERE incident_id = :i"), {"i": march[1]}
            ).scalar_one()
            == 1
        )
    path = report.files["incident_p2028_03"]
    assert path.endswith("incident-archive-2028-03.parquet")
    gdf = gpd.read_parquet(path)  # a GeoParquet file GeoPandas reads
    assert len(gdf) == 25 and gdf.crs.to_epsg() == 4326
    assert gdf.geometry.geom_type.unique().tolist() == ["Point"]
    restored = partitions.restore_month(engine, path)
    assert restored.rows == 25
    with engine.connect() as conn:
        assert_rollup_exact(conn)  # and came back with it
        assert month_digest(conn, "incident_p2028_03") == before
        assert month_digest(conn, "incident_p2028_04") == before_april
        assert _home(conn, march) == {"incident_p2028_03"}
        indexes = conn.execute(
            text("SELECT count(*) FROM pg_indexes WHERE tablename = 'incident_p2028_03'")
        ).scalar_one()
        assert (
            indexes
            == conn.execute(
                text("SELECT count(*) FROM pg_indexes WHERE tablename = 'incident_p2028_04'")
            ).scalar_one()
        )
    # restoring an attached month again is refused, nothing changes
    with pytest.raises(Exception, match="exists already"):
        partitions.restore_month(engine, path)


def test_downgrade_and_upgrade_keep_the_rows():
    url = create_database("geogrid_t_part", revision="0014")
    try:
        e = get_engine(url)
        with e.begin() as conn:
            ids = _insert(conn, datetime(2025, 9, 1, tzinfo=UTC), source="dg", n=5)
            conn.execute(
                text("INSERT INTO incident_event (incident_id, kind) VALUES (:i, 'note')"),
                {"i": ids[0]},
            )
        e.dispose()
        from alembic import command

        cfg = alembic_config(url)
        command.upgrade(cfg, "0015")
        e = get_engine(url)
        with e.connect() as conn:
            assert _home(conn, ids) == {"incident_p2025_09"}
            assert conn.execute(text("SELECT count(*) FROM incident_key")).scalar_one() == 5
        e.dispose()
        command.downgrade(cfg, "0014")
        e = get_engine(url)
        with e.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM incident")).scalar_one() == 5
            assert (
                conn.execute(
                    text(
                        "SELECT confrelid::regclass::text FROM pg_constraint "
                        "WHERE conname = 'incident_event_incident_id_fkey'"
                    )
                ).scalar_one()
                == "incident"
            )
        e.dispose()
    finally:
        drop_database(url)


def test_a_busy_maker_never_delays_a_writer(engine):
    """While another transaction makes months (an import holds the partition lock),
    ensure() returns at once and the row waits in the DEFAULT partition; maintain() moves
    it out later."""
    import time

    from geogrid.store import locks

    at = datetime(2033, 8, 8, tzinfo=UTC)
    partitions.forget(engine)
    with engine.begin() as holder:
        locks.xact_lock(holder, partitions.PARTITION_LOCK_NAMESPACE, 0)
        t0 = time.perf_counter()
        assert partitions.ensure(engine, at, tz=ZONE) == []
        assert time.perf_counter() - t0 < partitions.LOCK_TIMEOUT_MS / 1000
        with engine.begin() as conn:
            ids = _insert(conn, at)
            assert _home(conn, ids) == {"incident_default"}
    assert partitions.ensure(engine, at, tz=ZONE) == []  # paused: no query, no wait
    assert "incident_p2033_08" in partitions.maintain(engine, tz=ZONE)
    with engine.connect() as conn:
        assert _home(conn, ids) == {"incident_p2033_08"}


def test_a_reader_during_a_move_out_of_default_sees_every_row(engine):
    """Rows waiting in DEFAULT moved into a new month while a count is asked: the reader
    waits and counts every row (without the parent's lock it was planned without the new
    partition, scanned DEFAULT after the move and missed them)."""
    import threading

    at = datetime(2031, 5, 10, tzinfo=UTC)
    with engine.begin() as conn:
        _insert(conn, at, n=7)  # no partition for 2031-05: the rows wait in DEFAULT
        total = conn.execute(text("SELECT count(*) FROM incident")).scalar_one()
    seen: list[int] = []
    with engine.connect() as mover:
        mover.begin()
        assert partitions.make_months(mover, ["2031-05"], ZONE) == ["incident_p2031_05"]

        def count() -> None:
            with engine.connect() as reader:
                seen.append(reader.execute(text("SELECT count(*) FROM incident")).scalar_one())

        t = threading.Thread(target=count)
        t.start()
        t.join(0.8)
        assert t.is_alive()  # waiting for the move
        mover.commit()
        t.join(30)
    assert seen == [total]
