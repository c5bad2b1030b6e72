"""``geogrid audit``: the audit trail (writes and clear reads of personal fields), newest
first, as a table, JSON or CSV. The CLI acts with the system scope (it runs where the
database is), so it may read the trail."""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from geogrid.core.scope import Scope
from geogrid.errors import GeogridError, InvalidInput
from geogrid.services import audit, database
from geogrid.settings import CityFileError, get_settings

__all__ = ["audit_cmd", "register"]

console = Console()
err = Console(stderr=True)
_FORMATS = ("table", "json", "csv")


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        d = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput("since", value, "an ISO 8601 date-time with a time zone") from None
    if d.tzinfo is None:
        raise InvalidInput("since", value, "a date-time with a time zone (Z or +08:00)")
    return d


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, ensure_ascii=False, default=str)
    return str(v)


def audit_cmd(
    actor: Annotated[int | None, typer.Option(help="only this account's actions")] = None,
    resource: Annotated[
        str | None, typer.Option(help="only this kind of record (incident, register …)")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="from this time (ISO 8601 with a time zone)")
    ] = None,
    limit: Annotated[int, typer.Option(help="at most this many rows")] = 100,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
) -> None:
    """The audit trail, newest first."""
    try:
        if fmt not in _FORMATS:
            raise InvalidInput("format", fmt, ", ".join(_FORMATS))
        engine = database.get_engine(get_settings().database_url)
        rows = audit.audit_log(
            engine,
            scope=Scope.system(),
            actor_id=actor,
            resource=resource,
            since=_since(since),
            limit=limit,
        )
    except (GeogridError, CityFileError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    columns = list(audit.AUDIT_COLUMNS)
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, default=_cell, indent=1) + "\n")
    elif fmt == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(columns)
        for r in rows:
            w.writerow([_cell(r.get(c)) for c in columns])
    else:
        table = Table(*columns)
        for r in rows:
            table.add_row(*[_cell(r.get(c)) for c in columns])
        console.print(table)


def register(app: typer.Typer) -> None:
    """Add the ``audit`` command to the ``geogrid`` command."""
    app.command("audit")(audit_cmd)
