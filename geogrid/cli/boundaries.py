"""The ``geogrid boundaries`` commands: import, validate, export, versions."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from geogrid.cli._common import (
    LevelOpt,
    aware,
    console,
    current_engine,
    current_settings,
    fail,
)
from geogrid.cli._output import FORMATS, FormatOpt, print_rows
from geogrid.core.validation import Finding, findings_geojson
from geogrid.errors import GeogridError, InvalidInput, TopologyError
from geogrid.services import boundaries

boundaries_app = typer.Typer(
    help="Boundary layers: import, validate, export, versions.", no_args_is_help=True
)


def _print_findings(findings: list[Finding], fmt: str) -> None:
    if fmt == "geojson":
        sys.stdout.write(json.dumps(findings_geojson(findings), ensure_ascii=False) + "\n")
        return
    if not findings and fmt == "table":
        console.print("[green]no findings[/]")
        return
    rows = []
    for f in findings:
        c = f.location.centroid if f.location is not None and not f.location.is_empty else None
        rows.append(
            {
                "kind": f.kind,
                "level": f.level or "",
                "codes": list(f.codes),
                "area_m2": round(f.area_m2, 1),
                "where": f"{c.x:.6f}, {c.y:.6f}" if c is not None else "",
                "message": f.message,
            }
        )
    columns = ["kind", "level", "codes", "area_m2", "where", "message"]
    print_rows(rows, fmt, columns=columns, title=f"{len(findings)} finding(s)", console=console)


@boundaries_app.command("import")
def boundaries_import(
    path: Path,
    level: LevelOpt,
    code_field: Annotated[str | None, typer.Option(help="field holding the unit code")] = None,
    name_field: Annotated[str | None, typer.Option(help="field holding the name")] = None,
    parent_field: Annotated[
        str | None,
        typer.Option(
            help="field holding the parent's code; without it parents are matched by containment"
        ),
    ] = None,
    crs: Annotated[str | None, typer.Option(help="source CRS: wgs84, gcj02, bd09, EPSG:n")] = None,
    layer: Annotated[str | None, typer.Option(help="layer name in a GeoPackage")] = None,
    force: Annotated[bool, typer.Option("--force", help="store even with findings")] = False,
    repair: Annotated[
        bool, typer.Option("--repair", help="make_valid invalid geometry, report the area moved")
    ] = False,
    draft: Annotated[bool, typer.Option("--draft", help="store as a draft version")] = False,
    within: Annotated[
        Path | None,
        typer.Option("--within", help="the city outline file kept with the version"),
    ] = None,
) -> None:
    """Import a boundary layer as a new boundary version (all or nothing).

    Areas are measured in the city's metric CRS (GEOGRID_CITY_FILE's metric_crs, else the
    Gauss-Kruger zone of the boundaries' centre)."""
    settings = current_settings()
    try:
        res = boundaries.import_file(
            current_engine(),
            path,
            level,
            code_field=code_field,
            name_field=name_field,
            parent_field=parent_field,
            crs=crs,
            layer=layer,
            metric_crs=settings.city.metric_crs,
            force=force,
            repair=repair,
            publish=not draft,
            within=within,
        )
    except TopologyError as exc:
        _print_findings(exc.findings, "table")
        fail(exc)
    except GeogridError as exc:
        fail(exc)
    if res.repairs is not None and len(res.repairs):
        console.print(res.repairs.to_string(index=False))
    state = "published" if res.published else "draft"
    console.print(
        f"imported {res.count} {level} unit(s) as boundary version {res.version_id} ({state}); "
        f"areas in {res.metric_crs}"
    )


@boundaries_app.command("validate")
def boundaries_validate(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="a file to check before import; without it the stored version is checked"
        ),
    ] = None,
    level: Annotated[str | None, typer.Option("--level", "-l")] = None,
    version: Annotated[int | None, typer.Option(help="stored version (default: published)")] = None,
    crs: Annotated[str | None, typer.Option()] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json, csv or geojson")] = "table",
    within: Annotated[
        Path | None,
        typer.Option(
            "--within",
            help="an outline file the layer must cover: gaps and parts outside it, with areas",
        ),
    ] = None,
) -> None:
    """Report every topology finding; exit 1 when there are any."""
    if fmt not in (*FORMATS, "geojson"):
        fail(InvalidInput("--format", fmt, "table, json, csv or geojson"))
    metric = current_settings().city.metric_crs
    findings: list[Finding] = []
    try:
        if path is not None:
            if level is None:
                fail(InvalidInput("--level", None, "a level (district, street, community, grid)"))
            else:
                findings = boundaries.validate_file(
                    current_engine(),
                    path,
                    level,
                    crs=crs,
                    version=version,
                    metric_crs=metric,
                    within=within,
                )
        else:
            findings = boundaries.validate_stored(
                current_engine(), level=level, version=version, metric_crs=metric
            )
    except GeogridError as exc:
        fail(exc)
    _print_findings(findings, fmt)
    raise typer.Exit(1 if findings else 0)


@boundaries_app.command("export")
def boundaries_export(
    path: Path,
    level: LevelOpt,
    version: Annotated[int | None, typer.Option(help="boundary version id")] = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of", help="the version published at this date-time (ISO 8601, UTC when no offset)"
        ),
    ] = None,
) -> None:
    """Export a level of a version (default: published) to GeoJSON, GPKG, .zip or .parquet."""
    try:
        n = boundaries.export_level(
            current_engine(), path, level, version=version, as_of=aware(as_of)
        )
    except GeogridError as exc:
        fail(exc)
    console.print(f"wrote {n} {level} unit(s) to {path}")


@boundaries_app.command("versions")
def boundaries_versions(fmt: FormatOpt = "table") -> None:
    """List boundary versions."""
    try:
        print_rows(boundaries.list_versions(current_engine()), fmt, console=console)
    except GeogridError as exc:
        fail(exc)
