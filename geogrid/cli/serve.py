"""``geogrid serve``: the HTTP service (FastAPI + uvicorn)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from geogrid.cli._common import (
    current_settings,
    err,
    fail,
)
from geogrid.errors import GeogridError
from geogrid.services import database
from geogrid.settings import CityFileError, load_city


def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option()] = 1,
    city: Annotated[
        Path | None,
        typer.Option(help="the city file (TOML or JSON); default $GEOGRID_CITY_FILE"),
    ] = None,
    access_log: Annotated[
        bool, typer.Option(help="log every request (issue 12: off for tile servers at load)")
    ] = True,
) -> None:
    """Run the HTTP service (FastAPI + uvicorn) for the configured city."""
    if city is not None:
        try:
            load_city(city)
        except CityFileError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from exc
        # the app factory (in every worker) reads the settings from the environment
        os.environ["GEOGRID_CITY_FILE"] = str(city.resolve())
    settings = current_settings()
    try:
        database.migrate(settings.database_url)
    except GeogridError as exc:
        fail(exc)
    uvicorn.run(
        "api.main:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
        # issue 12: a worker importing the app on a busy machine takes longer than
        # uvicorn's 5 s health check, which then kills and restarts it forever
        timeout_worker_healthcheck=120,
    )
