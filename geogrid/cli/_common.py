"""What every ``geogrid`` command shares: the consoles, the one way to fail, the settings
and the engine of this command."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from sqlalchemy import Engine

from geogrid.errors import GeogridError
from geogrid.services import database
from geogrid.settings import CityFileError, Settings, get_settings

__all__ = ["LevelOpt", "aware", "console", "current_engine", "current_settings", "err", "fail"]

console = Console()
err = Console(stderr=True, soft_wrap=True)

LevelOpt = Annotated[str, typer.Option("--level", "-l", help="district, street, community or grid")]


def fail(exc: GeogridError, code: int = 2) -> NoReturn:
    """Print the error and exit with ``code``."""
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(code)


def aware(when: datetime | None) -> datetime | None:
    """Naive date-times from the command line are UTC."""
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when


def current_settings() -> Settings:
    """The settings of this command (read once per command); a bad city file is an error."""
    try:
        return get_settings()
    except CityFileError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from exc


def current_engine() -> Engine:
    return database.get_engine(current_settings().database_url)
