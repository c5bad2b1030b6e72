"""The ``geogrid`` command line (typer + rich).

Each command parses its options, calls one service function, and prints the result.
Errors from geogrid are printed as one clear message (file, row and field for files) and
exit with status 2; ``boundaries validate`` exits 1 when it has findings.

The city (name, time zone, metric CRS, map view) comes from the settings:
``GEOGRID_CITY_FILE`` (see :mod:`geogrid.settings`); ``geogrid serve --city FILE`` sets it
for the server.

The commands live one module per group (listed in :data:`COMMANDS`) and are imported when
they are run, not when the command line starts: ``geogrid users add`` does not pay for the
map service, GeoPandas' analytics or Dask (importing every group cost ~3 s per call).
"""

from __future__ import annotations

import importlib
from typing import Any

import typer

# typer (≥ 0.20) vendors click: its groups take and return the vendored click's types
from typer import _click as click
from typer.core import TyperGroup

from geogrid.cli._common import fail
from geogrid.errors import FileInputError

__all__ = ["COMMANDS", "app", "main"]

#: every command of ``geogrid``: name → (module, attribute: a ``typer.Typer`` group or a
#: command function), imported on first use
COMMANDS: dict[str, tuple[str, str]] = {
    "audit": ("geogrid.cli.audit", "audit_cmd"),
    "boundaries": ("geogrid.cli.boundaries", "boundaries_app"),
    "city": ("geogrid.cli.city", "city_app"),
    "db": ("geogrid.cli.db", "db_app"),
    "demo": ("geogrid.cli.demo", "demo_app"),
    "incidents": ("geogrid.cli.incidents", "incidents_app"),
    "locate": ("geogrid.cli.locate", "locate_cmd"),
    "map": ("geogrid.cli.analytics", "map_cmd"),
    "metrics": ("geogrid.cli.analytics", "metrics_cmd"),
    "notify": ("geogrid.cli.notify", "notify_app"),  # issue 13: notifications
    "plan": ("geogrid.cli.plan", "plan_app"),
    "reference": ("geogrid.cli.reference", "reference_app"),
    "register": ("geogrid.cli.register", "register_app"),  # issue 13: register exports
    "registry": ("geogrid.cli.registry", "registry_app"),  # issue 15: the registry
    "review": ("geogrid.cli.workers", "review_cmd"),  # issue 14: the year-end review
    "scale": ("geogrid.cli.scale", "scale_app"),  # issue 12: GeoParquet history and Dask
    "serve": ("geogrid.cli.serve", "serve"),
    "terminals": ("geogrid.cli.terminals", "terminals_app"),  # issue 13: workers' devices
    "users": ("geogrid.cli.users", "users_app"),
    "workers": ("geogrid.cli.workers", "workers_app"),  # issue 14: the worker's file
}


def load_command(name: str) -> click.Command:
    """The click command of one entry of :data:`COMMANDS` (imports its module)."""
    module, attribute = COMMANDS[name]
    target: Any = getattr(importlib.import_module(module), attribute)
    command: click.Command
    if isinstance(target, typer.Typer):
        command = typer.main.get_group(target)
    else:
        single = typer.Typer(pretty_exceptions_enable=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyCommands(TyperGroup):
    """The root group: its commands are imported when they are looked up (click's own
    lazy-loading pattern, https://click.palletsprojects.com/en/stable/complex/)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        known = super().get_command(ctx, cmd_name)
        if known is not None or cmd_name not in COMMANDS:
            return known
        return load_command(cmd_name)


app = typer.Typer(
    cls=LazyCommands,
    help="geogrid: grid-management boundaries, incidents and analytics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """geogrid: grid-management boundaries, incidents and analytics."""


def main() -> None:  # pragma: no cover
    """Run the command line, printing file errors as one message."""
    try:
        app()
    except FileInputError as exc:
        fail(exc)


if __name__ == "__main__":  # pragma: no cover
    main()
