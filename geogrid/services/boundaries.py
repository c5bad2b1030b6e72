"""Boundary workflows: import a layer or a whole hierarchy as a new version, validate a file
or the stored hierarchy, export a level, list versions.

Reading and writing the files and matching parents are pure and live in
:mod:`geogrid.core.boundary_files`; this module adds the database. Areas (``area_m2``) are
measured in the city's metric CRS: the one configured (``settings.city.metric_crs``, passed
in as ``metric_crs``), else the CGCS2000 3-degree Gauss-Kruger zone of the centre of the new
version's top level (:func:`geogrid.core.boundary_files.hierarchy_metric_crs`), the same
rule by which :func:`geogrid.services.city.city_profile` derives the served city's CRS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyproj
import shapely
from sqlalchemy import Connection, Engine

from geogrid.core import crs as gcrs
from geogrid.core import validation
from geogrid.core.boundary_files import (
    FORMATS,
    hierarchy_metric_crs,
    match_parents,
    outline_of,
    read_boundary_file,
    read_outline_file,
    write_boundary_file,
)
from geogrid.core.hierarchy import LEVELS, PARENT_LEVEL, check_level
from geogrid.core.validation import Finding
from geogrid.errors import Conflict, InvalidInput, NotFound, TopologyError
from geogrid.store import outlines as store_outlines
from geogrid.store import units as store_units
from geogrid.store.changes import record_units_change

__all__ = [
    "FORMATS",
    "ImportResult",
    "export_level",
    "import_file",
    "import_layer",
    "list_versions",
    "match_parents",
    "read_boundary_file",
    "save_hierarchy",
    "validate_file",
    "validate_stored",
    "write_boundary_file",
]


@dataclass
class ImportResult:
    """What :func:`import_layer` stored.

    Attributes
    ----------
    version_id : int
        The new boundary version.
    level : str
        The level imported.
    count : int
        Units of that level stored.
    published : bool
        Whether the new version was published (else it is a draft).
    findings : list of Finding
        Validation findings accepted with ``force``.
    repairs : DataFrame or None
        What ``repair`` changed (code, area moved), when asked.
    metric_crs : str
        The CRS ``area_m2`` was measured in (``"EPSG:n"``).
    """

    version_id: int
    level: str
    count: int
    published: bool
    findings: list[Finding] = field(default_factory=list)
    repairs: pd.DataFrame | None = None
    metric_crs: str = ""


def _crs_name(crs: pyproj.CRS) -> str:
    auth = crs.to_authority()
    return f"{auth[0]}:{auth[1]}" if auth else crs.to_string()


_TOP = LEVELS[0]


def _require_schema(conn: Connection) -> None:
    """Refuse, with what to do, a database without (all of) geogrid's tables."""
    missing = store_outlines.missing_tables(conn)
    if missing:
        raise Conflict(
            f"the database has no table {', '.join(missing)}: run `geogrid db migrate` first"
        )


def _outline_area(outline: shapely.MultiPolygon, target: pyproj.CRS) -> float:
    return float(gcrs.area_m2(gpd.GeoSeries([outline], crs="EPSG:4326"), crs=target).iloc[0])


def import_file(
    engine: Engine,
    path: str | Path,
    level: str,
    *,
    within: str | Path | None = None,
    code_field: str | None = None,
    name_field: str | None = None,
    parent_field: str | None = None,
    crs: str | None = None,
    layer: str | None = None,
    metric_crs: str | None = None,
    force: bool = False,
    repair: bool = False,
    publish: bool = True,
) -> ImportResult:
    """Read a boundary file (:func:`read_boundary_file`) and store it with
    :func:`import_layer`; the version's source is the file's path. ``within``: an outline
    file (:func:`geogrid.core.boundary_files.read_outline_file`, same ``crs``) kept with the
    new version as the city outline."""
    units = read_boundary_file(
        path,
        level,
        code_field=code_field,
        name_field=name_field,
        parent_field=parent_field,
        crs=crs,
        layer=layer,
        metric_crs=metric_crs,
    )
    outline = read_outline_file(within, crs=crs) if within is not None else None
    return import_layer(
        engine,
        units,
        level,
        outline=outline,
        outline_source=str(within) if within is not None else None,
        source=str(path),
        metric_crs=metric_crs,
        force=force,
        repair=repair,
        publish=publish,
    )


def import_layer(
    engine: Engine,
    layer: gpd.GeoDataFrame,
    level: str,
    *,
    label: str | None = None,
    source: str | None = None,
    author: str | None = None,
    metric_crs: str | None = None,
    force: bool = False,
    publish: bool = True,
    repair: bool = False,
    outline: shapely.MultiPolygon | None = None,
    outline_source: str | None = None,
) -> ImportResult:
    """Store a layer as a new boundary version (MapIt generation).

    The new version is the published one with ``level`` replaced by ``layer``. Parents are
    matched by spatial containment when ``parent_code`` is empty. The whole hierarchy of
    the new version is validated first; any finding refuses the import (nothing is written)
    unless ``force`` (duplicate codes are refused even then: units are stored by code).
    ``repair`` runs :func:`geogrid.core.validation.repair` first and reports what changed.
    One transaction: all or nothing.

    The city outline is kept with every version (``boundary_outline``): ``outline`` when
    given, else the published version's, else, when the top level is imported, the outline
    that level draws (:func:`geogrid.core.boundary_files.outline_of`: holes between its units
    stay gaps). The top level is validated against it
    (:func:`geogrid.core.validation.validate_outline`: gaps and parts outside, with areas).

    Parameters
    ----------
    engine : Engine
    layer : GeoDataFrame
        Unit columns, EPSG:4326 (as :func:`read_boundary_file` returns).
    level : str
        ``district``, ``street``, ``community`` or ``grid``.
    label, source, author : str, optional
        Recorded on the version.
    metric_crs : str, optional
        The city's metric CRS (``settings.city.metric_crs``); default the Gauss-Kruger
        zone of the new version's top level. The layer's ``area_m2`` is measured in it.
    force, publish, repair : bool
        Store despite findings; publish (else a draft); repair invalid geometry first.
    outline : shapely.MultiPolygon, optional
        The city outline (EPSG:4326) the top level must cover; ``outline_source`` is
        recorded with it.

    Returns
    -------
    ImportResult

    Raises
    ------
    TopologyError
        With the findings, when there are any and not ``force``, or duplicate codes.
    InvalidInput
        Unknown level, or no parent level stored to match parents against.
    Conflict
        The database was never migrated (``geogrid db migrate``).
    """
    check_level(level)
    layer = layer.copy()
    layer["level"] = level
    repairs = None
    if repair:
        layer, repairs = validation.repair(layer)
    with engine.begin() as conn:
        _require_schema(conn)
        base = store_units.published_version_id(conn)
        kept = outline
        if kept is None and base is not None:
            kept = store_outlines.load_outline(conn, base)
            outline_source = None
        layers: dict[str, gpd.GeoDataFrame] = {}
        if base is not None:
            for lv in LEVELS:
                if lv != level:
                    got = store_units.load_units(conn, lv, version=base)
                    if len(got):
                        layers[lv] = got
        layers[level] = layer
        target = (
            pyproj.CRS.from_user_input(metric_crs) if metric_crs else hierarchy_metric_crs(layers)
        )
        layer["area_m2"] = gcrs.area_m2(layer.geometry, crs=target).to_numpy()
        parent_level = PARENT_LEVEL[level]
        if parent_level is None:
            layer["parent_code"] = None
        elif layer["parent_code"].isna().all():
            if parent_level not in layers:
                raise InvalidInput(
                    "level",
                    level,
                    f"a level whose parent level ({parent_level}) is already imported",
                    f"cannot match parents: no {parent_level} level is "
                    f"stored yet; import {parent_level} first",
                )
            layer["parent_code"] = match_parents(layer, layers[parent_level], target)
        layers[level] = layer
        findings = validation.validate_hierarchy(layers, metric_crs=target)
        if kept is None and level == _TOP:
            kept, outline_source = outline_of(layer), "the outline of the imported " + level
        if kept is not None and _TOP in layers:
            findings += validation.validate_outline(
                layers[_TOP], kept, level=_TOP, metric_crs=target
            )
        duplicates = [f for f in findings if f.kind == "duplicate_code"]
        if duplicates and force:
            codes = sorted({c for f in duplicates for c in f.codes})
            raise TopologyError(
                f"duplicate code(s) {', '.join(codes)}: units are stored by code, so this "
                "cannot be imported even with --force; give each unit its own code",
                duplicates,
            )
        if findings and not force:
            raise TopologyError(
                f"{len(findings)} validation finding(s): nothing was imported "
                "(use --force to store anyway, --repair to fix invalid geometry)",
                findings,
            )
        vid = store_units.create_version(
            conn,
            label or f"import {level}",
            source=source,
            author=author,
            based_on=base,
            note=f"{len(findings)} finding(s) accepted" if findings else None,
        )
        if base is not None:
            store_units.copy_units(conn, base, vid, exclude_levels=[level])
        store_units.insert_units(conn, vid, layer)
        if kept is not None:
            store_outlines.save_outline(
                conn, vid, kept, source=outline_source, area_m2=_outline_area(kept, target)
            )
        if publish:
            store_units.publish_version(conn, vid)
            record_units_change(conn, vid, None, "publish", previous_version_id=base)
    return ImportResult(vid, level, len(layer), publish, findings, repairs, _crs_name(target))


def save_hierarchy(
    engine: Engine,
    layers: dict[str, gpd.GeoDataFrame],
    *,
    label: str,
    source: str,
    publish: bool = True,
) -> int:
    """Store a whole hierarchy (unit layers with their ``area_m2``) as one new version in
    one transaction; returns its id. The outline its top level draws is kept with it
    (:func:`geogrid.core.boundary_files.outline_of`)."""
    with engine.begin() as conn:
        _require_schema(conn)
        base = store_units.published_version_id(conn)
        vid = store_units.create_version(conn, label, source=source, based_on=base)
        for lv in LEVELS:
            if lv in layers:
                store_units.insert_units(conn, vid, layers[lv])
        if _TOP in layers and len(layers[_TOP]):
            top = layers[_TOP]
            kept = outline_of(top)
            target = hierarchy_metric_crs(layers)
            store_outlines.save_outline(
                conn,
                vid,
                kept,
                source=f"the outline of {source}",
                area_m2=_outline_area(kept, target),
            )
        if publish:
            store_units.publish_version(conn, vid)
            record_units_change(conn, vid, None, "publish", previous_version_id=base)
    with engine.connect() as conn:  # planner statistics for the new rows
        store_units.analyze_units(conn)
        conn.commit()
    return vid


def validate_file(
    engine: Engine,
    path: str | Path,
    level: str,
    *,
    crs: str | None = None,
    version: int | None = None,
    metric_crs: str | None = None,
    within: str | Path | None = None,
) -> list[Finding]:
    """Findings of a boundary file before import: the layer on its own, against the
    stored parent level (of ``version``, default the published one) when the file names
    parents and that level is stored, and against an outline: the ``within`` file (any
    level; read with ``crs``), else for the top level the outline kept with the version.
    Outline findings (``outline_gap``, ``outside_outline``) carry areas in m² in
    ``metric_crs``."""
    units = read_boundary_file(path, level, crs=crs, metric_crs=metric_crs)
    parents = None
    parent_level = PARENT_LEVEL[level]
    if parent_level and units["parent_code"].notna().any():
        try:
            parents = store_units.load_units(engine, parent_level, version=version)
        except NotFound:
            parents = None
    found = validation.validate_units(units, level=level, parents=parents, metric_crs=metric_crs)
    outline = read_outline_file(within, crs=crs) if within is not None else None
    if outline is None and level == _TOP:
        outline = _stored_outline(engine, version)
    if outline is not None:
        found += validation.validate_outline(units, outline, level=level, metric_crs=metric_crs)
    return found


def _stored_outline(engine: Engine, version: int | None) -> shapely.MultiPolygon | None:
    """The outline kept with a version (default: the published one), if any."""
    with engine.connect() as conn:
        if store_outlines.missing_tables(conn):
            return None
        try:
            vid = store_units.resolve_version(conn, version)
        except NotFound:
            return None
        return store_outlines.load_outline(conn, vid)


def validate_stored(
    engine: Engine,
    *,
    level: str | None = None,
    version: int | None = None,
    metric_crs: str | None = None,
) -> list[Finding]:
    """Findings of a stored version (default the published one): every level, or one level
    against its parent level."""
    if level is not None:
        check_level(level)
    present: dict[str, gpd.GeoDataFrame] = {}
    for lv in LEVELS:
        units = store_units.load_units(engine, lv, version=version)
        if len(units):
            present[lv] = units
    if level:
        keep = {level, PARENT_LEVEL[level]}
        present = {k: v for k, v in present.items() if k in keep}
    findings = validation.validate_hierarchy(present, metric_crs=metric_crs)
    outline = _stored_outline(engine, version) if _TOP in present else None
    if outline is not None:
        findings += validation.validate_outline(
            present[_TOP], outline, level=_TOP, metric_crs=metric_crs
        )
    return [f for f in findings if f.level == level] if level else findings


def export_level(
    engine: Engine,
    path: str | Path,
    level: str,
    *,
    version: int | None = None,
    as_of: datetime | None = None,
) -> int:
    """Write a level of a version (default: the published one, or the one published at
    ``as_of``) to a boundary file; returns the number of units written."""
    units = store_units.load_units(engine, check_level(level), version=version, as_of=as_of)
    write_boundary_file(units, path)
    return len(units)


def list_versions(engine: Engine) -> pd.DataFrame:
    """Every boundary version, oldest first, with its unit count."""
    return store_units.list_versions(engine)
