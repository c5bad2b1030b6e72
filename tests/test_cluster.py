"""The embedded PostgreSQL + PostGIS cluster (``geogrid db up | status | down``)."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from geogrid.settings import Settings
from geogrid.store import cluster

pytestmark = pytest.mark.skipif(
    not any(os.path.exists(f"/usr/lib/postgresql/{v}/bin/initdb") for v in range(12, 20)),
    reason="no PostgreSQL server binaries",
)


def _free_port() -> int:
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
        secret_file = home / "pg-secret"
        secret = secret_file.read_text().strip()
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        assert secret not in up.stdout + up.stderr  # never printed
        # no password → refused, over TCP and over the local socket
        for host in ("127.0.0.1", str(home / "pg")):
            with pytest.raises(psycopg.OperationalError, match="password"):
                psycopg.connect(host=host, port=port, user="postgres", dbname="geogrid")
        st = cli("db", "status")
        assert "'running': True" in st.stdout
        mig = cli("db", "migrate")
        assert mig.returncode == 0, mig.stderr
        with psycopg.connect(
            host="127.0.0.1", port=port, user="postgres", password=secret, dbname="geogrid"
        ) as conn:
            assert conn.execute("SELECT postgis_lib_version()").fetchone()[0].startswith("3.")
            tables = {
                r[0]
                for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            }
            assert {"unit", "incident", "boundary_version", "alembic_version"} <= tables
        assert cli("db", "up").returncode == 0  # idempotent while running
        # backups of the embedded cluster (its password from pg-secret, never printed)
        dest = home / "backup"
        made = cli("db", "backup", str(dest))
        assert made.returncode == 0, made.stderr
        assert (dest / "geogrid.dump").exists() and secret not in made.stdout
        refused = cli("db", "restore", str(dest))
        assert refused.returncode == 2 and "not empty" in refused.stderr
        forced = cli("db", "restore", str(dest), "--force")
        assert forced.returncode == 0, forced.stderr
        assert "Traceback" not in forced.stderr and secret not in forced.stdout
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


def test_trust_cluster_is_upgraded_to_scram(tmp_path_factory):
    """A cluster made by an older geogrid (``--auth=trust``) gets a password on ``up``."""
    home = tmp_path_factory.mktemp("gghome_trust")
    settings = Settings(home=home, pg_port=_free_port())
    data = settings.pg_data
    data.mkdir(parents=True)
    as_owner: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
        for p in [home, *home.parents]:
            if p == Path("/"):
                break
            os.chmod(p, os.stat(p).st_mode | 0o011)
        as_owner = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_owner, cluster.pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    with open(data / "postgresql.conf", "a") as f:
        f.write(f"\nlisten_addresses = '127.0.0.1'\nport = {settings.pg_port}\n")
        f.write(f"unix_socket_directories = '{data}'\n")
    try:
        url = cluster.up(settings)
        secret = (home / "pg-secret").read_text().strip()
        assert secret and secret in url
        assert stat.S_IMODE((home / "pg-secret").stat().st_mode) == 0o600
        assert "trust" not in [
            line.split()[-1]
            for line in (data / "pg_hba.conf").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(host="127.0.0.1", port=settings.pg_port, user="postgres")
        kw = {"host": "127.0.0.1", "port": settings.pg_port, "user": "postgres"}
        with psycopg.connect(**kw, password=secret, dbname="geogrid") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert cluster.up(settings) == url  # idempotent: the password is set once
    finally:
        cluster.down(settings)
    shutil.rmtree(home, ignore_errors=True)


def test_redacted_url_hides_the_password():
    url = "postgresql+psycopg://postgres:abc123@127.0.0.1:5/geogrid"
    assert "abc123" not in cluster.redacted(url)
    assert cluster.redacted(url).endswith(":5/geogrid")
