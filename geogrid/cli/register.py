"""``geogrid register``: the monthly register (社区网格员为民服务事项登记表) exported in the
form's tabular layout — Excel and/or PDF — for the whole city or one unit (the CLI reads
with the system scope: names clear, the read written to the audit trail)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from geogrid.core.scope import Scope
from geogrid.errors import GeogridError
from geogrid.services import database
from geogrid.services.register import monthly_register, register_pdf, register_xlsx
from geogrid.settings import CityFileError, get_settings

__all__ = ["register_app", "export_cmd"]

register_app = typer.Typer(
    help="The monthly register (为民服务事项登记表): exports.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True, soft_wrap=True)


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(2)


@register_app.command("export")
def export_cmd(
    month: Annotated[str, typer.Argument(help="YYYY-MM, in the city's time zone")],
    xlsx: Annotated[
        Path | None, typer.Option("--xlsx", help="write the Excel workbook here")
    ] = None,
    pdf: Annotated[Path | None, typer.Option("--pdf", help="write the PDF here")] = None,
    unit: Annotated[
        str | None, typer.Option("--unit", help="only rows inside this unit code")
    ] = None,
    level: Annotated[
        str, typer.Option("--level", "-l", help="worker, community, street or district")
    ] = "worker",
) -> None:
    """Export a month's register (service entries per kind and incidents) as Excel
    (--xlsx) and/or PDF (--pdf)."""
    if xlsx is None and pdf is None:
        raise _fail(GeogridError("give --xlsx PATH and/or --pdf PATH"))
    try:
        settings = get_settings()
        engine = database.get_engine(settings.database_url)
        frame = monthly_register(
            engine, month, level, scope=Scope.system(), tz=settings.city.timezone, unit=unit
        )
        written = []
        for path, render in ((xlsx, register_xlsx), (pdf, register_pdf)):
            if path is None:
                continue
            try:
                path.write_bytes(render(frame, month, level, unit))
            except OSError as exc:
                raise GeogridError(f"{path}: cannot be written ({exc.strerror})") from None
            written.append(str(path))
    except (GeogridError, CityFileError) as exc:
        raise _fail(exc) from None
    console.print(
        f"register {month} ({level}{', ' + unit if unit else ''}): {len(frame)} rows → "
        + ", ".join(written),
        highlight=False,
    )
