"""``geogrid reference``: reference line layers (roads, rivers, block edges) that
auto-partition cuts along."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from geogrid.errors import GeogridError
from geogrid.services import plans
from geogrid.services.context import AppContext

reference_app = typer.Typer(
    help="Reference lines (roads, rivers, block edges) that auto-partition cuts along.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True, soft_wrap=True)


@reference_app.command("import")
def import_cmd(
    path: Annotated[
        Path, typer.Argument(help="a line file: GeoJSON, GeoPackage, Shapefile, GeoParquet")
    ],
    layer: Annotated[str | None, typer.Option(help="layer name (default: the file's stem)")] = None,
    kind: Annotated[str, typer.Option(help="road, river, block or other")] = "road",
    crs: Annotated[
        str | None,
        typer.Option(
            help="the coordinates' CRS if the file does not say: wgs84, gcj02, bd09, EPSG"
        ),
    ] = None,
    file_layer: Annotated[str | None, typer.Option(help="a layer of a GeoPackage")] = None,
    name_field: Annotated[str | None, typer.Option(help="the column naming each line")] = None,
) -> None:
    """Import a line file as a reference layer (replacing an earlier import of it);
    polygons give their outlines."""
    try:
        ctx = AppContext.open()
        try:
            res = plans.import_reference(
                ctx,
                path,
                layer=layer,
                kind=kind,
                crs=crs,
                file_layer=file_layer,
                name_field=name_field,
            )
        finally:
            ctx.close()
    except GeogridError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    console.print(
        f"reference layer '{res['layer']}' ({res['kind']}): {res['lines']:,} lines, "
        f"bounds {', '.join(f'{v:.5f}' for v in res['bounds'])}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(reference_app, name="reference")
