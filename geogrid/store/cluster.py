"""The embedded PostgreSQL + PostGIS cluster used when ``GEOGRID_DATABASE_URL`` is unset.

It is an ordinary cluster made with the system's ``initdb``/``pg_ctl`` (PostgreSQL 15 and
the ``postgresql-15-postgis-3`` package) in ``$GEOGRID_HOME/pg``, listening on 127.0.0.1 at
``GEOGRID_PG_PORT``. When running as root the server runs as the ``postgres`` user, as
PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from geogrid.errors import DatabaseUnavailable
from geogrid.settings import Settings, get_settings

__all__ = ["pg_bin", "up", "down", "status", "url"]

DB_NAME = "geogrid"


def pg_bin(name: str) -> str:
    """Path of a PostgreSQL server binary (initdb, pg_ctl) of the newest installed major."""
    found = shutil.which(name)
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    if found:
        return found
    raise DatabaseUnavailable(
        f"{name} not found: install PostgreSQL and PostGIS "
        "(apt-get install -y postgresql-15-postgis-3) or set GEOGRID_DATABASE_URL"
    )


def _as_owner(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def url(settings: Settings | None = None) -> str:
    """SQLAlchemy URL of the embedded cluster's database."""
    s = settings or get_settings()
    return f"postgresql+psycopg://postgres@127.0.0.1:{s.pg_port}/{DB_NAME}"


def status(settings: Settings | None = None) -> dict:
    """Whether the embedded cluster exists and runs."""
    s = settings or get_settings()
    data = s.pg_data
    info = {"data": str(data), "port": s.pg_port, "initialised": (data / "PG_VERSION").exists()}
    if not info["initialised"]:
        info["running"] = False
        return info
    res = subprocess.run(
        _as_owner([pg_bin("pg_ctl"), "-D", str(data), "status"]), capture_output=True, text=True
    )
    info["running"] = res.returncode == 0
    return info


def up(settings: Settings | None = None) -> str:
    """Initialise (once) and start the embedded cluster; create the database. Returns its URL."""
    s = settings or get_settings()
    data = s.pg_data
    data.parent.mkdir(parents=True, exist_ok=True)
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
            # the server user must be able to reach the data folder
            for p in [data.parent, *data.parent.parents]:
                if p == Path("/"):
                    break
                os.chmod(p, os.stat(p).st_mode | 0o011)
        _run(
            _as_owner(
                [
                    pg_bin("initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            "initdb",
        )
        with open(data / "postgresql.conf", "a") as f:
            f.write(
                "\n# geogrid embedded defaults\nlisten_addresses = '127.0.0.1'\n"
                f"port = {s.pg_port}\nunix_socket_directories = '{data}'\n"
                "shared_buffers = 512MB\nwork_mem = 64MB\nmaintenance_work_mem = 512MB\n"
                "max_wal_size = 4GB\nsynchronous_commit = off\n"
            )
    if not status(s)["running"]:
        _run(
            _as_owner(
                [
                    pg_bin("pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(data / "server.log"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            "pg_ctl start",
        )
    _ensure_database(s)
    return url(s)


def down(settings: Settings | None = None) -> None:
    """Stop the embedded cluster (fast shutdown)."""
    s = settings or get_settings()
    if status(s)["running"]:
        _run(
            _as_owner([pg_bin("pg_ctl"), "-D", str(s.pg_data), "-m", "fast", "-w", "stop"]),
            "pg_ctl stop",
        )


def _ensure_database(s: Settings) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{s.pg_port}/postgres"
    for _ in range(50):
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)
                ).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{DB_NAME}"')
            return
        except psycopg.OperationalError:
            time.sleep(0.2)
    raise DatabaseUnavailable(f"embedded PostgreSQL on port {s.pg_port} does not answer")


def _run(cmd: list[str], what: str) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise DatabaseUnavailable(f"{what} failed: {res.stderr.strip() or res.stdout.strip()}")
