"""The ``geogrid demo`` commands: the deterministic demo city."""

from __future__ import annotations

from typing import Annotated

import typer

from geogrid.cli._common import (
    console,
    current_engine,
    fail,
)
from geogrid.errors import GeogridError
from geogrid.services.demo import DEMO_CITY_FILE, DEMO_REGISTRY_RECORDS, load_demo

demo_app = typer.Typer(
    help="The demo city (a synthetic hierarchy on real county outlines).", no_args_is_help=True
)


@demo_app.command("load")
def demo_load(
    incidents: Annotated[int, typer.Option(help="number of synthetic incidents")] = 200_000,
    base_records: Annotated[
        int, typer.Option(help="registry records (issue 15; people, households, …); 0: none")
    ] = DEMO_REGISTRY_RECORDS,
    seed: Annotated[int, typer.Option()] = 2016,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="do nothing when boundaries are already stored")
    ] = False,
) -> None:
    """Build and store the deterministic demo city (boundaries, buildings, people,
    incidents); serve it with GEOGRID_CITY_FILE set to the demo's city file."""
    try:
        summary = load_demo(
            current_engine(),
            incidents=incidents,
            base_records=base_records,
            seed=seed,
            if_empty=if_empty,
            console=console,
        )
    except GeogridError as exc:
        fail(exc)
    console.print(summary)
    console.print(f"the demo's city file: GEOGRID_CITY_FILE={DEMO_CITY_FILE}")
