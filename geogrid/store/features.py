"""Feature queries behind OGC API - Features (``/ogc``): pages, counts, single items.

Geometry is EPSG:4326 (CRS84 lon/lat) and leaves PostGIS as GeoJSON text
(``ST_AsGeoJSON(geom, 7)``: 7 decimals ≈ 1 cm), never parsed in Python.

Boundary collections (``districts`` … ``grids``) have a temporal extent: a unit is valid
while its boundary version is published, ``[published_at, retired_at)``. Without
``datetime`` the published version is served; with ``datetime`` every version whose
validity intersects the interval (a retired unit's feature id is ``code@v<version>``).
Incidents are filtered on ``reported_at``. Filter values are checked by the caller
(:mod:`geogrid.services.features`); only filter *names* are checked here, since they
become column names of the SQL text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, text

from geogrid.core.ogc import INCIDENT_FILTERS, UNIT_FILTERS, Extent
from geogrid.errors import InvalidInput

__all__ = [
    "INCIDENT_PROPERTIES",
    "Page",
    "incident_extent",
    "incident_page",
    "incident_item",
    "unit_extent",
    "unit_page",
    "unit_item",
]

Interval = tuple[datetime | None, datetime | None]
#: columns of an incident feature (besides ``id`` and the geometry)
INCIDENT_PROPERTIES = (
    "category",
    "status",
    "reported_at",
    "due_at",
    "resolved_at",
    "closed_at",
    "assigned_level",
    "assigned_unit",
    "grid_code",
    "community_code",
    "street_code",
    "district_code",
    "source_id",
)


@dataclass
class Page:
    """Rows of one page (dicts with a ``geometry`` GeoJSON text and an ``id``) and the
    number of items matching the filters."""

    rows: list[dict[str, Any]]
    matched: int


def _bbox_cond(bbox: Sequence[float], col: str, params: dict[str, Any]) -> str:
    """``ST_Intersects`` with a CRS84 bbox; west > east crosses the antimeridian."""
    w, s, e, n = bbox
    params.update(bw=w, bs=s, be=e, bn=n)
    if w <= e:
        return f"ST_Intersects({col}, ST_MakeEnvelope(:bw, :bs, :be, :bn, 4326))"
    return (
        f"(ST_Intersects({col}, ST_MakeEnvelope(:bw, :bs, 180, :bn, 4326)) OR "
        f"ST_Intersects({col}, ST_MakeEnvelope(-180, :bs, :be, :bn, 4326)))"
    )


def _version_cond(interval: Interval | None, params: dict[str, Any]) -> str:
    if interval is None:
        return "v.status = 'published'"
    start, end = interval
    conds = ["v.published_at IS NOT NULL"]
    if end is not None:
        conds.append("v.published_at <= :t_end")
        params["t_end"] = end
    if start is not None:
        conds.append("(v.retired_at IS NULL OR v.retired_at > :t_start)")
        params["t_start"] = start
    return " AND ".join(conds)


def _list(values: str | Sequence[str]) -> list[str]:
    out: list[str] = []
    for v in [values] if isinstance(values, str) else values:
        out.extend(p.strip() for p in str(v).split(",") if p.strip())
    return out


def _filter_conds(
    filters: Mapping[str, Sequence[str]] | None,
    allowed: Sequence[str],
    alias: str,
    cond: list[str],
    params: dict[str, Any],
) -> None:
    """Add ``<alias>.<name> = ANY(:f_<name>)`` to ``cond`` for each filter; InvalidInput
    for a name not in ``allowed`` (the name becomes a column of the SQL text)."""
    for name, values in (filters or {}).items():
        if name not in allowed:
            raise InvalidInput(name, values, f"a filter of {', '.join(allowed)}")
        params[f"f_{name}"] = _list(values)
        cond.append(f"{alias}.{name} = ANY(:f_{name})")


_UNIT_SELECT = (
    "SELECT u.code, u.name, u.level, u.parent_code, u.population, u.households, u.area_m2, "
    "u.version_id, v.status AS version_status, "
    "coalesce(u.valid_from, v.published_at) AS valid_from, "
    "v.retired_at AS valid_to, ST_AsGeoJSON(u.geom, 7) AS geometry "
    "FROM unit u JOIN boundary_version v ON v.id = u.version_id"
)


def _unit_row(r: RowMapping) -> dict[str, Any]:
    d = dict(r)
    d["id"] = d["code"] if d["version_status"] == "published" else f"{d['code']}@v{d['version_id']}"
    return d


def unit_page(
    conn: Connection,
    level: str,
    *,
    bbox: Sequence[float] | None = None,
    interval: Interval | None = None,
    filters: Mapping[str, Sequence[str]] | None = None,
    offset: int = 0,
    limit: int = 10,
) -> Page:
    """One page of units of ``level`` (ordered by code, then version), with the count of
    all matches. ``filters``: ``code`` and/or ``parent_code`` → accepted values."""
    params: dict[str, Any] = {"level": level, "lim": int(limit), "off": int(offset)}
    cond = ["u.level = :level", _version_cond(interval, params)]
    if bbox is not None:
        cond.append(_bbox_cond(bbox, "u.geom", params))
    _filter_conds(filters, UNIT_FILTERS, "u", cond, params)
    where = " AND ".join(cond)
    matched = conn.execute(
        text(
            f"SELECT count(*) FROM unit u JOIN boundary_version v ON v.id = u.version_id "
            f"WHERE {where}"
        ),
        params,
    ).scalar_one()
    rows = (
        conn.execute(
            text(
                f"{_UNIT_SELECT} WHERE {where} ORDER BY u.code, u.version_id LIMIT :lim OFFSET :off"
            ),
            params,
        )
        .mappings()
        .all()
    )
    return Page([_unit_row(r) for r in rows], int(matched))


def unit_item(conn: Connection, level: str, feature_id: str) -> dict[str, Any] | None:
    """One unit by feature id: ``code`` (published version) or ``code@v<version>``."""
    params: dict[str, Any] = {"level": level}
    if "@v" in feature_id:
        code, _, v = feature_id.partition("@v")
        if not v.isdigit():
            return None
        params.update(code=code, vid=int(v))
        cond = "u.code = :code AND u.version_id = :vid"
    else:
        params["code"] = feature_id
        cond = "u.code = :code AND v.status = 'published'"
    r = (
        conn.execute(text(f"{_UNIT_SELECT} WHERE u.level = :level AND {cond}"), params)
        .mappings()
        .first()
    )
    return None if r is None else _unit_row(r)


_INCIDENT_SELECT = (
    "SELECT i.id, "
    + ", ".join(f"i.{c}" for c in INCIDENT_PROPERTIES)
    + ", ST_AsGeoJSON(i.geom, 7) AS geometry FROM incident i"
)


def incident_page(
    conn: Connection,
    *,
    bbox: Sequence[float] | None = None,
    interval: Interval | None = None,
    filters: Mapping[str, Sequence[str]] | None = None,
    offset: int = 0,
    limit: int = 10,
) -> Page:
    """One page of incidents (ordered by id) with the count of all matches. ``interval``
    is closed and applies to ``reported_at``; ``filters`` are among
    :data:`geogrid.core.ogc.INCIDENT_FILTERS` (each a list of accepted values, checked
    by the caller)."""
    params: dict[str, Any] = {"lim": int(limit), "off": int(offset)}
    cond = ["true"]
    if bbox is not None:
        cond.append(_bbox_cond(bbox, "i.geom", params))
    if interval is not None:
        start, end = interval
        if start is not None:
            cond.append("i.reported_at >= :t_start")
            params["t_start"] = start
        if end is not None:
            cond.append("i.reported_at <= :t_end")
            params["t_end"] = end
    _filter_conds(filters, INCIDENT_FILTERS, "i", cond, params)
    where = " AND ".join(cond)
    matched = conn.execute(
        text(f"SELECT count(*) FROM incident i WHERE {where}"), params
    ).scalar_one()
    rows = (
        conn.execute(
            text(f"{_INCIDENT_SELECT} WHERE {where} ORDER BY i.id LIMIT :lim OFFSET :off"), params
        )
        .mappings()
        .all()
    )
    return Page([dict(r) for r in rows], int(matched))


def incident_item(conn: Connection, feature_id: str) -> dict[str, Any] | None:
    """One incident by feature id (its numeric id), or None."""
    if not feature_id.isdigit():
        return None
    r = (
        conn.execute(text(f"{_INCIDENT_SELECT} WHERE i.id = :id"), {"id": int(feature_id)})
        .mappings()
        .first()
    )
    return None if r is None else dict(r)


def incident_extent(conn: Connection) -> Extent:
    """Extent of the incidents: their points (estimated from the statistics when present)
    and ``[min, max]`` of ``reported_at``."""
    b = conn.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT coalesce(ST_EstimatedExtent('incident', 'geom')::geometry, "
            "ST_Extent(geom)::geometry) AS e FROM incident) q"
        )
    ).first()
    t = conn.execute(text("SELECT min(reported_at), max(reported_at) FROM incident")).one()
    return Extent(
        None if b is None or b[0] is None else (float(b[0]), float(b[1]), float(b[2]), float(b[3])),
        None if t[0] is None else (t[0], t[1]),
    )


def unit_extent(conn: Connection, level: str) -> Extent:
    """Extent of the published units of ``level`` and ``[first publication, open)``."""
    b = conn.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(u.geom) "
            "AS e FROM unit u JOIN boundary_version v ON v.id = u.version_id "
            "WHERE v.status = 'published' AND u.level = :lv) q"
        ),
        {"lv": level},
    ).one()
    t = conn.execute(
        text("SELECT min(published_at) FROM boundary_version WHERE published_at IS NOT NULL")
    ).scalar_one()
    return Extent(
        None if b[0] is None else (float(b[0]), float(b[1]), float(b[2]), float(b[3])),
        None if t is None else (t, None),
    )
