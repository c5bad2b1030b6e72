"""Boundary files in and out, and parent matching by containment (pure: no database).

Formats: GeoJSON (``.geojson``/``.json``), GeoPackage (``.gpkg``), zipped Shapefile
(``.zip`` / ``.shp.zip``) and GeoParquet (``.parquet``). Everything is reprojected to
EPSG:4326 on the way in (pyproj; GCJ-02 and BD-09 through :mod:`geogrid.core.crs`). Areas
are measured in the metric CRS given (the city's), by default the CGCS2000 3-degree
Gauss-Kruger zone of the layer's centre (:func:`geogrid.core.crs.metric_crs_of`).
:mod:`geogrid.services.boundaries` stores what is read here.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from geogrid.core import crs as gcrs
from geogrid.core.geometry import as_multipolygons
from geogrid.core.hierarchy import LEVELS
from geogrid.errors import FileInputError, InvalidInput, RowError

__all__ = [
    "FORMATS",
    "UNIT_FILE_COLUMNS",
    "read_boundary_file",
    "read_outline_file",
    "outline_of",
    "write_boundary_file",
    "match_parents",
    "hierarchy_metric_crs",
]

FORMATS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GPKG",
    ".zip": "ESRI Shapefile",
    ".parquet": "Parquet",
}
#: the columns of a unit layer, in order (geometry MultiPolygon, EPSG:4326)
UNIT_FILE_COLUMNS = [
    "code",
    "name",
    "level",
    "parent_code",
    "population",
    "households",
    "area_m2",
    "geometry",
]
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
    metric_crs: str | pyproj.CRS | None = None,
) -> gpd.GeoDataFrame:
    """Read a boundary layer into the unit columns, in EPSG:4326.

    Parameters
    ----------
    path : str or Path
        Boundary file (GeoJSON, GeoPackage, zipped Shapefile, GeoParquet).
    level : str
        ``district``, ``street``, ``community`` or ``grid``.
    code_field, name_field, parent_field : str, optional
        Source fields (defaults: ``code``/``adcode``, ``name``, ``parent_code``/``parent``).
    crs : str, optional
        Source coordinate system when the file does not say or says wrongly: ``wgs84``,
        ``gcj02``, ``bd09`` or an EPSG code. GeoJSON files from Chinese web maps are
        usually GCJ-02 although they claim WGS84.
    layer : str, optional
        Layer name in a GeoPackage.
    metric_crs : str or pyproj.CRS, optional
        Projected CRS of ``area_m2`` (the city's); default the Gauss-Kruger zone of the
        layer's centre.

    Returns
    -------
    GeoDataFrame
        :data:`UNIT_FILE_COLUMNS`, EPSG:4326, ``area_m2`` in m² in ``metric_crs``.

    Raises
    ------
    FileInputError
        Naming the file, row and field of every problem found.
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
    out["area_m2"] = gcrs.area_m2(out.geometry, crs=metric_crs)
    return out[UNIT_FILE_COLUMNS]


def read_outline_file(
    path: str | Path, *, crs: str | None = None, layer: str | None = None
) -> shapely.MultiPolygon:
    """Read an outline (the city's, or any area a layer must cover) as one MultiPolygon in
    EPSG:4326: the union of every polygon in the file, whatever its fields.

    Parameters
    ----------
    path : str or Path
        GeoJSON, GeoPackage, zipped Shapefile or GeoParquet.
    crs : str, optional
        Source coordinate system when the file does not say (``wgs84``, ``gcj02``,
        ``bd09`` or an EPSG code), as :func:`read_boundary_file`.
    layer : str, optional
        Layer name in a GeoPackage.

    Raises
    ------
    FileInputError
        The file is missing, unreadable, or has no polygon.
    """
    path = Path(path)
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
    if crs or gdf.crs is not None:
        gdf = gcrs.to_wgs84_frame(gdf, crs)
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    polygons = geoms[np.isin(shapely.get_type_id(geoms), (3, 6))]
    if not len(polygons):
        raise FileInputError(str(path), "no polygon in the outline file")
    parts = shapely.get_parts(shapely.union_all(shapely.make_valid(polygons)))
    return shapely.MultiPolygon(list(parts[shapely.get_type_id(parts) == 3]))


def outline_of(units: gpd.GeoDataFrame) -> shapely.MultiPolygon:
    """The outline a layer draws (EPSG:4326): the union of its units with the holes
    between them filled, so that a gap enclosed by the units stays a gap to report.

    >>> from shapely import box
    >>> ring = gpd.GeoSeries([box(0, 0, 3, 1), box(0, 2, 3, 3), box(0, 1, 1, 2), box(2, 1, 3, 2)])
    >>> outline_of(gpd.GeoDataFrame(geometry=ring, crs="EPSG:4326")).area
    9.0
    """
    geoms = np.asarray(units.to_crs("EPSG:4326").geometry.values, dtype=object)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    parts = shapely.get_parts(shapely.union_all(shapely.make_valid(geoms)))
    filled = [shapely.Polygon(p.exterior) for p in parts[shapely.get_type_id(parts) == 3]]
    # an island inside another part's hole is inside that part's filled outline
    merged = shapely.get_parts(shapely.union_all(filled))
    return shapely.MultiPolygon(list(merged[shapely.get_type_id(merged) == 3]))


def _first_present(fields: list[str], names: list[str], required: bool = True) -> str | None:
    for n in names:
        if n in fields:
            return n
    return None


def _code_str(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    s = str(v).strip()
    return s or None


def _int_field(gdf: pd.DataFrame, name: str) -> pd.Series:
    """An integer attribute column (0 where missing or not a number)."""
    if name not in gdf.columns:
        return pd.Series(0, index=gdf.index, dtype="int64")
    return pd.to_numeric(gdf[name], errors="coerce").fillna(0).astype("int64")


def write_boundary_file(units: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Write units (unit columns, EPSG:4326) to any supported format; codes, names,
    parents and attributes round-trip through :func:`read_boundary_file`.

    Returns
    -------
    Path
        The file written (its format from the suffix, as in :data:`FORMATS`).
    """
    path = Path(path)
    fmt = _format_of(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = units[UNIT_FILE_COLUMNS].copy()
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


def match_parents(
    children: gpd.GeoDataFrame,
    parents: gpd.GeoDataFrame,
    metric_crs: str | pyproj.CRS | None = None,
) -> pd.Series:
    """Parent code for each child by spatial containment: the parent with the largest
    share of the child's area, measured in ``metric_crs`` (default: the zone of the
    children's centre). Children outside every parent get None.

    >>> from shapely import box
    >>> kids = gpd.GeoDataFrame({"code": ["a"]}, geometry=[box(117.0, 31.0, 117.01, 31.01)],
    ...                         crs="EPSG:4326")
    >>> dads = gpd.GeoDataFrame({"code": ["P", "Q"]},
    ...                         geometry=[box(116.9, 30.9, 117.008, 31.1),
    ...                                   box(117.008, 30.9, 117.1, 31.1)], crs="EPSG:4326")
    >>> match_parents(kids, dads).tolist()
    ['P']
    """
    if len(children) == 0 or len(parents) == 0:
        return pd.Series([None] * len(children), index=children.index, dtype=object)
    metric = metric_crs if metric_crs is not None else gcrs.metric_crs_of(children)
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


def hierarchy_metric_crs(layers: dict[str, gpd.GeoDataFrame]) -> pyproj.CRS:
    """The metric CRS of a hierarchy: the Gauss-Kruger zone of the centre of its top level
    (the first of district → grid present), i.e. of the city's extent.

    >>> from shapely import box
    >>> top = gpd.GeoDataFrame({"code": ["340101"]}, geometry=[box(116.9, 31.7, 117.5, 32.0)],
    ...                        crs="EPSG:4326")
    >>> hierarchy_metric_crs({"district": top}).to_string()
    'EPSG:4548'
    """
    for level in LEVELS:
        layer = layers.get(level)
        if layer is not None and len(layer):
            return gcrs.metric_crs_of(layer)
    return gcrs.metric_crs_of([])
