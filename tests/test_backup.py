"""Backups that restore: ``geogrid db backup PATH`` / ``geogrid db restore PATH``.

A small city with incidents is backed up (pg_dump custom format + the media folder) and
restored into a NEW, EMPTY database (``CREATE DATABASE``, no PostGIS, no migrations: the
dump carries the extension, the schema and Alembic's version); every table's row count
and checksum (md5 of its rows as text, ordered) and every sequence's position must match.
Restoring over a database that is not empty is refused without ``--force``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from sqlalchemy import text

from geogrid.core.catalogue import load_categories
from geogrid.demo.boundaries import build_hierarchy
from geogrid.errors import Conflict
from geogrid.services.backup import backup, restore
from geogrid.services.boundaries import save_hierarchy
from geogrid.services.ingest import import_incidents
from geogrid.settings import Settings
from geogrid.store import get_engine
from geogrid.store.incidents import upsert_categories
from tests.conftest import ADMIN_URL, drop_database


@pytest.fixture(scope="module")
def source(make_db, tmp_path_factory):
    """A database with the demo boundaries, the catalogue and 500 incidents."""
    url = make_db()
    engine = get_engine(url)
    units = build_hierarchy()
    save_hierarchy(engine, units, label="demo", source="test")
    with engine.begin() as conn:
        upsert_categories(conn, load_categories())
    pts = units["grid"].geometry.representative_point()
    i = np.arange(500)
    csv = tmp_path_factory.mktemp("backup_src") / "incidents.csv"
    pd.DataFrame(
        {
            "source_id": [f"b-{k}" for k in i],
            "category": np.array(["sanitation", "neighbour_dispute"])[i % 2],
            "lon": pts.x.to_numpy()[i % len(pts)],
            "lat": pts.y.to_numpy()[i % len(pts)],
            "reported_at": [f"2026-05-{1 + k % 28:02d}T08:30:00" for k in i],
            "description": "备份测试",
        }
    ).to_csv(csv, index=False)
    assert import_incidents(engine, csv).loaded == 500
    return url


@pytest.fixture
def empty_db():
    """A new database with nothing in it (not even PostGIS); dropped afterwards."""
    name = f"geogrid_restore_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}".replace(
        "postgresql://", "postgresql+psycopg://", 1
    )
    yield url
    drop_database(url)


def _fingerprint(url: str) -> dict[str, tuple[int, str | None]]:
    """Every table's (row count, md5 of its rows as text in order) — partitioned parents
    and each partition (issue 12) — and every sequence's last value, of the database's own
    objects (not PostGIS')."""
    out: dict[str, tuple[int, str | None]] = {}
    with get_engine(url).connect() as conn:
        rels = conn.execute(
            text(
                "SELECT c.relkind, quote_ident(n.nspname) || '.' || quote_ident(c.relname) "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p', 'S') AND n.nspname NOT IN ('pg_catalog', "
                "'information_schema') AND n.nspname NOT LIKE 'pg\\_%' AND NOT EXISTS ("
                "SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
                "AND d.objid = c.oid AND d.deptype = 'e')"
            )
        ).all()
        for kind, rel in rels:
            if kind == "S":
                row = conn.execute(text(f"SELECT last_value, is_called FROM {rel}")).one()
                out[rel] = (int(row[0]), str(row[1]))
            else:
                row = conn.execute(
                    text(
                        f"SELECT count(*), md5(string_agg(t::text, E'\\n' ORDER BY t::text)) FROM {rel} t"
                    )
                ).one()
                out[rel] = (int(row[0]), row[1])
    return out


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GEOGRID_DATABASE_URL"}
    env["GEOGRID_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "geogrid.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_backup_restores_every_table_exactly(source, empty_db, tmp_path):
    home = tmp_path / "home"
    (home / "media" / "2026").mkdir(parents=True)
    (home / "media" / "2026" / "photo.jpg").write_bytes(b"\xff\xd8jpeg")
    dest = tmp_path / "backup"
    made = _cli(home, "db", "backup", str(dest), "--url", source)
    assert made.returncode == 0, made.stderr
    assert (dest / "geogrid.dump").stat().st_size > 0
    assert (dest / "media" / "2026" / "photo.jpg").read_bytes() == b"\xff\xd8jpeg"
    assert "1 media file" in made.stdout

    home2 = tmp_path / "home2"
    home2.mkdir()
    done = _cli(home2, "db", "restore", str(dest), "--url", empty_db)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    before, after = _fingerprint(source), _fingerprint(empty_db)
    assert "public.incident" in before and before["public.incident"][0] == 500
    assert "public.alembic_version" in before
    assert after == before
    assert (home2 / "media" / "2026" / "photo.jpg").read_bytes() == b"\xff\xd8jpeg"


def test_restore_over_a_database_in_use_needs_force(source, make_db, tmp_path):
    dest = tmp_path / "backup"
    home = tmp_path / "home"
    home.mkdir()
    assert _cli(home, "db", "backup", str(dest), "--url", source).returncode == 0
    target = make_db()  # migrated: tables of its own, so not empty
    before = _fingerprint(target)
    refused = _cli(home, "db", "restore", str(dest), "--url", target)
    assert refused.returncode == 2
    assert "not empty" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _fingerprint(target) == before  # untouched
    with pytest.raises(Conflict, match="not empty"):
        restore(dest, target, settings=Settings(home=home))
    forced = _cli(home, "db", "restore", str(dest), "--url", target, "--force")
    assert forced.returncode == 0, forced.stderr
    assert _fingerprint(target) == _fingerprint(source)


def test_backup_refuses_a_folder_in_use_and_restore_a_non_backup(source, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    res = _cli(home, "db", "backup", str(tmp_path / "full"), "--url", source)
    assert res.returncode == 2 and "not an empty folder" in res.stderr
    res = _cli(home, "db", "restore", str(tmp_path / "full"), "--url", source)
    assert res.returncode == 2 and "not a geogrid backup" in res.stderr


def test_password_never_on_the_command_line(source, tmp_path):
    """The dump runs with the password in the child's environment (PGPASSWORD), so a
    URL with a password works and the backup report hides it."""
    u = source.replace("postgres@", "postgres:not-needed-with-trust@", 1)
    rep = backup(tmp_path / "b", u, Settings(home=tmp_path))
    assert "not-needed-with-trust" not in rep.database and "***" in rep.database
    assert rep.tables["public.incident"] == 500
