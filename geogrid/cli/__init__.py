"""The ``geogrid`` command line (typer + rich).

Each command parses its options, calls one library function, and prints the result.
Errors from geogrid are printed as one clear message (file, row and field for files) and
exit with status 2; ``boundaries validate`` exits 1 when it has findings.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from geogrid.errors import FileInputError, GeogridError, InvalidInput, TopologyError

app = typer.Typer(
    help="geogrid: grid-management boundaries, incidents and analytics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database: embedded cluster and migrations.", no_args_is_help=True)
boundaries_app = typer.Typer(
    help="Boundary layers: import, validate, export, versions.", no_args_is_help=True
)
demo_app = typer.Typer(help="The Yulin demo.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(boundaries_app, name="boundaries")
app.add_typer(demo_app, name="demo")

console = Console()
err = Console(stderr=True, soft_wrap=True)

LevelOpt = Annotated[str, typer.Option("--level", "-l", help="district, street, community or grid")]


def _fail(exc: GeogridError, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(code)


def _aware(when: datetime | None) -> datetime | None:
    """Naive date-times from the command line are UTC."""
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when


def _engine():
    from geogrid.store import get_engine

    return get_engine()


# ----------------------------------------------------------------------------- db
@db_app.command("up")
def db_up() -> None:
    """Start the embedded PostgreSQL + PostGIS cluster (initialised on first use)."""
    from geogrid.store import cluster

    try:
        url = cluster.up()
    except GeogridError as exc:
        _fail(exc)
    console.print(f"embedded database running: {url}")


@db_app.command("down")
def db_down() -> None:
    """Stop the embedded cluster."""
    from geogrid.store import cluster

    cluster.down()
    console.print("embedded database stopped")


@db_app.command("status")
def db_status() -> None:
    """Show the database in use and whether it answers."""
    from geogrid.settings import get_settings
    from geogrid.store import cluster

    s = get_settings()
    if s.database_url:
        console.print(f"GEOGRID_DATABASE_URL={s.database_url}")
    else:
        console.print(cluster.status(s))


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the Alembic migrations (idempotent)."""
    from geogrid.store import database_url, migrate

    try:
        url = database_url()
        migrate(url)
    except GeogridError as exc:
        _fail(exc)
    console.print("schema up to date")


# ----------------------------------------------------------------------------- boundaries
def _print_findings(findings, fmt: str) -> None:
    from geogrid.core.validation import findings_geojson

    if fmt == "geojson":
        sys.stdout.write(json.dumps(findings_geojson(findings), ensure_ascii=False) + "\n")
        return
    if not findings:
        console.print("[green]no findings[/]")
        return
    t = Table(title=f"{len(findings)} finding(s)")
    for col in ("kind", "level", "codes", "area m²", "where", "message"):
        t.add_column(col)
    for f in findings:
        c = f.location.centroid if f.location is not None and not f.location.is_empty else None
        where = f"{c.x:.6f}, {c.y:.6f}" if c is not None else ""
        t.add_row(f.kind, f.level or "", ", ".join(f.codes), f"{f.area_m2:,.1f}", where, f.message)
    console.print(t)


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
) -> None:
    """Import a boundary layer as a new boundary version (all or nothing)."""
    from geogrid.services.boundaries import import_layer, read_boundary_file

    try:
        units = read_boundary_file(
            path,
            level,
            code_field=code_field,
            name_field=name_field,
            parent_field=parent_field,
            crs=crs,
            layer=layer,
        )
        res = import_layer(
            _engine(), units, level, source=str(path), force=force, repair=repair, publish=not draft
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
        f"imported {res.count} {level} unit(s) as boundary version {res.version_id} ({state})"
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
    fmt: Annotated[str, typer.Option("--format", help="table or geojson")] = "table",
) -> None:
    """Report every topology finding; exit 1 when there are any."""
    if fmt not in ("table", "geojson"):
        _fail(InvalidInput("--format", fmt, "table or geojson"))
    from geogrid.core import validation
    from geogrid.services.boundaries import PARENT_LEVEL, read_boundary_file
    from geogrid.store.tables import LEVELS
    from geogrid.store.units import load_units

    try:
        if path is not None:
            if level is None:
                _fail(GeogridError("--level is required with a file"))
            units = read_boundary_file(path, level, crs=crs)
            parents = None
            parent_level = PARENT_LEVEL[level]
            if parent_level and units["parent_code"].notna().any():
                try:
                    parents = load_units(_engine(), parent_level, version=version)
                except GeogridError:
                    parents = None
            findings = validation.validate_units(units, level=level, parents=parents)
        else:
            eng = _engine()
            layers = {lv: load_units(eng, lv, version=version) for lv in LEVELS}
            layers = {k: v for k, v in layers.items() if len(v)}
            if level:
                keep = [level]
                if PARENT_LEVEL[level]:
                    keep.append(PARENT_LEVEL[level])
                layers = {k: v for k, v in layers.items() if k in keep}
            findings = validation.validate_hierarchy(layers)
            if level:
                findings = [f for f in findings if f.level == level]
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
    from geogrid.services.boundaries import write_boundary_file
    from geogrid.store.units import load_units

    try:
        units = load_units(_engine(), level, version=version, as_of=_aware(as_of))
        write_boundary_file(units, path)
    except GeogridError as exc:
        _fail(exc)
    console.print(f"wrote {len(units)} {level} unit(s) to {path}")


@boundaries_app.command("versions")
def boundaries_versions() -> None:
    """List boundary versions."""
    from geogrid.store.units import list_versions

    console.print(list_versions(_engine()).to_string(index=False))


# ----------------------------------------------------------------------------- lookup
@app.command("locate")
def locate_cmd(
    lon: float,
    lat: float,
    crs: Annotated[str, typer.Option(help="wgs84, gcj02 or bd09")] = "wgs84",
) -> None:
    """Units at every level that contain a point."""
    from geogrid.services.lookup import locate

    try:
        res = locate(lon, lat, crs=crs)
    except GeogridError as exc:
        _fail(exc)
    console.print_json(json.dumps(res, ensure_ascii=False, default=str))


# ----------------------------------------------------------------------------- demo
@demo_app.command("load")
def demo_load(
    incidents: Annotated[int, typer.Option(help="number of synthetic incidents")] = 200_000,
    seed: Annotated[int, typer.Option()] = 2016,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="do nothing when boundaries are already stored")
    ] = False,
) -> None:
    """Build and store the deterministic Yulin demo (boundaries, buildings, people, incidents)."""
    from geogrid.services.demo import load_demo

    try:
        summary = load_demo(
            _engine(), incidents=incidents, seed=seed, if_empty=if_empty, console=console
        )
    except GeogridError as exc:
        _fail(exc)
    console.print(summary)


# ----------------------------------------------------------------------------- serve
@app.command("serve")
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option()] = 1,
) -> None:
    """Run the HTTP service (FastAPI + uvicorn)."""
    import uvicorn

    from geogrid.store import database_url, migrate

    url = database_url()
    migrate(url)
    uvicorn.run(
        "api.main:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


def _register_commands() -> None:
    """The command groups, listed explicitly (each module has a ``register(app)``)."""
    from geogrid.cli import analytics, incidents, plan, users

    for group in (analytics, incidents, plan, users):
        group.register(app)


_register_commands()


def main() -> None:  # pragma: no cover
    try:
        app()
    except FileInputError as exc:
        _fail(exc)


if __name__ == "__main__":  # pragma: no cover
    main()
