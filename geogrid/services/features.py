"""OGC API - Features workflows: the collections, pages of items and single items behind
``/ogc`` (``api/routes/ogc.py`` parses the request and serialises what these return).

Collections (:data:`geogrid.core.ogc.COLLECTIONS`): the four boundary levels (units of the
published version, or of every version valid in a ``datetime`` interval) with the load
metrics of the map's default window (the last 30 days) as properties, and ``incidents``.
Geometry stays GeoJSON text from PostGIS (:mod:`geogrid.store.features`), never parsed.

Every call first applies the map changes (:meth:`MapService.poll`), so extents and
metrics follow the edits like the tiles do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from geogrid.core.cql2 import And, Expr, InList, Queryable, parse_filter
from geogrid.core.lifecycle import STATUSES
from geogrid.core.metric_catalogue import METRICS
from geogrid.core.ogc import (
    BOUNDARY_COLLECTIONS,
    COLLECTIONS,
    INCIDENT_QUERYABLES,
    LIMIT_DEFAULT,
    UNIT_QUERYABLES,
    Extent,
    parse_properties,
    parse_sortby,
)
from geogrid.errors import InvalidInput, NotFound
from geogrid.services.mapservice import MapService
from geogrid.store.features import (
    incident_extent,
    incident_item,
    incident_page,
    unit_extent,
    unit_item,
    unit_page,
)

__all__ = [
    "CollectionInfo",
    "Item",
    "ItemPage",
    "check_collection",
    "collection",
    "collections",
    "filter_names",
    "item",
    "items",
    "queryables",
]

BBox = tuple[float, float, float, float]
Interval = tuple[datetime | None, datetime | None]

#: metric properties of boundary items (the metrics of the map's default window)
_METRIC_PROPERTIES = tuple(m for m in METRICS if m not in ("population", "households", "area_m2"))
#: unit columns served as properties (besides the metrics of the window)
_UNIT_PROPERTIES = (
    "code",
    "name",
    "level",
    "parent_code",
    "population",
    "households",
    "area_m2",
    "version_id",
    "valid_from",
    "valid_to",
)


@dataclass(frozen=True)
class CollectionInfo:
    """One collection: its id, title, description and extent."""

    id: str
    title: str
    description: str
    extent: Extent


@dataclass(frozen=True)
class Item:
    """One feature: its id, its geometry as GeoJSON text (CRS84) and its properties."""

    id: str | int
    geometry: str | None
    properties: dict[str, Any]


@dataclass(frozen=True)
class ItemPage:
    """The items of one page and the number of items matching the filters (all pages;
    None when more than :data:`geogrid.core.ogc.COUNT_CAP` match)."""

    items: list[Item]
    matched: int | None


def check_collection(collection_id: str) -> str:
    """``collection_id`` when it is a collection, else :class:`NotFound`.

    >>> check_collection("grids")
    'grids'
    """
    if collection_id not in COLLECTIONS:
        raise NotFound(
            f"collection {collection_id!r} does not exist; collections: {', '.join(COLLECTIONS)}"
        )
    return collection_id


def filter_names(collection_id: str) -> tuple[str, ...]:
    """The property filters (``?name=value``) of a collection's items: every queryable
    but the geometry (Part 3, queryables-query-parameters).

    >>> filter_names("districts")
    ('code', 'name', 'parent_code', 'population', 'households', 'area_m2')
    """
    return tuple(n for n, q in _queryables(collection_id).items() if q.type != "geometry")


def _queryables(collection_id: str) -> dict[str, Queryable]:
    check_collection(collection_id)
    return INCIDENT_QUERYABLES if collection_id == "incidents" else UNIT_QUERYABLES


def queryables(maps: MapService, collection_id: str) -> dict[str, Queryable]:
    """The queryables of a collection, with the category codes of the catalogue as the
    ``category`` enum (:class:`NotFound` for an unknown collection)."""
    q = dict(_queryables(collection_id))
    if "category" in q:
        c = q["category"]
        q["category"] = Queryable(c.name, c.type, c.description, tuple(sorted(maps.categories())))
    return q


def property_names(collection_id: str) -> tuple[str, ...]:
    """What ``properties`` may select: the item properties (incidents: their columns;
    boundaries: unit columns and the metrics of the window)."""
    check_collection(collection_id)
    if collection_id == "incidents":
        return tuple(n for n in INCIDENT_QUERYABLES if n != "geometry")
    return _UNIT_PROPERTIES + _METRIC_PROPERTIES


def collections(maps: MapService) -> list[CollectionInfo]:
    """Every collection, in the order of :data:`geogrid.core.ogc.COLLECTIONS`."""
    maps.poll()
    return [_info(maps, cid) for cid in COLLECTIONS]


def collection(maps: MapService, collection_id: str) -> CollectionInfo:
    """One collection (:class:`NotFound` when there is no such collection)."""
    check_collection(collection_id)
    maps.poll()
    return _info(maps, collection_id)


def items(
    maps: MapService,
    collection_id: str,
    *,
    bbox: BBox | None = None,
    interval: Interval | None = None,
    filters: Mapping[str, Sequence[str]] | None = None,
    cql: str | None = None,
    cql_lang: str | None = None,
    cql_crs: str | None = None,
    sortby: str | None = None,
    properties: str | None = None,
    offset: int = 0,
    limit: int = LIMIT_DEFAULT,
    after: int | None = None,
    read_after: int | None = None,
) -> ItemPage:
    """One page of a collection's items.

    Parameters
    ----------
    maps : MapService
        The map service (database, metrics of the default window, change log).
    collection_id : str
        A collection of :data:`geogrid.core.ogc.COLLECTIONS`.
    bbox : tuple, optional
        CRS84 west, south, east, north; west > east crosses the antimeridian.
    interval : tuple, optional
        Closed interval (None ends open): incidents' ``reported_at``; boundaries: the
        validity of their version (without it, the published version).
    filters : mapping, optional
        Property filters of :func:`filter_names` → accepted values (comma-separated values
        are split; values are OR-ed). Unknown categories/statuses are :class:`InvalidInput`.
    cql, cql_lang, cql_crs : str, optional
        ``filter``, ``filter-lang`` and ``filter-crs`` (CQL2 text or JSON over the
        :func:`queryables`; :mod:`geogrid.core.cql2`). AND-ed with everything else.
    sortby : str, optional
        ``+name,-name`` over the queryables (the id, or code and version, break ties).
    properties : str, optional
        The properties to return (:func:`property_names`; default all).
    offset, limit : int
        Paging (items to skip, items per page).
    after : int, optional
        Keyset paging of incidents in the default order: the items after this id
        (:class:`InvalidInput` with ``sortby`` or on boundaries).
    read_after : int, optional
        Issue 12: a WAL position of the primary the read must see (the caller's last
        write): a replica that has not replayed it is not used.
    """
    qs = queryables(maps, collection_id)
    if after is not None and (collection_id != "incidents" or sortby):
        raise InvalidInput(
            "after", after, "only on incidents in the default order (without sortby)"
        )
    conds: list[Expr] = _check_filters(maps, collection_id, filters)
    if cql is not None:
        conds.append(parse_filter(cql, cql_lang, qs, cql_crs))
    where: Expr | None = None if not conds else conds[0] if len(conds) == 1 else And(tuple(conds))
    sort = parse_sortby(sortby, [n for n, q in qs.items() if q.type != "geometry"])
    keep = parse_properties(properties, property_names(collection_id))
    maps.poll()
    with maps.read_engine(read_after).connect() as conn:
        if collection_id == "incidents":
            page = incident_page(
                conn,
                bbox=bbox,
                interval=interval,
                where=where,
                sort=sort,
                offset=offset,
                limit=limit,
                after=after,
            )
        else:
            page = unit_page(
                conn,
                BOUNDARY_COLLECTIONS[collection_id],
                bbox=bbox,
                interval=interval,
                where=where,
                sort=sort,
                offset=offset,
                limit=limit,
            )
    if collection_id == "incidents":
        out = [_incident(r) for r in page.rows]
    else:
        metrics = maps.metrics_by_code(BOUNDARY_COLLECTIONS[collection_id], maps.window())
        out = [_unit(r, metrics) for r in page.rows]
    if keep is not None:
        out = [Item(i.id, i.geometry, {k: i.properties.get(k) for k in keep}) for i in out]
    return ItemPage(out, page.matched)


def item(
    maps: MapService, collection_id: str, feature_id: str, *, read_after: int | None = None
) -> Item:
    """One feature by id (:class:`NotFound` when it does not exist); ``read_after`` as for
    :func:`items`."""
    check_collection(collection_id)
    maps.poll()
    with maps.read_engine(read_after).connect() as conn:
        if collection_id == "incidents":
            row = incident_item(conn, feature_id)
        else:
            row = unit_item(conn, BOUNDARY_COLLECTIONS[collection_id], feature_id)
    if row is None:
        raise NotFound(f"feature {feature_id!r} does not exist in collection {collection_id!r}")
    if collection_id == "incidents":
        return _incident(row)
    return _unit(row, maps.metrics_by_code(BOUNDARY_COLLECTIONS[collection_id], maps.window()))


# ---------------------------------------------------------------------------- helpers


def _info(maps: MapService, collection_id: str) -> CollectionInfo:
    title, description = COLLECTIONS[collection_id]

    def build() -> Extent:
        with maps.read_engine().connect() as conn:
            if collection_id == "incidents":
                return incident_extent(conn)
            return unit_extent(conn, BOUNDARY_COLLECTIONS[collection_id])

    extent = maps.static.get(("extent", collection_id), build)
    return CollectionInfo(collection_id, title, description, extent)


def _check_filters(
    maps: MapService, collection_id: str, filters: Mapping[str, Sequence[str]] | None
) -> list[Expr]:
    """``?name=value`` filters → ``IN`` expressions: values split on commas and read as
    the queryable's type; category and status values checked against their lists."""
    qs = _queryables(collection_id)
    allowed = filter_names(collection_id)
    out: list[Expr] = []
    for name, values in (filters or {}).items():
        if name not in allowed:
            raise InvalidInput(name, values, f"a filter of {', '.join(allowed)}")
        vals = [p.strip() for v in values for p in str(v).split(",") if p.strip()]
        if not vals:
            continue
        if name == "category":
            known = maps.categories()
            bad = [v for v in vals if v not in known]
            if bad:
                raise InvalidInput(name, ",".join(bad), "one of " + ", ".join(sorted(known)))
        elif name == "status":
            bad = [v for v in vals if v not in STATUSES]
            if bad:
                raise InvalidInput(name, ",".join(bad), "one of " + ", ".join(STATUSES))
        out.append(InList(name, tuple(_typed(qs[name], v) for v in vals)))
    return out


def _typed(q: Queryable, value: str) -> str | int | float | datetime:
    """A ``?name=value`` value read as the queryable's type (InvalidInput naming it)."""
    try:
        if q.type == "integer":
            n = int(value)
            if not -(2**63) <= n < 2**63:
                raise ValueError(value)
            return n
        if q.type == "number":
            x = float(value)
            if x != x or x in (float("inf"), float("-inf")):
                raise ValueError(value)
            return x
        if q.type == "date-time":
            t = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if t.tzinfo is None:
                raise ValueError(value)
            return t
    except ValueError:
        raise InvalidInput(q.name, value, f"a {q.type} value") from None
    return value


def _incident(row: Mapping[str, Any]) -> Item:
    props = {k: v for k, v in row.items() if k != "geometry"}
    return Item(row["id"], row["geometry"], props)


def _unit(row: Mapping[str, Any], metrics: Mapping[str, Mapping[str, Any]]) -> Item:
    props = {k: row[k] for k in _UNIT_PROPERTIES}
    if row["version_status"] == "published":  # metrics are those of the published units
        m = metrics.get(row["code"])
        if m is not None:
            props.update(m)
    return Item(row["id"], row["geometry"], props)
