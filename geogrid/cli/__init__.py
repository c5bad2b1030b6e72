"""The ``geogrid`` command line (typer + rich).

Each command parses its options, calls one service function, and prints the result.
Errors from geogrid are printed as one clear message (file, row and field for files) and
exit with status 2; ``boundaries validate`` exits 1 when it has findings.

The city (name, time zone, metric CRS, map view) comes from the settings:
``GEOGRID_CITY_FILE`` (see :mod:`geogrid.settings`); ``geogrid serve --city FILE`` sets it
for the server.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from sqlalchemy import Engine

from geogrid.cli import analytics, audit, plan, reference, users
from geogrid.cli import incidents as incidents_commands
from geogrid.cli._output import FORMATS, FormatOpt, print_rows
from geogrid.cli.notify import notify_app  # issue 13 (TERM-C)
from geogrid.cli.register import register_app  # issue 13 (TERM-B)
from geogrid.cli.registry import registry_app  # issue 15
from geogrid.cli.registry_read import register as add_registry_reads  # issue 15
from geogrid.cli.scale import scale_app  # issue 12
from geogrid.cli.terminals import terminals_app  # issue 13
from geogrid.cli.workers import review_cmd, workers_app  # issue 14
from geogrid.core.validation import Finding, findings_geojson
from geogrid.errors import FileInputError, GeogridError, InvalidInput, TopologyError
from geogrid.services import backup as backups
from geogrid.services import boundaries, database, idempotency
from geogrid.services.city import install_categories, profile_for
from geogrid.services.demo import DEMO_CITY_FILE, DEMO_REGISTRY_RECORDS, load_demo
from geogrid.services.lookup import locate
from geogrid.settings import CityFileError, Settings, get_settings, load_city

app = typer.Typer(
    help="geogrid: grid-management boundaries, incidents and analytics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database: embedded cluster and migrations.", no_args_is_help=True)
boundaries_app = typer.Typer(
    help="Boundary layers: import, validate, export, versions.", no_args_is_help=True
)
demo_app = typer.Typer(
    help="The demo city (a synthetic hierarchy on real county outlines).", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(boundaries_app, name="boundaries")
app.add_typer(demo_app, name="demo")
city_app = typer.Typer(
    help="The city served (GEOGRID_CITY_FILE): its profile and category catalogue.",
    no_args_is_help=True,
)
app.add_typer(city_app, name="city")
app.add_typer(scale_app, name="scale")  # issue 12: GeoParquet history and Dask
app.add_typer(terminals_app, name="terminals")  # issue 13: the workers' devices
app.add_typer(notify_app, name="notify")  # issue 13: notifications
app.add_typer(registry_app, name="registry")  # issue 15: the base-information registry
add_registry_reads(registry_app)  # issue 15: registry search, care, aggregates
app.add_typer(register_app, name="register")  # issue 13: the monthly register's exports
app.add_typer(workers_app, name="workers")  # issue 14: the worker's file
app.command("review")(review_cmd)  # issue 14: the year-end review

console = Console()
err = Console(stderr=True, soft_wrap=True)

LevelOpt = Annotated[str, typer.Option("--level", "-l", help="district, street, community or grid")]


def _fail(exc: GeogridError, code: int = 2) -> None:
    """Print the error and exit with ``code``."""
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(code)


def _aware(when: datetime | None) -> datetime | None:
    """Naive date-times from the command line are UTC."""
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when


def _settings() -> Settings:
    """The settings of this command (read once per command); a bad city file is an error."""
    try:
        return get_settings()
    except CityFileError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc


def _engine() -> Engine:
    return database.get_engine(_settings().database_url)


# ----------------------------------------------------------------------------- db
@db_app.command("up")
def db_up() -> None:
    """Start the embedded PostgreSQL + PostGIS cluster (initialised on first use)."""
    try:
        url = database.cluster_up(_settings())
    except GeogridError as exc:
        _fail(exc)
    console.print(f"embedded database running: {database.redacted(url)}")


@db_app.command("down")
def db_down() -> None:
    """Stop the embedded cluster."""
    database.cluster_down(_settings())
    console.print("embedded database stopped")


@db_app.command("status")
def db_status() -> None:
    """Show the database in use and whether it answers."""
    info = database.cluster_status(_settings())
    if "url" in info:
        console.print(f"GEOGRID_DATABASE_URL={info['url']}")
    else:
        console.print(info)


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the Alembic migrations (idempotent)."""
    try:
        database.migrate(_settings().database_url)
    except GeogridError as exc:
        _fail(exc)
    console.print("schema up to date")


@db_app.command("prune-keys")
def db_prune_keys(
    days: Annotated[
        int | None,
        typer.Option("--days", help="forget keys older than this (default: the setting)"),
    ] = None,
) -> None:
    """Forget Idempotency-Keys older than GEOGRID_IDEMPOTENCY_TTL_DAYS (30 days)."""
    settings = _settings()
    try:
        n = idempotency.prune(_engine(), days or settings.idempotency_ttl_days)
    except GeogridError as exc:
        _fail(exc)
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
        rep = backups.backup(path, url or _settings().database_url, _settings())
    except GeogridError as exc:
        _fail(exc)
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
            path, url or _settings().database_url, force=force, settings=_settings()
        )
    except GeogridError as exc:
        _fail(exc)
    console.print(
        f"restored {rep.path} into {rep.database}: {len(rep.tables)} tables, "
        f"{sum(rep.tables.values()):,} rows (as in the backup), {rep.media_files} media file(s)"
    )


# ----------------------------------------------------------------------------- boundaries
def _print_findings(findings: list[Finding], fmt: str) -> None:
    if fmt == "geojson":
        sys.stdout.write(json.dumps(findings_geojson(findings), ensure_ascii=False) + "\n")
        return
    if not findings and fmt == "table":
        console.print("[green]no findings[/]")
        return
    rows = []
    for f in findings:
        c = f.location.centroid if f.location is not None and not f.location.is_empty else None
        rows.append(
            {
                "kind": f.kind,
                "level": f.level or "",
                "codes": list(f.codes),
                "area_m2": round(f.area_m2, 1),
                "where": f"{c.x:.6f}, {c.y:.6f}" if c is not None else "",
                "message": f.message,
            }
        )
    columns = ["kind", "level", "codes", "area_m2", "where", "message"]
    print_rows(rows, fmt, columns=columns, title=f"{len(findings)} finding(s)", console=console)


@boundaries_app.command("import")
def boundaries_import(
    path: Path,
    level: LevelOpt,
    code_field: Annotated[str | None, typer.Option(help="field holding the unit code")] = None,
    name_field: Annotated[str | None, typer.Option(help="field holding the name")] = None,
    parent_field: Annotated[
        str | None,
        typer.Option(
            help="field holding the parent's code; without it parents are matched by containment"
        ),
    ] = None,
    crs: Annotated[str | None, typer.Option(help="source CRS: wgs84, gcj02, bd09, EPSG:n")] = None,
    layer: Annotated[str | None, typer.Option(help="layer name in a GeoPackage")] = None,
    force: Annotated[bool, typer.Option("--force", help="store even with findings")] = False,
    repair: Annotated[
        bool, typer.Option("--repair", help="make_valid invalid geometry, report the area moved")
    ] = False,
    draft: Annotated[bool, typer.Option("--draft", help="store as a draft version")] = False,
    within: Annotated[
        Path | None,
        typer.Option("--within", help="the city outline file kept with the version"),
    ] = None,
) -> None:
    """Import a boundary layer as a new boundary version (all or nothing).

    Areas are measured in the city's metric CRS (GEOGRID_CITY_FILE's metric_crs, else the
    Gauss-Kruger zone of the boundaries' centre)."""
    settings = _settings()
    try:
        res = boundaries.import_file(
            _engine(),
            path,
            level,
            code_field=code_field,
            name_field=name_field,
            parent_field=parent_field,
            crs=crs,
            layer=layer,
            metric_crs=settings.city.metric_crs,
            force=force,
            repair=repair,
            publish=not draft,
            within=within,
        )
    except TopologyError as exc:
        _print_findings(exc.findings, "table")
        _fail(exc)
    except GeogridError as exc:
        _fail(exc)
    if res.repairs is not None and len(res.repairs):
        console.print(res.repairs.to_string(index=False))
    state = "published" if res.published else "draft"
    console.print(
        f"imported {res.count} {level} unit(s) as boundary version {res.version_id} ({state}); "
        f"areas in {res.metric_crs}"
    )


@boundaries_app.command("validate")
def boundaries_validate(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="a file to check before import; without it the stored version is checked"
        ),
    ] = None,
    level: Annotated[str | None, typer.Option("--level", "-l")] = None,
    version: Annotated[int | None, typer.Option(help="stored version (default: published)")] = None,
    crs: Annotated[str | None, typer.Option()] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json, csv or geojson")] = "table",
    within: Annotated[
        Path | None,
        typer.Option(
            "--within",
            help="an outline file the layer must cover: gaps and parts outside it, with areas",
        ),
    ] = None,
) -> None:
    """Report every topology finding; exit 1 when there are any."""
    if fmt not in (*FORMATS, "geojson"):
        _fail(InvalidInput("--format", fmt, "table, json, csv or geojson"))
    metric = _settings().city.metric_crs
    findings: list[Finding] = []
    try:
        if path is not None:
            if level is None:
                _fail(InvalidInput("--level", None, "a level (district, street, community, grid)"))
            else:
                findings = boundaries.validate_file(
                    _engine(),
                    path,
                    level,
                    crs=crs,
                    version=version,
                    metric_crs=metric,
                    within=within,
                )
        else:
            findings = boundaries.validate_stored(
                _engine(), level=level, version=version, metric_crs=metric
            )
    except GeogridError as exc:
        _fail(exc)
    _print_findings(findings, fmt)
    raise typer.Exit(1 if findings else 0)


@boundaries_app.command("export")
def boundaries_export(
    path: Path,
    level: LevelOpt,
    version: Annotated[int | None, typer.Option(help="boundary version id")] = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of", help="the version published at this date-time (ISO 8601, UTC when no offset)"
        ),
    ] = None,
) -> None:
    """Export a level of a version (default: published) to GeoJSON, GPKG, .zip or .parquet."""
    try:
        n = boundaries.export_level(_engine(), path, level, version=version, as_of=_aware(as_of))
    except GeogridError as exc:
        _fail(exc)
    console.print(f"wrote {n} {level} unit(s) to {path}")


@boundaries_app.command("versions")
def boundaries_versions(fmt: FormatOpt = "table") -> None:
    """List boundary versions."""
    try:
        print_rows(boundaries.list_versions(_engine()), fmt, console=console)
    except GeogridError as exc:
        _fail(exc)


# ----------------------------------------------------------------------------- city
@city_app.command("show")
def city_show() -> None:
    """The city as it would be served: configured fields, the rest derived from the
    published boundaries (metric CRS, name, map view)."""
    settings = _settings()
    try:
        vid, profile = profile_for(_engine(), settings.city)
    except GeogridError as exc:
        _fail(exc)
    console.print_json(
        json.dumps(
            {"city_file": str(settings.city_file or ""), "published_version": vid}
            | dataclasses.asdict(profile),
            ensure_ascii=False,
        )
    )


@city_app.command("categories")
def city_categories() -> None:
    """Store the city's incident category catalogue (its ``categories`` CSV, else the
    shipped one) in the database (insert or update by code)."""
    settings = _settings()
    try:
        n = install_categories(_engine(), settings.city)
    except GeogridError as exc:
        _fail(exc)
    console.print(f"stored {n} incident categories")


# ----------------------------------------------------------------------------- lookup
@app.command("locate")
def locate_cmd(
    lon: float,
    lat: float,
    crs: Annotated[str, typer.Option(help="wgs84, gcj02 or bd09")] = "wgs84",
) -> None:
    """Units at every level that contain a point."""
    try:
        res = locate(lon, lat, crs=crs, engine=_engine())
    except GeogridError as exc:
        _fail(exc)
    console.print_json(json.dumps(res, ensure_ascii=False, default=str))


# ----------------------------------------------------------------------------- demo
@demo_app.command("load")
def demo_load(
    incidents: Annotated[int, typer.Option(help="number of synthetic incidents")] = 200_000,
    base_records: Annotated[
        int, typer.Option(help="registry records (issue 15; people, households, …); 0: none")
    ] = DEMO_REGISTRY_RECORDS,
    seed: Annotated[int, typer.Option()] = 2016,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="do nothing when boundaries are already stored")
    ] = False,
) -> None:
    """Build and store the deterministic demo city (boundaries, buildings, people,
    incidents); serve it with GEOGRID_CITY_FILE set to the demo's city file."""
    try:
        summary = load_demo(
            _engine(),
            incidents=incidents,
            base_records=base_records,
            seed=seed,
            if_empty=if_empty,
            console=console,
        )
    except GeogridError as exc:
        _fail(exc)
    console.print(summary)
    console.print(f"the demo's city file: GEOGRID_CITY_FILE={DEMO_CITY_FILE}")


# ----------------------------------------------------------------------------- serve
@app.command("serve")
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option()] = 1,
    city: Annotated[
        Path | None,
        typer.Option(help="the city file (TOML or JSON); default $GEOGRID_CITY_FILE"),
    ] = None,
    access_log: Annotated[
        bool, typer.Option(help="log every request (issue 12: off for tile servers at load)")
    ] = True,
) -> None:
    """Run the HTTP service (FastAPI + uvicorn) for the configured city."""
    if city is not None:
        try:
            load_city(city)
        except CityFileError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from exc
        # the app factory (in every worker) reads the settings from the environment
        os.environ["GEOGRID_CITY_FILE"] = str(city.resolve())
    settings = _settings()
    try:
        database.migrate(settings.database_url)
    except GeogridError as exc:
        _fail(exc)
    uvicorn.run(
        "api.main:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
        # issue 12: a worker importing the app on a busy machine takes longer than
        # uvicorn's 5 s health check, which then kills and restarts it forever
        timeout_worker_healthcheck=120,
    )


#: the command groups of the other modules, listed explicitly (each has ``register(app)``)
COMMAND_GROUPS = (analytics, audit, incidents_commands, plan, reference, users)
for _group in COMMAND_GROUPS:
    _group.register(app)


def main() -> None:  # pragma: no cover
    """Run the command line, printing file errors as one message."""
    try:
        app()
    except FileInputError as exc:
        _fail(exc)


if __name__ == "__main__":  # pragma: no cover
    main()
