"""The ``geogrid city`` commands: the served city's profile and categories."""

from __future__ import annotations

import dataclasses
import json

import typer

from geogrid.cli._common import (
    console,
    current_engine,
    current_settings,
    fail,
)
from geogrid.errors import GeogridError
from geogrid.services.city import install_categories, profile_for

city_app = typer.Typer(
    help="The city served (GEOGRID_CITY_FILE): its profile and category catalogue.",
    no_args_is_help=True,
)


@city_app.command("show")
def city_show() -> None:
    """The city as it would be served: configured fields, the rest derived from the
    published boundaries (metric CRS, name, map view)."""
    settings = current_settings()
    try:
        vid, profile = profile_for(current_engine(), settings.city)
    except GeogridError as exc:
        fail(exc)
    console.print_json(
        json.dumps(
            {"city_file": str(settings.city_file or ""), "published_version": vid}
            | dataclasses.asdict(profile),
            ensure_ascii=False,
        )
    )


@city_app.command("categories")
def city_categories() -> None:
    """Store the city's incident category catalogue (its ``categories`` CSV, else the
    shipped one) in the database (insert or update by code)."""
    settings = current_settings()
    try:
        n = install_categories(current_engine(), settings.city)
    except GeogridError as exc:
        fail(exc)
    console.print(f"stored {n} incident categories")
