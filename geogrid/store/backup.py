"""PostgreSQL's own dump and restore (``pg_dump``/``pg_restore``, custom format) of a
database, and the SQL a restore needs: is the database empty, every table's row count,
clearing its contents.

The client programs match the server's major version (``/usr/lib/postgresql/<major>/bin``
when installed, else the newest found). The connection (host, port, user, database,
password) is passed in ``PG*`` environment variables of the child process, never on its
command line, so the password does not show in ``ps``.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from geogrid.errors import DatabaseUnavailable

__all__ = [
    "client_bin",
    "clear_contents",
    "dump",
    "unpooled_engine",
    "restore",
    "server_major",
    "table_counts",
    "user_relations",
]

#: relations of the database's own (not of an extension such as PostGIS' spatial_ref_sys)
_USER_RELATIONS = """
SELECT n.nspname || '.' || c.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  AND NOT EXISTS (
      SELECT 1 FROM pg_depend d
      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1
"""

_USER_SCHEMAS = """
SELECT nspname FROM pg_namespace
WHERE nspname NOT IN ('pg_catalog', 'information_schema')
  AND nspname NOT LIKE 'pg\\_%'
ORDER BY 1
"""


def unpooled_engine(url: str) -> Engine:
    """An engine without a pool (a restore drops schemas: no connection may linger);
    dispose it after use."""
    return create_engine(url, poolclass=NullPool)


def server_major(conn: Connection) -> int:
    """Major version of the server (e.g. 15)."""
    return int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10000


def client_bin(name: str, major: int) -> str:
    """Path of ``pg_dump``/``pg_restore`` for a server of ``major``: that major's when
    installed, else the newest installed (a newer client reads older servers), else the
    one on ``PATH``."""
    exact = Path(f"/usr/lib/postgresql/{major}/bin/{name}")
    if exact.exists():
        return str(exact)
    newest = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
        reverse=True,
    )
    if newest:
        return newest[0]
    found = shutil.which(name)
    if found:
        return found
    raise DatabaseUnavailable(
        f"{name} not found: install the PostgreSQL {major} client (apt-get install -y "
        f"postgresql-client-{major})"
    )


def _pg_env(url: str) -> dict[str, str]:
    """The child's environment: ``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD``,
    ``PGDATABASE`` (and ``PGSSLMODE``) of a SQLAlchemy/libpq URL."""
    u = make_url(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, value in (
        ("PGHOST", u.host),
        ("PGPORT", u.port),
        ("PGUSER", u.username),
        ("PGPASSWORD", u.password),
        ("PGDATABASE", u.database),
        ("PGSSLMODE", u.query.get("sslmode")),
    ):
        if value is not None:
            env[key] = str(value)
    return env


def _run(cmd: list[str], url: str, what: str) -> None:
    res = subprocess.run(cmd, env=_pg_env(url), capture_output=True, text=True)
    if res.returncode != 0:
        detail = (res.stderr.strip() or res.stdout.strip()).splitlines()
        raise DatabaseUnavailable(f"{what} failed: {' | '.join(detail[:5])}")


def dump(url: str, path: Path, major: int) -> None:
    """``pg_dump`` the database of ``url`` to ``path`` (custom format, compressed)."""
    _run(
        [client_bin("pg_dump", major), "--format=custom", "--no-password", "--file", str(path)],
        url,
        "pg_dump",
    )


def restore(url: str, path: Path, major: int) -> None:
    """``pg_restore`` ``path`` into the database of ``url``: one transaction (all or
    nothing), stopping at the first error; objects owned by the connecting user."""
    _run(
        [
            client_bin("pg_restore", major),
            "--no-password",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            "--dbname",
            make_url(url).database or "",
            str(path),
        ],
        url,
        "pg_restore",
    )


def user_relations(conn: Connection) -> list[str]:
    """Tables, views and sequences (``schema.name``) of the database's own, i.e. not
    members of an extension; empty for a new database with or without PostGIS."""
    return [r[0] for r in conn.execute(text(_USER_RELATIONS))]


def table_counts(conn: Connection) -> dict[str, int]:
    """Row count of every ordinary table of the database's own (``schema.name`` → rows)."""
    names = conn.execute(
        text(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), "
            "n.nspname || '.' || c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg\\_%' AND NOT EXISTS (SELECT 1 FROM pg_depend d "
            "WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e') "
            "ORDER BY 2"
        )
    ).all()
    return {
        name: int(conn.execute(text(f"SELECT count(*) FROM {quoted}")).scalar_one())
        for quoted, name in names
    }


def clear_contents(conn: Connection) -> None:
    """Drop every schema but the system's (with what is in them, extensions included)
    and make an empty ``public`` schema, as in a new database."""
    for (schema,) in conn.execute(text(_USER_SCHEMAS)).all():
        conn.execute(text(f'DROP SCHEMA "{schema.replace(chr(34), chr(34) * 2)}" CASCADE'))
    conn.execute(text("CREATE SCHEMA public AUTHORIZATION pg_database_owner"))
    conn.execute(text("GRANT USAGE ON SCHEMA public TO PUBLIC"))
