"""Pure helpers for OGC API - Features, Part 1: Core (links, datetime, assembly).

Nothing here talks to the database or to FastAPI: :mod:`geogrid.store.features` runs the
queries, :mod:`geogrid.services.features` assembles collections and pages, and
``api/routes/ogc.py`` parses the request and serialises what these functions build.

Conventions (OGC 17-069r4):

* Coordinates are CRS84 (WGS84 longitude, latitude; ``http://www.opengis.net/def/crs/OGC/1.3/CRS84``).
* ``datetime`` is an RFC 3339 instant (``2024-05-01T08:00:00Z``), a full date
  (``2024-05-01``: that whole day, UTC) or an interval ``start/end`` whose ends may be open
  (``..`` or empty). Intervals are closed: an item whose time equals an end is selected.
* Paging: ``next`` links of incidents in the default order are keyset links
  (``after=<last id>``: every page costs the same); otherwise ``offset`` and ``limit``,
  with ``prev`` links.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from geogrid.core.cql2 import CQL2_CONFORMANCE, Queryable
from geogrid.core.lifecycle import STATUSES
from geogrid.core.tiles import LAYER_LEVELS
from geogrid.errors import InvalidInput

__all__ = [
    "BOUNDARY_COLLECTIONS",
    "COLLECTIONS",
    "INCIDENT_FILTERS",
    "UNIT_FILTERS",
    "CONFORMANCE",
    "COUNT_CAP",
    "FILTER_CONFORMANCE",
    "INCIDENT_QUERYABLES",
    "REL_QUERYABLES",
    "SCHEMA_JSON",
    "UNIT_QUERYABLES",
    "CRS84",
    "Extent",
    "GEOJSON",
    "JSON",
    "OPENAPI",
    "LIMIT_DEFAULT",
    "LIMIT_MAX",
    "link",
    "page_links",
    "parse_datetime",
    "parse_limit",
    "parse_offset",
    "parse_properties",
    "parse_sortby",
    "queryables_json",
    "feature_json",
    "feature_collection_json",
    "json_value",
    "timestamp",
]

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
JSON = "application/json"
GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
#: Part 3 (filtering) classes (OGC 19-079r2) and the sorting class of OGC API - Records
#: (``sortby``; Features has no final sorting class yet). Property selection
#: (``properties``) is Part 6, still a draft without a fixed URI: served, not declared.
FILTER_CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    *CQL2_CONFORMANCE,
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/sorting",
]
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    *FILTER_CONFORMANCE,
]
SCHEMA_JSON = "application/schema+json"
#: rel of a collection's queryables link
REL_QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
#: numberMatched is counted up to this many items; beyond, it is left out (the count
#: would cost as much as reading every match) and ``next`` links follow full pages
COUNT_CAP = 100_000
LIMIT_DEFAULT = 10
LIMIT_MAX = 10_000

#: boundary collection id → unit level (the same names as the vector-tile layers)
BOUNDARY_COLLECTIONS: dict[str, str] = dict(LAYER_LEVELS)
#: collection id → (title, description), in the order of ``/collections``
COLLECTIONS: dict[str, tuple[str, str]] = {
    "districts": (
        "Districts (区/县)",
        "County-level districts of the published boundary "
        "version, with the load metrics of the last 30 days.",
    ),
    "streets": (
        "Streets (街道/乡镇)",
        "Streets and towns with the load metrics of the last 30 days.",
    ),
    "communities": (
        "Communities (社区/村)",
        "Communities and villages with the load metrics of the last 30 days.",
    ),
    "grids": (
        "Grids (网格)",
        "Management grids (the smallest unit) with the load metrics of the last 30 days.",
    ),
    "incidents": ("Incidents", "Reported incidents (points, WGS84); datetime filters reported_at."),
}
#: property filters of boundary items (comma-separated values are OR-ed)
UNIT_FILTERS: tuple[str, ...] = ("code", "parent_code")
#: property filters of incident items
INCIDENT_FILTERS: tuple[str, ...] = (
    "category",
    "status",
    "grid_code",
    "community_code",
    "street_code",
    "district_code",
)

#: what a filter (CQL2 or ``?name=value``), ``sortby`` and ``properties`` may name on
#: incidents: public fields only (no description, reporter, assignee or source point)
INCIDENT_QUERYABLES: dict[str, Queryable] = {
    q.name: q
    for q in (
        Queryable("id", "integer", "incident id"),
        Queryable("category", "string", "category code"),
        Queryable("status", "string", "lifecycle status", enum=STATUSES),
        Queryable("reported_at", "date-time", "when it was reported (UTC)"),
        Queryable("due_at", "date-time", "deadline of the current stage"),
        Queryable("resolved_at", "date-time", "when it was resolved"),
        Queryable("closed_at", "date-time", "when it was closed"),
        Queryable("assigned_level", "string", "level of the unit it is assigned to"),
        Queryable("assigned_unit", "string", "code of the unit it is assigned to"),
        Queryable("grid_code", "string", "grid (网格) code"),
        Queryable("community_code", "string", "community (社区/村) code"),
        Queryable("street_code", "string", "street (街道/乡镇) code"),
        Queryable("district_code", "string", "district (区/县) code"),
        Queryable("source_id", "string", "id in the source system"),
        Queryable("geometry", "geometry", "where (CRS84 point)", format="geometry-point"),
    )
}
#: queryables of the boundary collections (the metrics are computed, not stored: they
#: are properties but not queryables)
UNIT_QUERYABLES: dict[str, Queryable] = {
    q.name: q
    for q in (
        Queryable("code", "string", "unit code"),
        Queryable("name", "string", "unit name"),
        Queryable("parent_code", "string", "code of the parent unit"),
        Queryable("population", "integer", "residents"),
        Queryable("households", "integer", "households"),
        Queryable("area_m2", "number", "area in square metres"),
        Queryable("geometry", "geometry", "boundary (CRS84)", format="geometry-multipolygon"),
    )
}


@dataclass(frozen=True)
class Extent:
    """Extent of a collection: ``bbox`` (CRS84 west, south, east, north; None when empty)
    and ``interval`` (start, end; a None end is open; None when there is no time)."""

    bbox: tuple[float, float, float, float] | None
    interval: tuple[datetime | None, datetime | None] | None


_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def link(href: str, rel: str, type: str = JSON, title: str | None = None) -> dict[str, str]:
    """One link object (``href``, ``rel``, ``type`` and an optional ``title``)."""
    out = {"href": href, "rel": rel, "type": type}
    if title:
        out["title"] = title
    return out


def timestamp(now: datetime | None = None) -> str:
    """``timeStamp`` of a response: RFC 3339 UTC with a ``Z``, to the second."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_instant(text: str, *, end: bool) -> datetime:
    when = _parse_instant_unchecked(text, end=end)
    if not datetime(1, 1, 2, tzinfo=UTC) <= when <= datetime(9999, 12, 30, tzinfo=UTC):
        raise InvalidInput("datetime", text, "a date-time between 0001-01-02 and 9999-12-30")
    return when


def _parse_instant_unchecked(text: str, *, end: bool) -> datetime:
    m = _RFC3339.match(text)
    if m:
        try:
            return datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
        except ValueError:
            pass
    elif _DATE.match(text):
        try:
            d = date.fromisoformat(text)
        except ValueError:
            pass
        else:
            start = datetime(d.year, d.month, d.day, tzinfo=UTC)
            # a date as the end of an interval means "through the end of that day"
            if end and d < date.max:
                return start + timedelta(days=1) - timedelta(microseconds=1)
            return start
    raise InvalidInput(
        "datetime",
        text,
        "an RFC 3339 date-time with a time zone (2024-05-01T08:00:00Z), a date (2024-05-01) "
        "or an interval start/end with '..' for an open end",
    )


def parse_datetime(value: str | None) -> tuple[datetime | None, datetime | None] | None:
    """Parse the ``datetime`` query parameter into a closed interval ``(start, end)``.

    ``None`` ends are open. An instant gives ``(t, t)``; a date gives that whole day (UTC).
    Returns ``None`` when the parameter is absent. Raises :class:`InvalidInput`
    (parameter ``datetime``) for anything else, and when start is after end.

    >>> parse_datetime("2024-05-01T08:00:00Z/..")[1] is None
    True
    >>> s, e = parse_datetime("2024-05-01")
    >>> s.isoformat(), e.isoformat()
    ('2024-05-01T00:00:00+00:00', '2024-05-01T23:59:59.999999+00:00')
    """
    if value is None:
        return None
    value = value.strip()
    if value == "":
        raise InvalidInput("datetime", value, "an RFC 3339 date-time or interval")
    if "/" not in value:
        if value == "..":
            raise InvalidInput("datetime", value, "an instant, or an interval start/end")
        return _parse_instant(value, end=False), _parse_instant(value, end=True)
    parts = value.split("/")
    if len(parts) != 2:
        raise InvalidInput("datetime", value, "one interval start/end (a single '/')")
    a, b = (p.strip() for p in parts)
    start = None if a in ("", "..") else _parse_instant(a, end=False)
    end = None if b in ("", "..") else _parse_instant(b, end=True)
    if start is not None and end is not None and start > end:
        raise InvalidInput("datetime", value, "an interval whose start is not after its end")
    return start, end


def parse_limit(
    value: str | int | None, *, maximum: int = LIMIT_MAX, default: int = LIMIT_DEFAULT
) -> int:
    """``limit``: an integer 1..``maximum`` (default ``default``).

    Out-of-range values are refused with 400 rather than clamped (the standard allows
    either; refusing tells a client that its page size was not honoured).
    """
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise InvalidInput("limit", value, f"an integer from 1 to {maximum}") from None
    if not 1 <= n <= maximum:
        raise InvalidInput("limit", value, f"an integer from 1 to {maximum}")
    return n


def parse_offset(value: str | int | None) -> int:
    """``offset`` of a page: an integer ≥ 0 (default 0)."""
    if value is None or value == "":
        return 0
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise InvalidInput("offset", value, "an integer ≥ 0") from None
    if n < 0:
        raise InvalidInput("offset", value, "an integer ≥ 0")
    return n


def page_links(
    url: str,
    params: Mapping[str, Any],
    *,
    offset: int,
    limit: int,
    returned: int,
    matched: int | None,
    type: str = GEOJSON,
    next_after: int | None = None,
) -> list[dict[str, str]]:
    """``self``, ``next`` (when more items follow) and ``prev`` (when ``offset`` > 0).

    ``url`` is the items URL without query; ``params`` the request's query parameters
    (``offset``/``limit``/``after`` are replaced, everything else is kept so the filters
    carry over). With ``next_after`` (keyset paging: the last id of this page, in the
    default order) the ``next`` link asks for the items after it instead of an offset, so
    the thousandth page costs what the first one does; such pages have no ``prev``.

    >>> [lk["href"] for lk in page_links("/i", {"limit": "2"}, offset=0, limit=2,
    ...                                  returned=2, matched=5, next_after=17)]
    ['/i?limit=2', '/i?limit=2&after=17']
    """
    base = {k: v for k, v in params.items() if k not in ("offset", "limit", "after")}
    keyset = "after" in params

    def href(off: int, after: Any = None) -> str:
        q = {**base, "limit": limit}
        if after is not None:
            q["after"] = after
        elif off:
            q["offset"] = off
        return f"{url}?{urlencode(q)}"

    links = [link(href(offset, params.get("after")), "self", type, "this page")]
    if matched is not None and not keyset:
        more = offset + returned < matched
    else:
        more = returned == limit
    if more and returned:
        nxt = href(offset + returned) if next_after is None else href(0, next_after)
        links.append(link(nxt, "next", type, "next page"))
    if offset > 0 and not keyset:
        links.append(link(href(max(0, offset - limit)), "prev", type, "previous page"))
    return links


def json_value(v: Any) -> Any:
    """A JSON-safe value: NaN/inf → None, datetimes → RFC 3339, numpy scalars → Python."""
    if v is None or isinstance(v, (str, bool)):
        return v
    if isinstance(v, datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=UTC)
        return v.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if hasattr(v, "item") and not isinstance(v, (list, tuple, dict)):
        try:
            v = v.item()
        except (ValueError, AttributeError):
            return str(v)
        if isinstance(v, datetime):
            return json_value(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, int):
        return v
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    if isinstance(v, dict):
        return {k: json_value(x) for k, x in v.items()}
    try:
        if v != v:  # pandas NaT / NA
            return None
    except (TypeError, ValueError):
        return None
    return str(v)


def feature_json(
    fid: str | int,
    geometry: str | None,
    properties: Mapping[str, Any],
    links: Sequence[Mapping[str, str]] | None = None,
) -> str:
    """One GeoJSON Feature as text. ``geometry`` is GeoJSON text (e.g. ``ST_AsGeoJSON``)
    and is inserted as is (not re-parsed)."""
    props = json.dumps({k: json_value(v) for k, v in properties.items()}, ensure_ascii=False)
    extra = f',"links":{json.dumps(list(links), ensure_ascii=False)}' if links else ""
    return (
        f'{{"type":"Feature","id":{json.dumps(fid)},"geometry":{geometry or "null"},'
        f'"properties":{props}{extra}}}'
    )


def feature_collection_json(
    features: Iterable[str],
    *,
    links: Sequence[Mapping[str, str]],
    number_matched: int | None,
    number_returned: int,
    time_stamp: str | None = None,
) -> str:
    """A GeoJSON FeatureCollection (OGC items response) from Feature texts."""
    head = {
        "type": "FeatureCollection",
        "timeStamp": time_stamp or timestamp(),
        "numberReturned": int(number_returned),
    }
    if number_matched is not None:
        head["numberMatched"] = int(number_matched)
    head["links"] = list(links)
    text = json.dumps(head, ensure_ascii=False)
    return text[:-1] + ',"features":[' + ",".join(features) + "]}"


def queryables_json(url: str, title: str, queryables: Mapping[str, Queryable]) -> dict[str, Any]:
    """The queryables of a collection as a JSON Schema (Part 3, /req/queryables).

    >>> doc = queryables_json("http://x/ogc/collections/grids/queryables", "Grids",
    ...                       UNIT_QUERYABLES)
    >>> doc["type"], doc["$id"].endswith("/queryables"), doc["properties"]["code"]["type"]
    ('object', True, 'string')
    """
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": url,
        "type": "object",
        "title": title,
        "properties": {name: q.schema() for name, q in queryables.items()},
        "additionalProperties": True,
    }


def parse_sortby(value: str | None, sortables: Iterable[str]) -> list[tuple[str, bool]]:
    """``sortby``: comma-separated names, each optionally prefixed ``+`` (ascending, the
    default) or ``-`` (descending) → ``[(name, descending)]``.

    >>> parse_sortby("-reported_at,+grid_code", ["reported_at", "grid_code"])
    [('reported_at', True), ('grid_code', False)]
    >>> parse_sortby("colour", ["id"])
    Traceback (most recent call last):
    ...
    geogrid.errors.InvalidInput: sortby: unknown property 'colour'; sortables: id
    """
    if value is None or value.strip() == "":
        return []
    names = list(sortables)
    out: list[tuple[str, bool]] = []
    for part in value.split(","):
        p = part.strip()
        desc = p.startswith("-")
        name = p[1:].strip() if p[:1] in "+-" and p else p
        if name not in names:
            raise InvalidInput(
                "sortby",
                name,
                "one of " + ", ".join(names),
                f"sortby: unknown property {name!r}; sortables: {', '.join(names)}",
            )
        if any(n == name for n, _ in out):
            raise InvalidInput("sortby", value, "each property at most once")
        out.append((name, desc))
    return out


def parse_properties(value: str | None, names: Iterable[str]) -> tuple[str, ...] | None:
    """``properties``: the comma-separated properties to include (None: all).

    >>> parse_properties("status, grid_code", ["status", "grid_code", "category"])
    ('status', 'grid_code')
    """
    if value is None:
        return None
    allowed = list(names)
    out = tuple(p.strip() for p in value.split(",") if p.strip())
    bad = [p for p in out if p not in allowed]
    if bad:
        raise InvalidInput(
            "properties",
            ",".join(bad),
            "some of " + ", ".join(allowed),
            f"properties: unknown {', '.join(map(repr, bad))}; available: {', '.join(allowed)}",
        )
    return out
