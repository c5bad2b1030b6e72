"""The ``geogrid db`` commands: the embedded cluster, migrations, keys, backups, the
incident table's monthly partitions (issue 12: list, archive, restore a month)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geogrid.cli._common import (
    console,
    current_engine,
    current_settings,
    fail,
)
from geogrid.errors import GeogridError
from geogrid.services import backup as backups
from geogrid.services import database, idempotency, partitions

db_app = typer.Typer(help="The database: embedded cluster and migrations.", no_args_is_help=True)


@db_app.command("up")
def db_up() -> None:
    """Start the embedded PostgreSQL + PostGIS cluster (initialised on first use)."""
    try:
        url = database.cluster_up(current_settings())
    except GeogridError as exc:
        fail(exc)
    console.print(f"embedded database running: {database.redacted(url)}")


@db_app.command("down")
def db_down() -> None:
    """Stop the embedded cluster."""
    database.cluster_down(current_settings())
    console.print("embedded database stopped")


@db_app.command("status")
def db_status() -> None:
    """Show the database in use and whether it answers."""
    info = database.cluster_status(current_settings())
    if "url" in info:
        console.print(f"GEOGRID_DATABASE_URL={info['url']}")
    else:
        console.print(info)


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the Alembic migrations (idempotent)."""
    try:
        database.migrate(current_settings().database_url)
    except GeogridError as exc:
        fail(exc)
    console.print("schema up to date")


@db_app.command("prune-keys")
def db_prune_keys(
    days: Annotated[
        int | None,
        typer.Option("--days", help="forget keys older than this (default: the setting)"),
    ] = None,
) -> None:
    """Forget Idempotency-Keys older than GEOGRID_IDEMPOTENCY_TTL_DAYS (30 days)."""
    settings = current_settings()
    try:
        n = idempotency.prune(current_engine(), days or settings.idempotency_ttl_days)
    except GeogridError as exc:
        fail(exc)
    console.print(f"forgot {n} idempotency keys")


UrlOpt = Annotated[
    str | None,
    typer.Option("--url", help="the database (default: GEOGRID_DATABASE_URL or the embedded one)"),
]


@db_app.command("backup")
def db_backup(
    path: Annotated[Path, typer.Argument(help="a new (or empty) folder for the backup")],
    url: UrlOpt = None,
) -> None:
    """Back up the database (pg_dump, custom format) and the media folder into PATH."""
    try:
        rep = backups.backup(path, url or current_settings().database_url, current_settings())
    except GeogridError as exc:
        fail(exc)
    console.print(
        f"backed up {rep.database} to {rep.path}: {len(rep.tables)} tables, "
        f"{sum(rep.tables.values()):,} rows, {rep.dump_bytes / 1e6:.1f} MB, "
        f"{rep.media_files} media file(s)"
    )


@db_app.command("restore")
def db_restore(
    path: Annotated[Path, typer.Argument(help="a folder made by 'geogrid db backup'")],
    url: UrlOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="replace a database that is not empty")
    ] = False,
) -> None:
    """Restore a backup into an empty database (all or nothing; --force replaces one)."""
    try:
        rep = backups.restore(
            path, url or current_settings().database_url, force=force, settings=current_settings()
        )
    except GeogridError as exc:
        fail(exc)
    console.print(
        f"restored {rep.path} into {rep.database}: {len(rep.tables)} tables, "
        f"{sum(rep.tables.values()):,} rows (as in the backup), {rep.media_files} media file(s)"
    )


# --------------------------------------------------------------- issue 12: partitions
@db_app.command("partitions")
def db_partitions(
    ahead: Annotated[
        bool,
        typer.Option("--make-ahead", help="first make this month and the next ones"),
    ] = False,
) -> None:
    """List the monthly partitions of the incident table."""
    engine = current_engine()
    try:
        if ahead:
            made = partitions.maintain(engine)
            console.print(f"made {len(made)} partition(s): {', '.join(made) or '-'}")
        for p in partitions.partition_list(engine):
            span = "DEFAULT" if p["start"] is None else f"{p['start']} … {p['end']}"
            console.print(f"{p['name']:24s} {span}")
    except GeogridError as exc:
        fail(exc)


@db_app.command("archive")
def db_archive(
    before: Annotated[
        str, typer.Option("--before", help="archive the months before this one (YYYY-MM)")
    ],
    to: Annotated[Path, typer.Option("--to", help="the folder of the archive files")] = Path(
        "archive"
    ),
) -> None:
    """Detach the incident months before --before, write each to GeoParquet and drop it
    (one transaction per month; the incidents' ids, events and notes stay)."""
    try:
        rep = partitions.archive_before(current_engine(), before, to)
    except GeogridError as exc:
        fail(exc)
    for name, path in rep.files.items():
        console.print(f"{name} → {path}")
    console.print(f"archived {len(rep.files)} month(s), {rep.rows:,} incidents")


@db_app.command("restore-month")
def db_restore_month(
    path: Annotated[Path, typer.Argument(help="a file written by 'geogrid db archive'")],
) -> None:
    """Load an archived incident month back and attach it (its row count and checksum are
    checked against the file's)."""
    try:
        rep = partitions.restore_month(current_engine(), path)
    except GeogridError as exc:
        fail(exc)
    console.print(f"restored {', '.join(rep.files)}: {rep.rows:,} incidents")
