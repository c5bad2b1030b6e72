"""The embedded PostgreSQL + PostGIS cluster used when ``GEOGRID_DATABASE_URL`` is unset.

It is an ordinary cluster made with the system's ``initdb``/``pg_ctl`` (PostgreSQL 15 and
the ``postgresql-15-postgis-3`` package) in ``$GEOGRID_HOME/pg``, listening on 127.0.0.1 at
``GEOGRID_PG_PORT``. When running as root the server runs as the ``postgres`` user, as
PostgreSQL refuses to run as root.

Authentication: every connection, local socket or TCP, needs the superuser's password
(``scram-sha-256``). The password is generated when the cluster is created and kept in
``$GEOGRID_HOME/pg-secret`` (mode 0600, owned by the user running geogrid); :func:`url`
reads it, so the app's URL carries it. It is never printed or logged (show URLs with
:func:`redacted`).

Upgrade: a cluster created by an older geogrid with ``trust`` authentication is upgraded by
the next ``geogrid db up``: a password is generated and set once (as a SCRAM verifier, so
the plain secret never reaches the server or its logs), then ``pg_hba.conf``'s ``trust``
lines become ``scram-sha-256`` and the server reloads its configuration.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import hmac
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url

from geogrid.errors import DatabaseUnavailable
from geogrid.settings import Settings, get_settings

__all__ = [
    "SECRET_FILE",
    "pg_bin",
    "up",
    "down",
    "status",
    "url",
    "redacted",
    "secret_path",
    "scram_verifier",
]

DB_NAME = "geogrid"
#: name of the file (in ``$GEOGRID_HOME``) holding the superuser's password
SECRET_FILE = "pg-secret"
_SUPERUSER = "postgres"
_SCRAM = "scram-sha-256"


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


def secret_path(settings: Settings | None = None) -> Path:
    """Where the superuser's password is kept: ``$GEOGRID_HOME/pg-secret`` (mode 0600)."""
    return (settings or get_settings()).home / SECRET_FILE


def _read_secret(s: Settings) -> str | None:
    p = secret_path(s)
    return p.read_text(encoding="ascii").strip() if p.exists() else None


def _new_secret(s: Settings) -> str:
    """Generate the password and write it 0600 (created with that mode: never readable by
    others, not even for a moment)."""
    secret = secrets.token_urlsafe(32)  # URL-safe: it goes into the URL as is
    p = secret_path(s)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secret + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, p)
    return secret


def url(settings: Settings | None = None) -> str:
    """SQLAlchemy URL of the embedded cluster's database, with the password of
    ``pg-secret`` (none before the cluster exists). Show it with :func:`redacted`."""
    s = settings or get_settings()
    secret = _read_secret(s)
    auth = f"{_SUPERUSER}:{secret}" if secret else _SUPERUSER
    return f"postgresql+psycopg://{auth}@127.0.0.1:{s.pg_port}/{DB_NAME}"


def redacted(database_url: str) -> str:
    """A URL fit for printing: its password replaced by ``***``.

    >>> redacted("postgresql+psycopg://postgres:s3cret@127.0.0.1:5432/geogrid")
    'postgresql+psycopg://postgres:***@127.0.0.1:5432/geogrid'
    """
    return make_url(database_url).render_as_string(hide_password=True)


def scram_verifier(password: str, *, iterations: int = 4096, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677).

    ``ALTER ROLE ... PASSWORD '<verifier>'`` sets the password without sending it.

    >>> scram_verifier("x", salt=b"0123456789abcdef").startswith("SCRAM-SHA-256$4096:")
    True
    """
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


def status(settings: Settings | None = None) -> dict[str, Any]:
    """Whether the embedded cluster exists and runs."""
    s = settings or get_settings()
    data = s.pg_data
    info: dict[str, Any] = {
        "data": str(data),
        "port": s.pg_port,
        "initialised": (data / "PG_VERSION").exists(),
    }
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
        _initdb(s, _new_secret(s))
        with open(data / "postgresql.conf", "a") as f:
            f.write(
                "\n# geogrid embedded defaults\nlisten_addresses = '127.0.0.1'\n"
                f"port = {s.pg_port}\nunix_socket_directories = '{data}'\n"
                "shared_buffers = 512MB\nwork_mem = 64MB\nmaintenance_work_mem = 512MB\n"
                "max_wal_size = 4GB\nsynchronous_commit = off\n"
            )
    if not status(s)["running"]:
        _start(s)
    _upgrade_trust(s)
    _ensure_database(s)
    return url(s)


def _initdb(s: Settings, secret: str) -> None:
    """``initdb`` with password authentication for every connection; the superuser's
    password comes from a temporary file readable by the server's user only."""
    data = s.pg_data
    fd, pwfile = tempfile.mkstemp(prefix=".pw-", dir=data.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secret + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        _run(
            _as_owner(
                [
                    pg_bin("initdb"),
                    "-D",
                    str(data),
                    "-U",
                    _SUPERUSER,
                    f"--auth-local={_SCRAM}",
                    f"--auth-host={_SCRAM}",
                    f"--pwfile={pwfile}",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            "initdb",
        )
    finally:
        os.unlink(pwfile)


def _start(s: Settings) -> None:
    data = s.pg_data
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


_TRUST_LINE = re.compile(r"^(\s*(?:local|host\S*)\s.*\s)trust(\s*(?:#.*)?)$")


def _upgrade_trust(s: Settings) -> None:
    """A cluster made with ``trust`` (older geogrid): set a password once, then require it.

    The password is set as a SCRAM verifier while ``trust`` still lets us in; then the
    ``trust`` lines of ``pg_hba.conf`` become ``scram-sha-256`` and the server reloads.
    """
    hba = s.pg_data / "pg_hba.conf"  # root may read and write it; the owner stays
    lines = hba.read_text().splitlines()
    if not any(_TRUST_LINE.match(line) for line in lines):
        return
    secret = _read_secret(s) or _new_secret(s)
    dsn = _dsn(s, "postgres", password=None)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(_SUPERUSER), sql.Literal(scram_verifier(secret))
            )
        )
    new = "\n".join(_TRUST_LINE.sub(rf"\g<1>{_SCRAM}\g<2>", line) for line in lines) + "\n"
    hba.write_text(new)
    _run(_as_owner([pg_bin("pg_ctl"), "-D", str(s.pg_data), "reload"]), "pg_ctl reload")
    time.sleep(0.5)  # the postmaster re-reads pg_hba.conf asynchronously


def _dsn(s: Settings, dbname: str, *, password: str | None) -> str:
    """libpq connection string (the password, when given, as a keyword: never in a URL)."""
    params: dict[str, str | int] = {
        "host": "127.0.0.1",
        "port": s.pg_port,
        "user": _SUPERUSER,
        "dbname": dbname,
    }
    if password:
        params["password"] = password
    return make_conninfo("", **params)


def down(settings: Settings | None = None) -> None:
    """Stop the embedded cluster (fast shutdown)."""
    s = settings or get_settings()
    if status(s)["running"]:
        _run(
            _as_owner([pg_bin("pg_ctl"), "-D", str(s.pg_data), "-m", "fast", "-w", "stop"]),
            "pg_ctl stop",
        )


def _ensure_database(s: Settings) -> None:
    dsn = _dsn(s, "postgres", password=_read_secret(s))
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
