"""Boundary files in and out, parent matching, and the import that stores a new version.

Formats: GeoJSON (``.geojson``/``.json``), GeoPackage (``.gpkg``), zipped Shapefile
(``.zip`` / ``.shp.zip``) and GeoParquet (``.parquet``). Everything is reprojected to
EPSG:4326 on the way in (pyproj; GCJ-02 and BD-09 through :mod:`geogrid.core.crs`); areas are
computed in the metric CRS of the data (CGCS2000 3-degree Gauss-Kruger zone).
"""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Engine, text

from geogrid.core import crs as gcrs
from geogrid.core.geometry import as_multipolygons
from geogrid.core.hierarchy import LEVELS, PARENT_LEVEL
from geogrid.errors import FileInputError, InvalidInput, RowError, TopologyError
from geogrid.store import units as store_units
from geogrid.store.changes import record_units_change

__all__ = [
    "FORMATS",
    "PARENT_LEVEL",
    "read_boundary_file",
    "write_boundary_file",
    "match_parents",
    "ImportResult",
    "import_layer",
    "save_hierarchy",
]

FORMATS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GPKG",
    ".zip": "ESRI Shapefile",
    ".parquet": "Parquet",
}
# Shapefile field names are limited to 10 characters.
_SHP_NAMES = {"parent_code": "parent"}


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InvalidInput(
            "path", str(path), "a .geojson, .json, .gpkg, .zip (Shapefile) or .parquet file"
        )
    return FORMATS[suffix]


def read_boundary_file(
    path: str | Path,
    level: str,
    *,
    code_field: str | None = None,
    name_field: str | None = None,
    parent_field: str | None = None,
    crs: str | None = None,
    layer: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a boundary layer into the unit columns, in EPSG:4326.

    Parameters
    ----------
    path : boundary file (GeoJSON, GeoPackage, zipped Shapefile, GeoParquet)
    level : ``district``, ``street``, ``community`` or ``grid``
    code_field, name_field, parent_field : source fields (defaults: ``code``/``adcode``,
        ``name``, ``parent_code``/``parent``)
    crs : source coordinate system when the file does not say or says wrongly:
        ``wgs84``, ``gcj02``, ``bd09`` or an EPSG code. GeoJSON files from Chinese web
        maps are usually GCJ-02 although they claim WGS84.

    Raises
    ------
    FileInputError naming the file, row and field of every problem found.
    """
    path = Path(path)
    if level not in LEVELS:
        raise InvalidInput("level", level, ", ".join(LEVELS))
    if not path.exists():
        raise FileInputError(str(path), "file not found")
    fmt = _format_of(path)
    try:
        if fmt == "Parquet":
            gdf = gpd.read_parquet(path)
        else:
            gdf = gpd.read_file(path, layer=layer) if layer else gpd.read_file(path)
    except Exception as exc:  # pyogrio / pyarrow raise many kinds
        raise FileInputError(str(path), f"cannot be read as {fmt}: {exc}") from exc
    fields = list(gdf.columns)
    code_field = code_field or _first_present(fields, ["code", "adcode", "CODE"])
    name_field = name_field or _first_present(fields, ["name", "NAME"])
    if parent_field is None:
        parent_field = _first_present(fields, ["parent_code", "parent"], required=False)
    errors: list[RowError] = []
    for what, f in (("code", code_field), ("name", name_field), ("parent", parent_field)):
        if f is not None and f not in gdf.columns:
            errors.append(
                RowError(
                    str(path),
                    None,
                    f,
                    f"{what} field {f!r} is not in the "
                    f"file (fields: {', '.join(map(str, fields))})",
                )
            )
    if code_field is None:
        errors.append(RowError(str(path), None, None, "no code field: pass --code-field"))
    if name_field is None:
        errors.append(RowError(str(path), None, None, "no name field: pass --name-field"))
    if errors:
        raise FileInputError(str(path), errors)

    source_crs = crs
    if source_crs is None:
        source_crs = "EPSG:4326" if gdf.crs is None else gdf.crs.to_string()
    gdf = (
        gcrs.to_wgs84_frame(gdf, source_crs if crs else None)
        if crs or gdf.crs
        else (gdf.set_crs("EPSG:4326"))
    )

    codes = gdf[code_field]
    for i, c in enumerate(codes):
        if c is None or (isinstance(c, float) and np.isnan(c)) or str(c).strip() == "":
            errors.append(RowError(str(path), i + 1, code_field, "code is missing"))
    for i, g in enumerate(gdf.geometry.values):
        if g is None:
            errors.append(RowError(str(path), i + 1, "geometry", "geometry is missing"))
        elif g.geom_type not in ("Polygon", "MultiPolygon"):
            errors.append(RowError(str(path), i + 1, "geometry", f"{g.geom_type} is not a polygon"))
    if errors:
        raise FileInputError(str(path), errors)

    out = gpd.GeoDataFrame(
        {
            "code": codes.map(_code_str),
            "name": gdf[name_field].astype(str),
            "level": level,
            "parent_code": (gdf[parent_field].map(_code_str) if parent_field else None),
            "population": _int_field(gdf, "population"),
            "households": _int_field(gdf, "households"),
        },
        geometry=as_multipolygons(gdf.geometry.values),
        crs="EPSG:4326",
    )
    out["area_m2"] = gcrs.area_m2(out.geometry)
    return out[
        ["code", "name", "level", "parent_code", "population", "households", "area_m2", "geometry"]
    ]


def _first_present(fields: list[str], names: list[str], required: bool = True) -> str | None:
    for n in names:
        if n in fields:
            return n
    return None


def _code_str(v) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    s = str(v).strip()
    return s or None


def _int_field(gdf: pd.DataFrame, name: str) -> pd.Series:
    if name not in gdf.columns:
        return pd.Series(0, index=gdf.index, dtype="int64")
    return pd.to_numeric(gdf[name], errors="coerce").fillna(0).astype("int64")


def write_boundary_file(units: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Write units (unit columns, EPSG:4326) to any supported format; codes, names,
    parents and attributes round-trip through :func:`read_boundary_file`."""
    path = Path(path)
    fmt = _format_of(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = [
        "code",
        "name",
        "level",
        "parent_code",
        "population",
        "households",
        "area_m2",
        "geometry",
    ]
    data = units[cols].copy()
    if fmt == "Parquet":
        data.to_parquet(path)
    elif fmt == "ESRI Shapefile":
        data = data.rename(columns=_SHP_NAMES)
        with tempfile.TemporaryDirectory() as tmp:
            stem = path.name[: -len(".shp.zip")] if path.name.endswith(".shp.zip") else path.stem
            shp = Path(tmp) / f"{stem}.shp"
            data.to_file(shp, driver="ESRI Shapefile", encoding="UTF-8")
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
                for f in sorted(Path(tmp).iterdir()):
                    zf.write(f, f.name)
    else:
        if path.exists():
            path.unlink()
        data.to_file(path, driver=fmt)
    return path


def match_parents(children: gpd.GeoDataFrame, parents: gpd.GeoDataFrame) -> pd.Series:
    """Parent code for each child by spatial containment: the parent with the largest
    share of the child's area (metric CRS). Children outside every parent get None."""
    if len(children) == 0 or len(parents) == 0:
        return pd.Series([None] * len(children), index=children.index, dtype=object)
    metric = gcrs.metric_crs(float(children.geometry.union_all().centroid.x))
    cm = children.geometry.to_crs(metric).values
    pm = parents.geometry.to_crs(metric).values
    tree = shapely.STRtree(pm)
    ci, pi = tree.query(cm, predicate="intersects")
    areas = shapely.area(shapely.intersection(cm[ci], pm[pi]))
    df = pd.DataFrame({"c": ci, "p": pi, "a": areas})
    best = df.sort_values(["c", "a"], ascending=[True, False]).drop_duplicates("c")
    best = best[best["a"] > 0]
    out = pd.Series([None] * len(children), index=children.index, dtype=object)
    out.iloc[best["c"].to_numpy()] = parents["code"].to_numpy()[best["p"].to_numpy()]
    return out


@dataclass
class ImportResult:
    version_id: int
    level: str
    count: int
    published: bool
    findings: list = field(default_factory=list)
    repairs: pd.DataFrame | None = None


def import_layer(
    engine: Engine,
    layer: gpd.GeoDataFrame,
    level: str,
    *,
    label: str | None = None,
    source: str | None = None,
    author: str | None = None,
    force: bool = False,
    publish: bool = True,
    repair: bool = False,
) -> ImportResult:
    """Store a layer as a new boundary version (MapIt generation).

    The new version is the published one with ``level`` replaced by ``layer``. Parents are
    matched by spatial containment when ``parent_code`` is empty. The whole hierarchy of
    the new version is validated first; any finding refuses the import (nothing is written)
    unless ``force``. ``repair`` runs :func:`geogrid.core.validation.repair` first and reports
    what changed. One transaction: all or nothing.
    """
    from geogrid.core import validation

    if level not in LEVELS:
        raise InvalidInput("level", level, ", ".join(LEVELS))
    layer = layer.copy()
    layer["level"] = level
    repairs = None
    if repair:
        layer, repairs = validation.repair(layer)
        layer["area_m2"] = gcrs.area_m2(layer.geometry)
    with engine.begin() as conn:
        base = store_units.published_version_id(conn)
        layers: dict[str, gpd.GeoDataFrame] = {}
        if base is not None:
            for lv in LEVELS:
                if lv != level:
                    got = store_units.load_units(conn, lv, version=base)
                    if len(got):
                        layers[lv] = got
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
            layer["parent_code"] = match_parents(layer, layers[parent_level])
        layers[level] = layer
        findings = validation.validate_hierarchy(layers)
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
        if publish:
            store_units.publish_version(conn, vid)
            record_units_change(conn, vid, None, "publish", previous_version_id=base)
    return ImportResult(vid, level, len(layer), publish, findings, repairs)


def save_hierarchy(
    engine: Engine,
    layers: dict[str, gpd.GeoDataFrame],
    *,
    label: str,
    source: str,
    publish: bool = True,
) -> int:
    """Store a whole hierarchy as one new version in one transaction; returns its id."""
    with engine.begin() as conn:
        base = store_units.published_version_id(conn)
        vid = store_units.create_version(conn, label, source=source, based_on=base)
        for lv in LEVELS:
            if lv in layers:
                store_units.insert_units(conn, vid, layers[lv])
        if publish:
            store_units.publish_version(conn, vid)
            record_units_change(conn, vid, None, "publish", previous_version_id=base)
    with engine.connect() as conn:  # planner statistics for the new rows
        conn.execute(text("ANALYZE unit"))
        conn.commit()
    return vid
