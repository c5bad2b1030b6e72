"""``geogrid registry``: import and export of the base-information registry (issue 15).

The CLI runs with the system scope; an export still needs a reason and writes an audit
row. Messages name the file, row and field and show masked values only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from geogrid.cli.registry_read import register as add_read_commands
from geogrid.core.scope import Scope
from geogrid.errors import GeogridError
from geogrid.services import database
from geogrid.services.registry_import import export_registry, import_registry
from geogrid.settings import CityFileError, Settings, get_settings

registry_app = typer.Typer(
    help="The base-information registry: import and export.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True, soft_wrap=True)


def _fail(exc: GeogridError | CityFileError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=False)
    return typer.Exit(2)


def _settings() -> Settings:
    try:
        return get_settings()
    except CityFileError as exc:
        raise _fail(exc) from None


@registry_app.command("import")
def import_cmd(
    path: Path,
    kind: Annotated[
        str | None,
        typer.Option(help="people, households, buildings, orgs or care (default: guessed)"),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="TOML/JSON file of header = field lines")
    ] = None,
    skip_bad: Annotated[
        bool,
        typer.Option("--skip-bad", help="load the good rows, write the bad ones to a rejects file"),
    ] = False,
    rejects: Annotated[
        Path | None, typer.Option(help="rejects CSV (default <file>.rejects.csv)")
    ] = None,
    workers: Annotated[int, typer.Option(help="processes sealing ID numbers/phones")] = 1,
) -> None:
    """Import a registry file (.xlsx, .csv, GeoParquet) in one transaction, idempotent."""
    settings = _settings()
    try:
        report = import_registry(
            database.get_engine(settings.database_url),
            path,
            kind=kind,
            mapping=mapping,
            skip_bad=skip_bad,
            rejects_path=rejects,
            settings=settings,
            workers=workers,
        )
    except GeogridError as exc:
        raise _fail(exc) from None
    console.print(
        f"{report.file}: {report.rows} {report.kind} rows, {report.inserted} inserted, "
        f"{report.updated} updated, {report.unchanged} unchanged, {report.rejected} rejected"
        + (f", {report.households_created} households created" if report.households_created else "")
        + (f", {report.care} care-group rows" if report.care else "")
        + f" in {report.seconds} s",
        highlight=False,
        markup=False,
    )
    if report.rejects_path:
        for p in report.problems[:20]:
            err.print(
                f"  {p['file']}, row {p['row']}, field {p['field']!r}: {p['message']}",
                highlight=False,
                markup=False,
            )
        console.print(f"rejected rows written to {report.rejects_path}", markup=False)


@registry_app.command("export")
def export_cmd(
    out: Path,
    reason: Annotated[str, typer.Option(help="why the data is exported (audited)")],
    kind: Annotated[str, typer.Option(help="people, households, buildings or orgs")] = "people",
    unit: Annotated[str | None, typer.Option(help="only records inside this unit code")] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="ID numbers, phones and names in clear (audited)")
    ] = False,
) -> None:
    """Export registry records to a CSV (system scope; the reason goes to the audit log)."""
    settings = _settings()
    try:
        result = export_registry(
            database.get_engine(settings.database_url),
            Scope.system(),
            kind,
            out,
            reason=reason,
            clear=clear,
            unit=unit,
            settings=settings,
        )
    except GeogridError as exc:
        raise _fail(exc) from None
    console.print(f"{result['rows']} {kind} rows written to {result['file']}", markup=False)


add_read_commands(registry_app)  # search, care, aggregates (geogrid/cli/registry_read.py)
