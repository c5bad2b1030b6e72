"""Feature queries behind OGC API - Features (``/ogc``): pages, counts, single items.

Geometry is EPSG:4326 (CRS84 lon/lat) and leaves PostGIS as GeoJSON text
(``ST_AsGeoJSON(geom, 7)``: 7 decimals ≈ 1 cm), never parsed in Python.

Boundary collections (``districts`` … ``grids``) have a temporal extent: a unit is valid
while its boundary version is published, ``[published_at, retired_at)``. Without
``datetime`` the published version is served; with ``datetime`` every version whose
validity intersects the interval (a retired unit's feature id is ``code@v<version>``).
Incidents are filtered on ``reported_at``. Filters (``?name=value`` and CQL2) arrive as
the neutral expression of :mod:`geogrid.core.cql2`, already checked against the
collection's queryables; :func:`filter_clause` writes its SQL form with SQLAlchemy Core
(names pick columns from :data:`INCIDENT_COLUMNS` / :data:`UNIT_COLUMNS`, values are
bound parameters). Counts stop at :data:`geogrid.core.ogc.COUNT_CAP`.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    RowMapping,
    Select,
    and_,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    true,
)

from geogrid.core.cql2 import (
    And,
    Between,
    Bool,
    Compare,
    Expr,
    InList,
    IsNull,
    Like,
    Not,
    Or,
    Spatial,
)
from geogrid.core.ogc import COUNT_CAP, Extent
from geogrid.store.tables import boundary_version, incident, unit

__all__ = [
    "INCIDENT_COLUMNS",
    "INCIDENT_PROPERTIES",
    "UNIT_COLUMNS",
    "filter_clause",
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
    number of items matching the filters (None when more than
    :data:`geogrid.core.ogc.COUNT_CAP` match: counting them all would cost a full scan)."""

    rows: list[dict[str, Any]]
    matched: int | None


def _bbox_clause(bbox: Sequence[float], col: ColumnElement[Any]) -> ColumnElement[bool]:
    """``ST_Intersects`` with a CRS84 bbox; west > east crosses the antimeridian."""
    w, s, e, n = (float(v) for v in bbox)
    if w <= e:
        return func.ST_Intersects(col, func.ST_MakeEnvelope(w, s, e, n, 4326))
    return or_(
        func.ST_Intersects(col, func.ST_MakeEnvelope(w, s, 180.0, n, 4326)),
        func.ST_Intersects(col, func.ST_MakeEnvelope(-180.0, s, e, n, 4326)),
    )


_SPATIAL_FUNCS = {
    "intersects": func.ST_Intersects,
    "disjoint": func.ST_Disjoint,
    "within": func.ST_Within,
    "contains": func.ST_Contains,
}
_COMPARE_OPS = {
    "=": operator.eq,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def filter_clause(expr: Expr, columns: Mapping[str, ColumnElement[Any]]) -> ColumnElement[bool]:
    """The SQL form of a neutral filter expression (:mod:`geogrid.core.cql2`): SQLAlchemy
    Core over ``columns`` (queryable name → column), every value a bound parameter.

    A name missing from ``columns`` is a programming error (the core checked the names
    against the same queryables) and raises KeyError rather than reaching SQL.
    """
    if isinstance(expr, Bool):
        return true() if expr.value else false()
    if isinstance(expr, And):
        return and_(*(filter_clause(e, columns) for e in expr.items))
    if isinstance(expr, Or):
        return or_(*(filter_clause(e, columns) for e in expr.items))
    if isinstance(expr, Not):
        return not_(filter_clause(expr.item, columns))
    col = columns[expr.prop]
    if isinstance(expr, Compare):
        lhs = func.lower(col) if expr.nocase else col
        return cast(ColumnElement[bool], _COMPARE_OPS[expr.op](lhs, expr.value))
    if isinstance(expr, Like):
        lhs = func.lower(col) if expr.nocase else col
        clause = lhs.like(expr.pattern, escape="\\")
        return not_(clause) if expr.negate else clause
    if isinstance(expr, InList):
        clause = col.in_(list(expr.values))
        return not_(clause) if expr.negate else clause
    if isinstance(expr, Between):
        clause = col.between(expr.low, expr.high)
        return not_(clause) if expr.negate else clause
    if isinstance(expr, IsNull):
        return col.is_not(None) if expr.negate else col.is_(None)
    if isinstance(expr, Spatial):
        geom = func.ST_GeomFromText(expr.wkt, 4326)
        return cast(ColumnElement[bool], _SPATIAL_FUNCS[expr.op](col, geom))
    raise TypeError(f"not a filter expression: {expr!r}")  # pragma: no cover


def _capped_count(base: Select[Any]) -> Select[Any]:
    """``SELECT count(*)`` of the rows ``base`` selects, stopping at COUNT_CAP + 1."""
    sub = base.with_only_columns(literal(1)).order_by(None).limit(COUNT_CAP + 1).subquery()
    return select(func.count()).select_from(sub)


def _page(
    conn: Connection,
    base: Select[Any],
    order: Sequence[ColumnElement[Any]],
    offset: int,
    limit: int,
    keyset: ColumnElement[bool] | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of ``base`` and the (capped) count of all its rows, in ONE round trip:
    the count rides along as an uncorrelated scalar subquery (run once, an InitPlan);
    only a page past the end needs a second statement for it."""
    page = base if keyset is None else base.where(keyset)  # the count ignores the key
    q = (
        page.add_columns(_capped_count(base).scalar_subquery().label("_matched"))
        .order_by(*order)
        .limit(int(limit))
        .offset(int(offset))
    )
    rows = [dict(r) for r in conn.execute(q).mappings().all()]
    if rows:
        n = int(rows[0]["_matched"])
        for r in rows:
            del r["_matched"]
    else:
        n = int(conn.execute(_capped_count(base)).scalar_one())
    return rows, (None if n > COUNT_CAP else n)


def _order(
    sort: Sequence[tuple[str, bool]], columns: Mapping[str, ColumnElement[Any]]
) -> list[ColumnElement[Any]]:
    out: list[ColumnElement[Any]] = []
    for name, desc in sort:
        c = columns[name]
        out.append(c.desc().nulls_last() if desc else c.asc().nulls_last())
    return out


_u = unit.alias("u")
_v = boundary_version.alias("v")
#: unit queryable → column
UNIT_COLUMNS: dict[str, ColumnElement[Any]] = {
    "code": _u.c.code,
    "name": _u.c.name,
    "parent_code": _u.c.parent_code,
    "population": _u.c.population,
    "households": _u.c.households,
    "area_m2": _u.c.area_m2,
    "geometry": _u.c.geom,
}
_UNIT_COLS = (
    _u.c.code,
    _u.c.name,
    _u.c.level,
    _u.c.parent_code,
    _u.c.population,
    _u.c.households,
    _u.c.area_m2,
    _u.c.version_id,
    _v.c.status.label("version_status"),
    func.coalesce(_u.c.valid_from, _v.c.published_at).label("valid_from"),
    _v.c.retired_at.label("valid_to"),
    func.ST_AsGeoJSON(_u.c.geom, 7).label("geometry"),
)


def _version_clause(interval: Interval | None) -> ColumnElement[bool]:
    if interval is None:
        return _v.c.status == "published"
    start, end = interval
    conds: list[ColumnElement[bool]] = [_v.c.published_at.is_not(None)]
    if end is not None:
        conds.append(_v.c.published_at <= end)
    if start is not None:
        conds.append(or_(_v.c.retired_at.is_(None), _v.c.retired_at > start))
    return and_(*conds)


def _unit_row(r: RowMapping | dict[str, Any]) -> dict[str, Any]:
    d = dict(r)
    d["id"] = d["code"] if d["version_status"] == "published" else f"{d['code']}@v{d['version_id']}"
    return d


def unit_page(
    conn: Connection,
    level: str,
    *,
    bbox: Sequence[float] | None = None,
    interval: Interval | None = None,
    where: Expr | None = None,
    sort: Sequence[tuple[str, bool]] = (),
    offset: int = 0,
    limit: int = 10,
) -> Page:
    """One page of units of ``level`` (ordered by ``sort``, then code and version), with
    the (capped) count of all matches. ``where``: a filter over :data:`UNIT_COLUMNS`."""
    conds = [_u.c.level == level, _version_clause(interval)]
    if bbox is not None:
        conds.append(_bbox_clause(bbox, _u.c.geom))
    if where is not None:
        conds.append(filter_clause(where, UNIT_COLUMNS))
    base = select(*_UNIT_COLS).select_from(_u.join(_v, _v.c.id == _u.c.version_id)).where(*conds)
    order = [*_order(sort, UNIT_COLUMNS), _u.c.code, _u.c.version_id]
    rows, matched = _page(conn, base, order, offset, limit)
    return Page([_unit_row(r) for r in rows], matched)


_UNIT_SELECT = (
    "SELECT u.code, u.name, u.level, u.parent_code, u.population, u.households, u.area_m2, "
    "u.version_id, v.status AS version_status, "
    "coalesce(u.valid_from, v.published_at) AS valid_from, "
    "v.retired_at AS valid_to, ST_AsGeoJSON(u.geom, 7) AS geometry "
    "FROM unit u JOIN boundary_version v ON v.id = u.version_id"
)


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
_i = incident.alias("i")
#: incident queryable → column
INCIDENT_COLUMNS: dict[str, ColumnElement[Any]] = {
    "id": _i.c.id,
    **{c: _i.c[c] for c in INCIDENT_PROPERTIES},
    "geometry": _i.c.geom,
}
_INCIDENT_COLS = (
    _i.c.id,
    *(_i.c[c] for c in INCIDENT_PROPERTIES),
    func.ST_AsGeoJSON(_i.c.geom, 7).label("geometry"),
)


def incident_page(
    conn: Connection,
    *,
    bbox: Sequence[float] | None = None,
    interval: Interval | None = None,
    where: Expr | None = None,
    sort: Sequence[tuple[str, bool]] = (),
    offset: int = 0,
    limit: int = 10,
    after: int | None = None,
) -> Page:
    """One page of incidents (ordered by ``sort``, then id) with the (capped) count of
    all matches. ``interval`` is closed and applies to ``reported_at``; ``where`` is a
    filter over :data:`INCIDENT_COLUMNS` (checked by the core); ``after`` (keyset paging,
    default order only) starts after that id, through the primary key."""
    conds: list[ColumnElement[bool]] = []
    if bbox is not None:
        conds.append(_bbox_clause(bbox, _i.c.geom))
    if interval is not None:
        start, end = interval
        if start is not None:
            conds.append(_i.c.reported_at >= start)
        if end is not None:
            conds.append(_i.c.reported_at <= end)
    if where is not None:
        conds.append(filter_clause(where, INCIDENT_COLUMNS))
    base = select(*_INCIDENT_COLS).where(*conds)
    key = None if after is None else _i.c.id > int(after)
    order = [*_order(sort, INCIDENT_COLUMNS), _i.c.id]
    rows, matched = _page(conn, base, order, offset, limit, key)
    return Page(rows, matched)


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
    # incident is partitioned by month (revision 0015): a partitioned parent has no
    # statistics of its own (ST_EstimatedExtent on it fails), so the extent is the union of
    # each partition's estimate, or of its exact extent when it has not been analysed yet
    parts = (
        conn.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'incident'::regclass ORDER BY 1"
            )
        )
        .scalars()
        .all()
    )
    pieces = (
        " UNION ALL ".join(
            f"SELECT coalesce(ST_EstimatedExtent('{p}', 'geom')::geometry, "
            f'(SELECT ST_Extent(geom)::geometry FROM "{p}")) AS e'
            for p in parts
            if re.fullmatch(r"[a-z0-9_]+", p)  # catalogue names of this schema's partitions
        )
        or "SELECT ST_Extent(geom)::geometry AS e FROM incident"
    )
    b = conn.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            f"(SELECT ST_Extent(e) AS e FROM ({pieces}) s) q"
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
