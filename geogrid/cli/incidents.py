"""``geogrid incidents``: bulk import with a progress bar, overdue lists, escalation, and
how a category's resolutions are verified (``verify``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from geogrid.cli._output import FormatOpt, print_rows
from geogrid.core.scope import Scope
from geogrid.errors import GeogridError
from geogrid.services import database, incidents
from geogrid.services.ingest import import_incidents
from geogrid.settings import CityFileError, Settings, get_settings

incidents_app = typer.Typer(
    help="Incidents: bulk import, overdue, escalation.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True, soft_wrap=True)


def _fail(exc: GeogridError | CityFileError) -> typer.Exit:
    """Print a geogrid error (file, row and field for files); exit status 2."""
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(2)


def _settings() -> Settings:
    try:
        return get_settings()
    except CityFileError as exc:
        raise _fail(exc) from None


@incidents_app.command("import")
def import_cmd(
    path: Path,
    crs: Annotated[
        str, typer.Option(help="coordinates in the file: wgs84, gcj02, bd09 or EPSG:n")
    ] = "wgs84",
    skip_bad: Annotated[
        bool,
        typer.Option("--skip-bad", help="load the good rows, write the bad ones to a rejects file"),
    ] = False,
    rejects: Annotated[
        Path | None, typer.Option(help="rejects CSV (default <file>.rejects.csv)")
    ] = None,
    lon_field: Annotated[str | None, typer.Option(help="CSV column of longitude/x")] = None,
    lat_field: Annotated[str | None, typer.Option(help="CSV column of latitude/y")] = None,
    batch_size: Annotated[int, typer.Option(help="rows per batch")] = 200_000,
) -> None:
    """Import incidents from CSV, GeoJSON or GeoParquet (one transaction, idempotent).

    Naive timestamps are read in the city's time zone (``settings.city.timezone``). Bad rows
    (file, row, field) refuse the file, or with --skip-bad go to the rejects CSV. A second
    import of the same file waits for the first; a lost database connection is one message
    and nothing is written."""
    settings = _settings()
    try:
        columns = (
            TextColumn("[bold]import"),
            BarColumn(),
            TextColumn("{task.completed:,} rows"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("import", total=None)
            report = import_incidents(
                database.get_engine(settings.database_url),
                path,
                crs=crs,
                tz=settings.city.timezone,
                skip_bad=skip_bad,
                rejects_path=rejects,
                lon_field=lon_field,
                lat_field=lat_field,
                batch_size=batch_size,
                progress=lambda n: bar.update(task, completed=n),
                on_wait=lambda: err.print(
                    f"another import of {path} is running: waiting for it to finish "
                    "(its rows will then be skipped as already stored)"
                ),
            )
    except GeogridError as exc:
        raise _fail(exc) from None
    console.print(
        f"{report.file}: {report.rows:,} rows read, {report.loaded:,} loaded, "
        f"{report.already_stored:,} already stored, {report.duplicates_in_file:,} duplicate "
        f"ids in the file, {report.rejected:,} rejected, {report.outside:,} outside every "
        f"grid (kept, flagged) — {report.seconds:.1f} s, {report.rows_per_second:,.0f} rows/s"
    )
    if report.rejects_path:
        console.print(f"rejected rows written to {report.rejects_path}")


@incidents_app.command("escalate-overdue")
def escalate_overdue_cmd() -> None:
    """Escalate overdue incidents one level per time limit passed (run it from cron)."""
    try:
        moved = incidents.escalate_overdue(database.get_engine(_settings().database_url))
    except GeogridError as exc:
        raise _fail(exc) from None
    console.print(f"escalated {len(moved):,} overdue incident(s)")
    if len(moved):
        console.print(moved.groupby(["from_level", "to_level"]).size().to_string())


@incidents_app.command("overdue")
def overdue_cmd(
    unit: Annotated[str | None, typer.Option(help="unit code")] = None,
    level: Annotated[str | None, typer.Option(help="grid, community, street or district")] = None,
    limit: Annotated[int, typer.Option(help="print at most this many rows")] = 50,
    fmt: FormatOpt = "table",
) -> None:
    """List overdue incidents, per unit."""
    try:
        engine = database.get_engine(_settings().database_url)
        df = incidents.overdue(engine, unit_code=unit, level=level, scope=Scope.system())
    except GeogridError as exc:
        raise _fail(exc) from None
    try:
        print_rows(df.head(limit), fmt, title=f"{len(df):,} overdue incident(s)", console=console)
    except GeogridError as exc:
        raise _fail(exc) from None


@incidents_app.command("verify")
def verify_cmd(
    category: Annotated[str, typer.Argument(help="the category code")],
    mode: Annotated[
        str,
        typer.Argument(
            help="other: a resolution is closed by someone other than its resolver (the "
            "reporter of a resident's report, or a community admin or above); none: the "
            "resolver may close it"
        ),
    ],
) -> None:
    """How a category's resolutions are verified before they are closed (核查结案, issue 13)."""
    try:
        incidents.set_category_verify(database.get_engine(_settings().database_url), category, mode)
    except GeogridError as exc:
        raise _fail(exc) from None
    console.print(f"category {category}: verify = {mode}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``incidents`` group to the ``geogrid`` command."""
    app.add_typer(incidents_app, name="incidents")
