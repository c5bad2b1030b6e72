"""The embedded PostgreSQL + PostGIS cluster (``geogrid db up | status | down``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import psycopg
import pytest

from geogrid.store import cluster

pytestmark = pytest.mark.skipif(
    not any(os.path.exists(f"/usr/lib/postgresql/{v}/bin/initdb") for v in range(12, 20)),
    reason="no PostgreSQL server binaries",
)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_embedded_cluster_lifecycle(tmp_path_factory):
    home = tmp_path_factory.mktemp("gghome")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "GEOGRID_DATABASE_URL"}
    env.update(GEOGRID_HOME=str(home), GEOGRID_PG_PORT=str(port))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "geogrid.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )

    try:
        up = cli("db", "up")
        assert up.returncode == 0, up.stderr
        assert f":{port}/geogrid" in up.stdout
        st = cli("db", "status")
        assert "'running': True" in st.stdout
        mig = cli("db", "migrate")
        assert mig.returncode == 0, mig.stderr
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/geogrid") as conn:
            assert conn.execute("SELECT postgis_lib_version()").fetchone()[0].startswith("3.")
            tables = {
                r[0]
                for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            }
            assert {"unit", "incident", "boundary_version", "alembic_version"} <= tables
        assert cli("db", "up").returncode == 0  # idempotent while running
    finally:
        down = cli("db", "down")
        assert down.returncode == 0, down.stderr
    assert "'running': False" in cli("db", "status").stdout
    assert (home / "pg" / "PG_VERSION").exists()
    shutil.rmtree(home, ignore_errors=True)


def test_missing_binaries_message(monkeypatch):
    monkeypatch.setattr(cluster.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(cluster.shutil, "which", lambda name: None)
    with pytest.raises(Exception, match="postgresql-15-postgis-3"):
        cluster.pg_bin("initdb")
