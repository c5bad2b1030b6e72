"""``geogrid scale``: the incident history as monthly GeoParquet, and metrics / hot spots
computed from it on a Dask cluster (``docs/scale.md``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from geogrid.cli._output import FormatOpt, print_rows
from geogrid.errors import GeogridError
from geogrid.services import archive
from geogrid.services.context import AppContext

console = Console()
err = Console(stderr=True)

scale_app = typer.Typer(
    help="Analysts past one machine: GeoParquet history and Dask.", no_args_is_help=True
)

FolderArg = Annotated[Path, typer.Argument(help="folder of incidents-YYYY-MM.parquet files")]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="a Dask scheduler address (tcp://host:8786); default: a local cluster",
    ),
]
WorkersOpt = Annotated[int, typer.Option("--workers", help="local cluster: worker processes")]


def _fail(exc: GeogridError) -> None:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(2)


def _client(scheduler: str | None, workers: int) -> tuple[Any, Any]:
    # Dask is imported by the commands that use it: 2 s that every other command of the
    # CLI would pay at start-up otherwise
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    return Client(cluster), cluster


@scale_app.command("export")
def export_cmd(
    folder: FolderArg,
    month: Annotated[
        list[str] | None, typer.Option("--month", "-m", help="YYYY-MM (repeatable; default: all)")
    ] = None,
) -> None:
    """Write the incident history as one GeoParquet file per month (no personal field)."""
    ctx = AppContext.open()
    try:
        rep = archive.export_history(
            ctx.engine, folder, months=month or None, tz=ctx.settings.city.timezone
        )
    except GeogridError as exc:
        _fail(exc)
    console.print(f"wrote {len(rep.files)} files, {rep.rows:,} incidents, to {rep.folder}")


@scale_app.command("metrics")
def metrics_cmd(
    folder: FolderArg,
    level: Annotated[str, typer.Option("--level", "-l")] = "grid",
    start: Annotated[str | None, typer.Option("--from")] = None,
    end: Annotated[str | None, typer.Option("--to")] = None,
    hotspots: Annotated[
        bool, typer.Option("--hotspots", help="Gi* of the incidents instead of the metrics")
    ] = False,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = 2,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help=".csv or .parquet (default: print)")
    ] = None,
    top: Annotated[int, typer.Option(help="rows to print")] = 20,
    fmt: FormatOpt = "table",
) -> None:
    """Per-unit metrics (or Gi* hot spots) of the GeoParquet history on a Dask cluster —
    the same numbers as ``geogrid metrics`` computes from the database."""
    from geogrid.services import scale  # heavy (dask-geopandas): this command only

    ctx = AppContext.open()
    client, cluster = _client(scheduler, workers)
    kw: dict[str, Any] = {
        "start": start,
        "end": end,
        "tz": ctx.settings.city.timezone,
        "client": client,
        "cache": ctx.unit_cache,
    }
    try:
        if hotspots:
            frame = scale.dask_hotspots(ctx.engine, folder, level, **kw)
        else:
            frame = scale.dask_metrics(ctx.engine, folder, level, **kw)
    except GeogridError as exc:
        _fail(exc)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    table = frame.drop(columns="geometry", errors="ignore")
    if out is not None:
        if out.suffix == ".parquet":
            table.to_parquet(out, index=False)
        else:
            table.to_csv(out, index=False)
        console.print(f"wrote {len(table)} rows to {out}")
        return
    cols = ["code", "name", "value", "z", "class"] if hotspots else ["code", "name", "incidents"]
    print_rows(table.head(top), fmt, columns=cols)
