"""``geogrid registry search|care|aggregates``: the registry's reads on the command line
(issue 15), added to the ``geogrid registry`` group by :func:`register`.

The CLI runs where the database is, with the system scope: it reads the whole city. Lists
show names in clear and ID numbers and phones masked (as the API's lists do); every read
is written to the audit trail (user agent ``cli``). An ID number or phone given on the
command line stays in the shell's history: prefer ``-`` to read it from standard input.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from geogrid.cli._output import FormatOpt, check_format, print_rows
from geogrid.core.registry.care import CARE_GROUPS
from geogrid.core.scope import Scope
from geogrid.errors import GeogridError
from geogrid.services import database, registry, registry_care
from geogrid.settings import CityFileError, get_settings

__all__ = ["register", "search_cmd", "care_cmd", "aggregates_cmd"]

err = Console(stderr=True, soft_wrap=True)
_PERSON_COLUMNS = (
    "id",
    "name",
    "sex",
    "age",
    "id_mask",
    "phone_mask",
    "residence",
    "address",
    "grid_code",
    "care_groups",
)
_CARE_COLUMNS = (
    "person_id",
    "name",
    "age",
    "groups",
    "last_visit",
    "due",
    "overdue",
    "days_overdue",
    "address",
    "phone_mask",
)


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
    return typer.Exit(2)


def _stdin(value: str | None) -> str | None:
    """``-`` → the first line of standard input."""
    return sys.stdin.readline().strip() if value == "-" else value


def search_cmd(
    name: Annotated[str | None, typer.Option(help="part of a name")] = None,
    id_number: Annotated[
        str | None, typer.Option("--id-number", help="an ID number, exact ('-': stdin)")
    ] = None,
    phone: Annotated[str | None, typer.Option(help="a phone, exact ('-': stdin)")] = None,
    address: Annotated[str | None, typer.Option(help="part of an address")] = None,
    unit: Annotated[str | None, typer.Option(help="only this unit (code of any level)")] = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 50,
    offset: Annotated[int, typer.Option(help="skip this many first")] = 0,
    reason: Annotated[str | None, typer.Option(help="why (audited)")] = None,
    fmt: FormatOpt = "table",
) -> None:
    """Search people by name or address (partial), ID number or phone (exact)."""
    try:
        check_format(fmt)
        settings = get_settings()
        page = registry.search_people(
            database.get_engine(settings.database_url),
            scope=Scope.system(),
            name=name,
            id_number=_stdin(id_number),
            phone=_stdin(phone),
            address=address,
            unit=unit,
            limit=limit,
            offset=offset,
            reason=reason,
            settings=settings,
        )
    except (GeogridError, CityFileError) as exc:
        raise _fail(exc) from None
    print_rows(page["items"], fmt, columns=_PERSON_COLUMNS, title="people")
    if page["more"] and fmt == "table":
        err.print(f"more: --offset {offset + limit}", highlight=False, markup=False)


def care_cmd(
    grid: Annotated[str, typer.Argument(help="grid code (15 digits)")],
    overdue_only: Annotated[
        bool, typer.Option("--overdue-only", help="only those overdue for a visit")
    ] = False,
    fmt: FormatOpt = "table",
) -> None:
    """The care list of a grid: people in care groups, last visit, next due, overdue."""
    try:
        check_format(fmt)
        settings = get_settings()
        got = registry_care.grid_care(
            database.get_engine(settings.database_url),
            Scope.system(),
            grid,
            overdue_only=overdue_only,
            settings=settings,
        )
    except (GeogridError, CityFileError) as exc:
        raise _fail(exc) from None
    title = f"{grid}: {got['overdue']} of {got['total']} overdue on {got['today']}"
    print_rows(got["people"], fmt, columns=_CARE_COLUMNS, title=title)


def aggregates_cmd(
    level: Annotated[str, typer.Argument(help="grid, community, street or district")],
    unit: Annotated[str | None, typer.Option(help="only inside this unit")] = None,
    fmt: FormatOpt = "table",
) -> None:
    """Population, households, floating population and care-group counts per unit."""
    try:
        check_format(fmt)
        settings = get_settings()
        got = registry.aggregates(
            database.get_engine(settings.database_url),
            level,
            scope=Scope.system(),
            unit=unit,
            settings=settings,
        )
    except (GeogridError, CityFileError) as exc:
        raise _fail(exc) from None
    rows = [
        {**{k: v for k, v in r.items() if k not in ("care_groups", "suppressed")},
         **{f"care_{g}": r["care_groups"].get(g, 0) for g in CARE_GROUPS}}
        for r in got["rows"]
    ]  # fmt: skip
    print_rows(rows, fmt, title=f"registry counts per {level}")


def register(app: typer.Typer) -> None:
    """Add the read commands to the ``geogrid registry`` group."""
    app.command("search")(search_cmd)
    app.command("care")(care_cmd)
    app.command("aggregates")(aggregates_cmd)
