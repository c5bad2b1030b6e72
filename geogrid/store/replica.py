"""A streaming read replica: its engine, its position in the primary's WAL, and a local
standby made with ``pg_basebackup -R`` (tests, a laptop's try-out).

Positions are WAL LSNs as integers (bytes since ``0/0``): the primary's
``pg_current_wal_lsn()`` after a write, the replica's ``pg_last_wal_replay_lsn()``. A
replica whose replay LSN is at least the LSN read on the primary after a commit shows that
commit (replay is in WAL order and a standby's snapshot sees every replayed commit).

SQL only; the routing (which engine a read uses) is :mod:`geogrid.services.replica`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.engine import Engine, make_url

from geogrid.errors import DatabaseUnavailable
from geogrid.store import cluster
from geogrid.store.engine import get_engine

__all__ = [
    "ReplicaPosition",
    "make_standby",
    "pg_ctl",
    "primary_lsn",
    "replay_lsn",
    "replica_engine",
    "replica_position",
]

#: ``application_name`` of the service's connections to the replica (``pg_stat_activity``)
APPLICATION_NAME = "geogrid-replica"
#: seconds a connection attempt to the replica may take before it counts as down
CONNECT_TIMEOUT_S = 2
#: milliseconds the replica's position query may take
PROBE_TIMEOUT_MS = 1000


def replica_engine(url: str) -> Engine:
    """The pooled engine of the replica at ``url``: a short connect timeout (a replica that
    does not answer must not hold a request for libpq's default of forever) and
    ``application_name`` :data:`APPLICATION_NAME`, unless the URL sets them."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    q = dict(u.query)
    q.setdefault("connect_timeout", str(CONNECT_TIMEOUT_S))
    q.setdefault("application_name", APPLICATION_NAME)
    return get_engine(u.set(query=q).render_as_string(hide_password=False))


def primary_lsn(conn: Connection) -> int:
    """The primary's current WAL insert position: every commit visible to this connection
    ends at or before it. The *insert* position, not ``pg_current_wal_lsn()`` (the write
    position): with ``synchronous_commit = off`` (the embedded cluster's setting) a commit
    is visible before its record is written, so the write position can be short of it."""
    sql = "SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn"
    return int(conn.execute(text(sql)).scalar_one())


@dataclass(frozen=True)
class ReplicaPosition:
    """Where a replica stands: ``in_recovery`` (False: not a standby, e.g. promoted),
    ``replay_lsn`` (None when not a standby), ``paused`` (replay paused) and
    ``replay_age_s``: seconds since the last transaction it replayed was committed on the
    primary (None before any)."""

    in_recovery: bool
    replay_lsn: int | None
    paused: bool
    replay_age_s: float | None


def replica_position(conn: Connection) -> ReplicaPosition:
    """The replica's position, in one statement under :data:`PROBE_TIMEOUT_MS`."""
    with conn.begin():
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {PROBE_TIMEOUT_MS}")
        row = conn.execute(
            text(
                "SELECT pg_is_in_recovery() AS rec, "
                "pg_last_wal_replay_lsn() - '0/0'::pg_lsn AS lsn, "
                "CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() <> "
                "'not paused' ELSE false END AS paused, "
                "extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) AS age"
            )
        ).one()
    return ReplicaPosition(
        in_recovery=bool(row.rec),
        replay_lsn=None if row.lsn is None else int(row.lsn),
        paused=bool(row.paused),
        replay_age_s=None if row.age is None else float(row.age),
    )


def replay_lsn(conn: Connection) -> int | None:
    """Just the replica's replay LSN (the cheap re-check of a read that needs a position)."""
    v = conn.execute(text("SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn")).scalar_one()
    return None if v is None else int(v)


def make_standby(
    primary_port: int,
    password: str | None,
    data: Path,
    port: int,
    *,
    user: str = "postgres",
    sync: bool = True,
) -> None:
    """A hot standby of the server on ``127.0.0.1:primary_port`` in ``data``, listening on
    ``port``: ``pg_basebackup -R`` (streams the base backup with its WAL and writes
    ``standby.signal`` and ``primary_conninfo``), then ``pg_ctl start``. As root, the files
    and the server belong to ``postgres`` (as for the embedded cluster,
    :mod:`geogrid.store.cluster`). The primary must allow replication connections from
    127.0.0.1 (``initdb``'s default ``pg_hba.conf`` does) and have ``wal_level`` replica
    (the default). ``sync=False`` makes a throw-away standby (tests): no fsync of the
    backup nor by the server (``fsync = off``, which also spares the start's sync of the
    whole data folder).

    Raises
    ------
    DatabaseUnavailable
        When the backup or the start fails (the message is the tool's).
    """
    data.mkdir(parents=True, exist_ok=True)
    os.chmod(data, 0o700)
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
        for p in [data.parent, *data.parent.parents]:
            if p == Path("/"):
                break
            os.chmod(p, os.stat(p).st_mode | 0o011)
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = password  # the environment, never the command line
    cmd = [
        cluster.pg_bin("pg_basebackup"),
        "-h",
        "127.0.0.1",
        "-p",
        str(primary_port),
        "-U",
        user,
        "-D",
        str(data),
        "-R",
        "-X",
        "stream",
        "-c",
        "fast",
        *([] if sync else ["--no-sync"]),
    ]
    _run(cluster._as_owner(cmd), "pg_basebackup", env)
    with open(data / "postgresql.conf", "a") as f:
        # later lines win: the standby's own port and socket folder
        f.write(
            f"\n# geogrid standby\nport = {port}\nunix_socket_directories = '{data}'\n"
            "hot_standby = on\nhot_standby_feedback = on\n" + ("" if sync else "fsync = off\n")
        )
    pg_ctl(data, "start")


def pg_ctl(data: Path, action: str, *args: str) -> None:
    """``pg_ctl`` ``action`` (start, stop, restart, …) on the cluster in ``data``, waiting
    for it (as ``postgres`` when root). ``start`` logs to ``data/server.log``."""
    cmd = [cluster.pg_bin("pg_ctl"), "-D", str(data), "-w", "-t", "60", *args, action]
    if action in ("start", "restart"):
        cmd[3:3] = ["-l", str(data / "server.log")]
    _run(cluster._as_owner(cmd), f"pg_ctl {action}", dict(os.environ))


def _run(cmd: list[str], what: str, env: dict[str, str]) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise DatabaseUnavailable(f"{what} failed: {res.stderr.strip() or res.stdout.strip()}")
