"""``geogrid users``: create accounts (the token is printed once) and list them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from geogrid.errors import GeogridError
from geogrid.services import database
from geogrid.services.accounts import add_user, list_users
from geogrid.settings import CityFileError, get_settings

console = Console()
err = Console(stderr=True)

users_app = typer.Typer(help="Accounts and bearer tokens.", no_args_is_help=True)


def _engine() -> Engine:
    """The engine of the configured database (a bad city file is an error: exit 2)."""
    try:
        return database.get_engine(get_settings().database_url)
    except CityFileError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None


@users_app.command("add")
def users_add(
    name: str,
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="worker, community_admin, street_admin, "
            "district_admin, planner, leader, analyst or admin",
        ),
    ],
    unit: Annotated[
        list[str] | None,
        typer.Option(
            "--unit", help="unit code (repeat): grid codes for a worker, the unit of an admin"
        ),
    ] = None,
    ref: Annotated[str | None, typer.Option(help="external reference, e.g. staff number")] = None,
) -> None:
    """Create an account and print its bearer token (shown this once only)."""
    try:
        acc, token = add_user(_engine(), name, role, units=unit or [], ref=ref)
    except GeogridError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    units = ", ".join(acc.units) or "-"
    console.print(
        f"created account {acc.id}: {acc.name} ({acc.role}; units {units})", highlight=False
    )
    console.print(f"token: {token}", highlight=False, soft_wrap=True)
    err.print(
        "[bold yellow]warning:[/] this token is shown only once and is stored only as a "
        "hash; copy it now (send it as 'Authorization: Bearer <token>')."
    )


@users_app.command("list")
def users_list() -> None:
    """List accounts (no tokens)."""
    df = list_users(_engine())
    t = Table(title=f"{len(df)} account(s)")
    for col in ("id", "name", "role", "units", "ref", "active"):
        t.add_column(col)

    def _s(v: object) -> str:
        return "" if v is None or v != v else str(v)  # None and NaN → ""

    for r in df.itertuples(index=False):
        t.add_row(_s(r.id), _s(r.name), _s(r.role), _s(r.units) or "-", _s(r.ref), _s(r.active))
    console.print(t)


def register(app: typer.Typer) -> None:
    """Add the ``users`` group to the ``geogrid`` command."""
    app.add_typer(users_app, name="users")
