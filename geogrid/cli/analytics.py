"""``geogrid map`` (a leader's folium map as HTML) and ``geogrid metrics`` (a metrics table)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from geogrid.cli._output import FormatOpt, print_rows
from geogrid.core.maps import save_map
from geogrid.core.metric_catalogue import METRIC_COLUMNS
from geogrid.errors import GeogridError
from geogrid.services.context import AppContext
from geogrid.services.maps import leader_map
from geogrid.services.metrics import load_metrics

console = Console()
err = Console(stderr=True)

_METRIC_HELP = (
    "metric to map (see geogrid.core.metric_catalogue.METRICS), e.g. incidents, per_1000_residents"
)


def _fail(exc: GeogridError) -> None:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(2)


def map_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write")] = Path("map.html"),
    metric: Annotated[str, typer.Option("--metric", "-m", help=_METRIC_HELP)] = "incidents",
    level: Annotated[
        str, typer.Option("--level", "-l", help="district, street, community or grid")
    ] = "grid",
    start: Annotated[
        str | None,
        typer.Option("--from", help="window start, ISO date (default: 30 days before --to)"),
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="window end (exclusive), ISO date (default: now)")
    ] = None,
    category: Annotated[
        list[str] | None, typer.Option("--category", "-c", help="category code (repeatable)")
    ] = None,
    markers: Annotated[int, typer.Option(help="maximum incident markers (0: none)")] = 5000,
    hotspots: Annotated[bool, typer.Option("--hotspots/--no-hotspots")] = True,
    heat: Annotated[bool, typer.Option("--heat/--no-heat")] = True,
    basemap: Annotated[
        str | None,
        typer.Option(
            "--basemap",
            help="a folium basemap name (e.g. OpenStreetMap) or tile URL template; "
            "default: none, so the map opens offline",
        ),
    ] = None,
) -> None:
    """Write a leader's map (one self-contained HTML file that opens offline): choropleth
    of a metric, heat map, Gi* hot spots, markers."""
    ctx = AppContext.open()
    try:
        m = leader_map(
            ctx.engine,
            level,
            metric,
            start,
            end,
            category or None,
            heat=heat,
            hotspots=hotspots,
            markers=markers > 0,
            max_markers=max(markers, 1),
            tiles=basemap,
            tz=ctx.settings.city.timezone,
            cache=ctx.unit_cache,
        )
    except GeogridError as exc:
        _fail(exc)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_map(m, out)
    console.print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


def metrics_cmd(
    level: Annotated[str, typer.Option("--level", "-l")] = "grid",
    start: Annotated[str | None, typer.Option("--from")] = None,
    end: Annotated[str | None, typer.Option("--to")] = None,
    category: Annotated[list[str] | None, typer.Option("--category", "-c")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help=".csv, .geojson, .gpkg or .parquet (default: print the top rows)"
        ),
    ] = None,
    sort: Annotated[str, typer.Option(help="column to sort by (descending)")] = "incidents",
    top: Annotated[int, typer.Option(help="rows to print")] = 20,
    fmt: FormatOpt = "table",
) -> None:
    """Load metrics per unit for a window (print the top units, or write a file)."""
    ctx = AppContext.open()
    try:
        m = load_metrics(
            ctx.engine,
            level,
            start=start,
            end=end,
            categories=category or None,
            tz=ctx.settings.city.timezone,
            cache=ctx.unit_cache,
        )
    except GeogridError as exc:
        _fail(exc)
    if sort not in m.columns:
        allowed = ", ".join(c for c in METRIC_COLUMNS if c != "geometry")
        _fail(GeogridError(f"--sort={sort!r} is not a column: {allowed}"))
    if out is None:
        cols = [
            "code",
            "name",
            "incidents",
            "open_backlog",
            "overdue",
            "per_1000_residents",
            "median_hours_to_resolve",
            "workers",
            "change_pct",
            "load_index",
        ]
        title = (
            f"{level} metrics {m.attrs['start'][:10]} – {m.attrs['end'][:10]} "
            f"(boundary version {m.attrs['version_id']})"
        )
        try:
            print_rows(
                m.sort_values(sort, ascending=False).head(top),
                fmt,
                columns=cols,
                title=title,
                console=console,
            )
        except GeogridError as exc:
            _fail(exc)
        return
    suffix = out.suffix.lower()
    if suffix == ".csv":
        m.drop(columns="geometry").to_csv(out, index=False)
    elif suffix == ".parquet":
        m.to_parquet(out)
    elif suffix in (".geojson", ".json", ".gpkg"):
        m.to_file(out, driver="GPKG" if suffix == ".gpkg" else "GeoJSON")
    else:
        _fail(GeogridError(f"--out={out}: use .csv, .geojson, .gpkg or .parquet"))
    console.print(f"wrote {len(m)} {level} rows to {out}")


def register(app: typer.Typer) -> None:
    app.command("map")(map_cmd)
    app.command("metrics")(metrics_cmd)
