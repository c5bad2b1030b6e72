"""``geogrid terminals``: enrol a worker's phone, list devices, revoke one.

``enrol WORKER`` prints a one-time code (and its QR code on the terminal with ``--qr``,
or into an SVG file with ``--svg``); ``list`` shows devices with their last-seen time and
app version; ``revoke ID`` cuts one device off at once (the worker's others keep working).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import segno
import typer
from rich.console import Console
from sqlalchemy import Engine

from geogrid.cli._output import FormatOpt, print_rows
from geogrid.core.terminals import DEFAULT_TTL_MINUTES
from geogrid.errors import GeogridError
from geogrid.services import accounts, database, terminals
from geogrid.settings import CityFileError, get_settings

console = Console()
err = Console(stderr=True)

terminals_app = typer.Typer(
    help="The grid workers' enrolled devices (terminals).", no_args_is_help=True
)

_COLUMNS = [
    "id",
    "account_id",
    "account_name",
    "label",
    "state",
    "app_version",
    "last_seen_at",
    "enrolled_at",
    "revoked_at",
    "revoked_reason",
]


def _engine() -> Engine:
    try:
        return database.get_engine(get_settings().database_url)
    except CityFileError as exc:
        _fail(exc)


def _fail(exc: Exception) -> NoReturn:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(2) from None


@terminals_app.command("enrol")
def terminals_enrol(
    worker: Annotated[str, typer.Argument(help="the worker: username, ref, name or id")],
    ttl: Annotated[
        int, typer.Option("--ttl", help="minutes the code is valid (at most a week)")
    ] = DEFAULT_TTL_MINUTES,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="the service's address, put in the QR code"),
    ] = None,
    qr: Annotated[bool, typer.Option("--qr", help="print the QR code on the terminal")] = False,
    svg: Annotated[
        Path | None, typer.Option("--svg", help="write the QR code into this SVG file")
    ] = None,
) -> None:
    """Issue a one-time enrolment code for a worker's new device (shown this once)."""
    engine = _engine()
    try:
        acc = accounts.find_account(engine, worker)
        out = terminals.enrol(engine, acc.id, ttl_minutes=ttl, base_url=base_url)
    except GeogridError as exc:
        _fail(exc)
    console.print(
        f"enrolment code for account {acc.id} ({acc.name}): [bold]{out['code']}[/] "
        f"(valid until {out['expires_at'].isoformat(timespec='minutes')})",
        highlight=False,
    )
    console.print(f"uri: {out['uri']}", highlight=False, soft_wrap=True)
    if svg is not None:
        try:
            svg.write_text(out["qr_svg"], encoding="utf-8")
        except OSError as exc:
            _fail(exc)
        console.print(f"QR code written to {svg}", highlight=False)
    if qr:
        segno.make(out["uri"], error="m").terminal(compact=True)
    err.print(
        "[bold yellow]note:[/] the code works once; it is stored only as a hash. Type it "
        "on the phone (dash optional) or scan the QR code."
    )


@terminals_app.command("list")
def terminals_list(
    unit: Annotated[
        str | None, typer.Option("--unit", help="devices of the workers in this unit")
    ] = None,
    worker: Annotated[
        str | None, typer.Option("--worker", help="one worker's devices (username, ref, name, id)")
    ] = None,
    fmt: FormatOpt = "table",
) -> None:
    """List enrolled devices, newest first."""
    engine = _engine()
    try:
        account_id = accounts.find_account(engine, worker).id if worker else None
        rows = terminals.list_terminals(engine, account_id=account_id, unit=unit)
        print_rows(rows, fmt, columns=_COLUMNS, title=f"{len(rows)} terminal(s)", console=console)
    except GeogridError as exc:
        _fail(exc)


@terminals_app.command("revoke")
def terminals_revoke(
    terminal_id: Annotated[int, typer.Argument(help="the terminal's id (geogrid terminals list)")],
    reason: Annotated[str | None, typer.Option("--reason", help="e.g. lost or stolen")] = None,
) -> None:
    """Revoke a device at once; the worker's other devices keep working."""
    try:
        t = terminals.revoke(_engine(), terminal_id, reason=reason)
    except GeogridError as exc:
        _fail(exc)
    console.print(
        f"terminal {t['id']} of account {t['account_id']} ({t['account_name']}) revoked",
        highlight=False,
    )
