"""Backups that restore: the database (``pg_dump`` custom format) and the media folder.

A backup is a folder::

    PATH/
      geogrid.dump     pg_dump --format=custom of the whole database (schema, data,
                       the PostGIS extension, Alembic's version)
      manifest.json    when, from which server version, every table's row count
      media/           a copy of $GEOGRID_HOME/media (photos), when it exists

:func:`restore` loads it into an EMPTY database: a new database (``createdb``), with or
without the PostGIS extension, no migrations needed, as the dump carries the schema and
``alembic_version``. The server must have PostGIS installed, and the restoring user must
be allowed to create the extension when the database does not have it yet. A database that
has tables of its own is refused unless ``force``; then its contents (every schema but the
system's) are dropped first. The restore is one transaction (all or nothing) and its row
counts are checked against the manifest.

Without a URL both work on the database in use: ``GEOGRID_DATABASE_URL`` or the embedded
cluster (started when needed; its password comes from ``$GEOGRID_HOME/pg-secret``).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from geogrid.errors import Conflict, DatabaseUnavailable, FileInputError
from geogrid.settings import Settings, get_settings
from geogrid.store import backup as store
from geogrid.store import cluster
from geogrid.store.engine import database_url

__all__ = ["DUMP_FILE", "MANIFEST_FILE", "MEDIA_DIR", "BackupReport", "backup", "restore"]

#: the database dump inside a backup folder
DUMP_FILE = "geogrid.dump"
#: what the backup holds (JSON)
MANIFEST_FILE = "manifest.json"
#: the media folder, in ``$GEOGRID_HOME`` and in a backup
MEDIA_DIR = "media"


@dataclass
class BackupReport:
    """What a backup or a restore did.

    Attributes
    ----------
    path : the backup folder
    database : the database's URL, password hidden
    tables : row count of every table (``schema.name`` → rows)
    media_files : files of the media folder copied (0 without one)
    dump_bytes : size of the dump file (bytes)
    """

    path: str
    database: str
    tables: dict[str, int] = field(default_factory=dict)
    media_files: int = 0
    dump_bytes: int = 0


def _copy_media(src: Path, dst: Path) -> int:
    if not src.is_dir():
        return 0
    shutil.copytree(src, dst, dirs_exist_ok=False)
    return sum(1 for p in dst.rglob("*") if p.is_file())


def backup(
    path: str | Path, url: str | None = None, settings: Settings | None = None
) -> BackupReport:
    """Back up the database and the media folder into the new folder ``path``.

    Parameters
    ----------
    path : a folder that does not exist yet, or is empty
    url : the database (default: ``GEOGRID_DATABASE_URL`` or the embedded cluster)
    settings : where ``$GEOGRID_HOME`` is (the media folder)

    Raises
    ------
    Conflict : ``path`` exists and is not an empty folder.
    DatabaseUnavailable : the database cannot be reached, or ``pg_dump`` failed.
    """
    s = settings or get_settings()
    out = Path(path)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Conflict(f"{out} exists and is not an empty folder: choose a new backup folder")
    resolved = database_url(url)
    engine = store.unpooled_engine(resolved)
    try:
        with engine.connect() as conn:
            major = store.server_major(conn)
            counts = store.table_counts(conn)
    finally:
        engine.dispose()
    out.mkdir(parents=True, exist_ok=True)
    dump_file = out / DUMP_FILE
    store.dump(resolved, dump_file, major)
    media = _copy_media(s.home / MEDIA_DIR, out / MEDIA_DIR)
    manifest = {
        "created_at": datetime.now(UTC).isoformat(),
        "format": "pg_dump custom",
        "server_major": major,
        "tables": counts,
        "media_files": media,
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return BackupReport(
        path=str(out),
        database=cluster.redacted(resolved),
        tables=counts,
        media_files=media,
        dump_bytes=dump_file.stat().st_size,
    )


def restore(
    path: str | Path,
    url: str | None = None,
    *,
    force: bool = False,
    settings: Settings | None = None,
) -> BackupReport:
    """Restore a backup folder (:func:`backup`) into an empty database.

    Parameters
    ----------
    path : the backup folder
    url : the database (default: ``GEOGRID_DATABASE_URL`` or the embedded cluster); it
        must exist
    force : replace a database that is not empty (its schemas are dropped first) and the
        media folder's contents
    settings : where ``$GEOGRID_HOME`` is (the media folder)

    Raises
    ------
    FileInputError : ``path`` is not a backup folder.
    Conflict : the database (or the media folder) is not empty and ``force`` is False.
    DatabaseUnavailable : the database cannot be reached, ``pg_restore`` failed (nothing
        was restored), or the restored row counts differ from the manifest.
    """
    s = settings or get_settings()
    src = Path(path)
    dump_file = src / DUMP_FILE
    if not dump_file.is_file():
        raise FileInputError(str(src), f"not a geogrid backup folder (no {DUMP_FILE})")
    manifest = (
        json.loads((src / MANIFEST_FILE).read_text()) if (src / MANIFEST_FILE).exists() else {}
    )
    media_dst = s.home / MEDIA_DIR
    has_media = (src / MEDIA_DIR).is_dir()
    if has_media and media_dst.is_dir() and any(media_dst.iterdir()) and not force:
        raise Conflict(
            f"the media folder {media_dst} is not empty: restore with --force to replace it"
        )
    resolved = database_url(url)
    shown = cluster.redacted(resolved)
    engine = store.unpooled_engine(resolved)
    try:
        with engine.begin() as conn:
            major = store.server_major(conn)
            existing = store.user_relations(conn)
            if existing and not force:
                listed = ", ".join(existing[:5]) + (" …" if len(existing) > 5 else "")
                raise Conflict(
                    f"the database {shown} is not empty ({len(existing)} tables, views or "
                    f"sequences: {listed}): restore into a new database, or use --force "
                    "to replace its contents"
                )
            if existing:
                store.clear_contents(conn)
        store.restore(resolved, dump_file, major)
        with engine.connect() as conn:
            counts = store.table_counts(conn)
    finally:
        engine.dispose()
    expected = manifest.get("tables")
    if expected is not None and expected != counts:
        diff = sorted(k for k in set(expected) | set(counts) if expected.get(k) != counts.get(k))
        raise DatabaseUnavailable(
            f"restored {shown} but the row counts differ from the backup's manifest: "
            + ", ".join(f"{k} {expected.get(k)} → {counts.get(k)}" for k in diff)
        )
    media = 0
    if has_media:
        if media_dst.exists():
            shutil.rmtree(media_dst)
        media = _copy_media(src / MEDIA_DIR, media_dst)
    return BackupReport(
        path=str(src),
        database=shown,
        tables=counts,
        media_files=media,
        dump_bytes=dump_file.stat().st_size,
    )
