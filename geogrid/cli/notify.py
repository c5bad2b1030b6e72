"""``geogrid notify``: derive the missing notifications from the incidents and send the
due outbound deliveries (``notify run``, for cron when the app's periodic task is off),
and list deliveries (``notify deliveries``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from geogrid.cli._output import FormatOpt, print_rows
from geogrid.errors import GeogridError
from geogrid.services import database, notifications
from geogrid.settings import CityFileError, get_settings

__all__ = ["notify_app"]

console = Console()
err = Console(stderr=True, soft_wrap=True)

notify_app = typer.Typer(
    help="Notifications of the workers' terminals: derive them, send them outbound.",
    no_args_is_help=True,
)


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(2)


@notify_app.command("run")
def run_cmd() -> None:
    """Derive the missing notifications (new assignment, due soon, overdue, escalated)
    and send the due deliveries of the configured channels (GEOGRID_NOTIFY_CHANNELS)."""
    try:
        settings = get_settings()
        counts = notifications.run_once(
            database.get_engine(settings.database_url), settings=settings
        )
    except (GeogridError, CityFileError) as exc:
        raise _fail(exc) from None
    console.print(
        f"{counts['created']:,} new notification(s); deliveries: {counts['sent']:,} sent, "
        f"{counts['retry']:,} to retry, {counts['failed']:,} failed"
    )


@notify_app.command("deliveries")
def deliveries_cmd(
    limit: Annotated[int, typer.Option(help="print at most this many (newest)")] = 50,
    fmt: FormatOpt = "table",
) -> None:
    """The outbound deliveries: channel, status, attempts, last error, time sent."""
    try:
        settings = get_settings()
        rows = notifications.deliveries(database.get_engine(settings.database_url))
        print_rows(rows[-limit:], fmt, title=f"{len(rows):,} delivery(ies)", console=console)
    except (GeogridError, CityFileError) as exc:
        raise _fail(exc) from None
