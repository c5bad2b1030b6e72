"""``geogrid workers`` and ``geogrid review`` (issue 14): the worker's file (一人一卷) and
the year-end review, read with the system scope (names clear; every read written to the
audit trail).

* ``geogrid workers list [--unit CODE]``
* ``geogrid workers file WORKER --pdf PATH [--xlsx PATH] [--year YYYY]`` — WORKER is the
  account id, the reference or the name
* ``geogrid review YEAR [--unit CODE] --out PATH.xlsx``
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from geogrid.cli._output import FormatOpt, print_rows
from geogrid.errors import GeogridError
from geogrid.services import database, review, worker_file
from geogrid.settings import CityFileError, get_settings

__all__ = ["workers_app", "review_cmd"]

workers_app = typer.Typer(
    help="Grid workers' files (一人一卷): list, export as PDF/Excel.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True, soft_wrap=True)

_Unit = Annotated[str | None, typer.Option("--unit", help="only workers with a grid in this unit")]


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(2)


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise GeogridError(f"{path}: cannot be written ({exc.strerror})") from None


@workers_app.command("list")
def list_cmd(unit: _Unit = None, fmt: FormatOpt = "table") -> None:
    """The workers (id, name, ref, grids)."""
    try:
        engine = database.get_engine(get_settings().database_url)
        rows = worker_file.list_workers(engine, None, unit=unit)
    except (GeogridError, CityFileError) as exc:
        raise _fail(exc) from None
    print_rows(
        [
            {
                "id": w["id"],
                "name": w["name"],
                "ref": w["ref"],
                "active": w["active"],
                "grids": ", ".join(g["code"] for g in w["grids"]),
            }
            for w in rows
        ],
        fmt,
        title="workers",
    )


@workers_app.command("file")
def file_cmd(
    worker: Annotated[str, typer.Argument(help="the worker's account id, reference or name")],
    pdf: Annotated[Path, typer.Option("--pdf", help="write the PDF dossier here")],
    xlsx: Annotated[
        Path | None, typer.Option("--xlsx", help="write the Excel workbook here")
    ] = None,
    year: Annotated[
        int | None, typer.Option("--year", help="the year (default: this year)")
    ] = None,
) -> None:
    """Export a worker's file as a PDF dossier (and Excel)."""
    try:
        engine = database.get_engine(get_settings().database_url)
        wid = worker_file.resolve_worker(engine, worker)
        _write(pdf, worker_file.worker_file_pdf(engine, None, wid, year=year))
        written = [str(pdf)]
        if xlsx is not None:
            _write(xlsx, worker_file.worker_file_xlsx(engine, None, wid, year=year))
            written.append(str(xlsx))
    except (GeogridError, CityFileError) as exc:
        raise _fail(exc) from None
    console.print(f"worker {wid}: " + ", ".join(written), highlight=False)


def review_cmd(
    year: Annotated[int, typer.Argument(help="the year")],
    out: Annotated[Path, typer.Option("--out", help="write the Excel workbook here")],
    unit: _Unit = None,
) -> None:
    """The year-end review (scores, ranks, shortlist) as an Excel workbook."""
    try:
        engine = database.get_engine(get_settings().database_url)
        _write(out, review.review_xlsx(engine, None, year, unit=unit))
    except (GeogridError, CityFileError) as exc:
        raise _fail(exc) from None
    console.print(f"review {year}{' ' + unit if unit else ''} → {out}", highlight=False)
