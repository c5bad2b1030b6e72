"""OGC API - Features, Part 1: Core under ``/ogc`` (GeoJSON and OpenAPI 3.0 classes).

Collections: ``districts``, ``streets``, ``communities``, ``grids`` (units of the
published boundary version with the load metrics of the last 30 days as properties) and
``incidents`` (points).

Query parameters of ``/items``: ``bbox`` (CRS84, four numbers; west > east crosses the
antimeridian), ``datetime`` (RFC 3339 instant, date, or interval with ``..``/empty open
ends; incidents: ``reported_at``; boundaries: validity of their version, see
:mod:`geogrid.services.features`), ``limit`` (1..10,000, default 10; out of range is a 400,
not clamped), ``offset`` (paging; ``next``/``prev`` links), property filters
(incidents: ``category``, ``status``, ``grid_code``, ``community_code``, ``street_code``,
``district_code``; boundaries: ``code``, ``parent_code``; comma-separated values are
OR-ed; every other queryable too, Part 3 queryables-query-parameters), ``filter`` /
``filter-lang`` / ``filter-crs`` (CQL2 text or JSON over the queryables, Part 3),
``sortby`` (``+name,-name``), ``properties`` (the properties to return) and ``f=json``.
Any other parameter is a 400 (/req/core/query-param-unknown).

``/collections/{id}/queryables`` is the JSON Schema of what filters may name. ``/ogc/api``
is the OpenAPI document of this OGC API alone (paths relative to ``/ogc``, one items path
per collection listing its queryables as parameters): the landing page's
``service-desc``, because GIS clients (GDAL's OAPIF driver, QGIS) look up
``/collections/{collectionId}/items`` there to learn which filters they can push to
the server.

Items leave as GeoJSON text assembled from PostGIS's own GeoJSON
(:func:`geogrid.core.ogc.feature_collection_json`); :class:`api.models.ogc.FeaturePage`
documents their shape.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response

from api.deps import ContextDep, ReadAfterDep
from api.models.common import error_responses
from api.models.ogc import (
    OGC_OPENAPI_SCHEMA,
    QUERYABLES_SCHEMA,
    Collection,
    Collections,
    Conformance,
    FeaturePage,
    LandingPage,
    OgcFeature,
)
from api.params import parse_bbox
from geogrid.core.cql2 import FILTER_CRS, FILTER_LANGS
from geogrid.core.ogc import (
    COLLECTIONS,
    CONFORMANCE,
    CRS84,
    GEOJSON,
    JSON,
    LIMIT_DEFAULT,
    LIMIT_MAX,
    OPENAPI,
    REL_QUERYABLES,
    SCHEMA_JSON,
    feature_collection_json,
    feature_json,
    link,
    page_links,
    parse_datetime,
    queryables_json,
)
from geogrid.errors import InvalidInput
from geogrid.services import features
from geogrid.services.context import AppContext
from geogrid.services.features import CollectionInfo

__all__ = ["router"]

router = APIRouter(prefix="/ogc", tags=["ogc"])

_COMMON = {
    "f",
    "bbox",
    "datetime",
    "limit",
    "offset",
    "filter",
    "filter-lang",
    "filter-crs",
    "sortby",
    "properties",
    "after",
}
_TRS = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"

CollectionP = Annotated[
    str,
    Path(
        description="collection id: districts, streets, communities, grids or incidents",
        examples=["grids"],
    ),
]
FQ = Annotated[
    str | None,
    Query(description="output format: json (geojson for features)", examples=["json"]),
]


class GeoJSONResponse(JSONResponse):
    """A GeoJSON answer (``application/geo+json``) whose text is already made (by
    :mod:`geogrid.core.ogc`, from PostGIS's GeoJSON): sent as is, not encoded again."""

    media_type = GEOJSON

    def render(self, content: Any) -> bytes:
        return content.encode("utf-8") if isinstance(content, str) else bytes(content)


def _geojson_responses(description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description}, **error_responses(400, 404)}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _check_params(request: Request, allowed: Iterable[str]) -> None:
    """400 for a query parameter the operation does not know, or an unknown ``f``."""
    names = set(allowed)
    for name in request.query_params:
        if name not in names:
            raise InvalidInput(
                name,
                request.query_params[name],
                f"one of the parameters {', '.join(sorted(names))}",
                f"unknown query parameter {name!r}; allowed: {', '.join(sorted(names))}",
            )
    f = request.query_params.get("f")
    if f is not None and f not in ("json", "geojson"):
        raise InvalidInput("f", f, "json (or geojson for features)")


@router.get("", include_in_schema=False)  # ``/ogc`` as GDAL asks for it: no redirect
@router.get(
    "/",
    summary="Landing page",
    response_model=LandingPage,
    response_model_exclude_none=True,
    responses=error_responses(400),
)
def landing(request: Request, f: FQ = None) -> LandingPage:
    _check_params(request, {"f"})
    base = _base(request)
    root = str(request.base_url).rstrip("/")
    return LandingPage.model_validate(
        {
            "title": "geogrid OGC API - Features",
            "description": "Grid-management boundaries and incidents (网格化管理).",
            "links": [
                link(f"{base}/", "self", JSON, "this document"),
                link(f"{base}/api", "service-desc", OPENAPI, "the OGC API definition"),
                link(f"{root}/openapi.json", "describedby", OPENAPI, "the whole API"),
                link(f"{root}/docs", "service-doc", "text/html", "the API documentation"),
                link(f"{base}/conformance", "conformance", JSON, "conformance classes"),
                link(
                    f"{base}/conformance",
                    "http://www.opengis.net/def/rel/ogc/1.0/conformance",
                    JSON,
                    "conformance classes",
                ),
                link(f"{base}/collections", "data", JSON, "collections"),
                link(
                    f"{base}/collections",
                    "http://www.opengis.net/def/rel/ogc/1.0/data",
                    JSON,
                    "collections",
                ),
            ],
        }
    )


@router.get(
    "/conformance",
    summary="Conformance classes",
    response_model=Conformance,
    responses=error_responses(400),
)
def conformance(request: Request, f: FQ = None) -> Conformance:
    _check_params(request, {"f"})
    return Conformance(conformsTo=CONFORMANCE)


def _collection_doc(request: Request, info: CollectionInfo) -> Collection:
    base = _base(request)
    ext = info.extent
    extent: dict[str, Any] = {
        "spatial": {"bbox": [list(ext.bbox or (-180, -90, 180, 90))], "crs": CRS84}
    }
    if ext.interval is not None:
        extent["temporal"] = {"interval": [list(ext.interval)], "trs": _TRS}
    return Collection.model_validate(
        {
            "id": info.id,
            "title": info.title,
            "description": info.description,
            "itemType": "feature",
            "crs": [CRS84],
            "extent": extent,
            "links": [
                link(f"{base}/collections/{info.id}", "self", JSON, info.title),
                link(
                    f"{base}/collections/{info.id}/items", "items", GEOJSON, f"{info.title}: items"
                ),
                link(
                    f"{base}/collections/{info.id}/queryables",
                    REL_QUERYABLES,
                    SCHEMA_JSON,
                    f"{info.title}: queryables",
                ),
            ],
        }
    )


@router.get(
    "/collections",
    summary="Feature collections",
    response_model=Collections,
    response_model_exclude_none=True,
    responses=error_responses(400),
)
def collections(request: Request, ctx: ContextDep, f: FQ = None) -> Collections:
    _check_params(request, {"f"})
    infos = features.collections(ctx.maps)
    return Collections(
        links=[link(f"{_base(request)}/collections", "self", JSON, "collections")],
        collections=[_collection_doc(request, i) for i in infos],
    )


@router.get(
    "/collections/{collection_id}",
    summary="One feature collection",
    response_model=Collection,
    response_model_exclude_none=True,
    responses=error_responses(400, 404),
)
def collection(
    request: Request, ctx: ContextDep, collection_id: CollectionP, f: FQ = None
) -> Collection:
    _check_params(request, {"f"})
    return _collection_doc(request, features.collection(ctx.maps, collection_id))


@router.get(
    "/collections/{collection_id}/items",
    summary="Features of a collection",
    response_model=FeaturePage,
    response_class=GeoJSONResponse,
    responses=_geojson_responses("a FeatureCollection (one page)"),
)
def items(
    request: Request,
    ctx: ContextDep,
    written: ReadAfterDep,
    collection_id: CollectionP,
    bbox: Annotated[
        str | None,
        Query(
            description="minLon,minLat,maxLon,maxLat (CRS84 degrees); features intersecting it",
            examples=["110.1,22.6,110.2,22.7"],
        ),
    ] = None,
    datetime: Annotated[
        str | None,
        Query(
            description="RFC 3339 instant, date or interval (start/end, '..' open); "
            "incidents: reported_at; boundaries: the validity of their version",
            examples=["2026-03-01T00:00:00Z/.."],
        ),
    ] = None,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=LIMIT_MAX,
            description=f"items per page, 1..{LIMIT_MAX} (out of range: 400)",
            examples=[100],
        ),
    ] = LIMIT_DEFAULT,
    offset: Annotated[int, Query(ge=0, description="items to skip (paging)", examples=[0])] = 0,
    after: Annotated[
        int | None,
        Query(
            ge=0,
            description="incidents, default order: the items after this id (keyset paging; "
            "the next links use it)",
            examples=[1000],
        ),
    ] = None,
    f: FQ = None,
    filter: Annotated[
        str | None,
        Query(
            description="CQL2 filter over the collection's queryables (see "
            "/collections/{collection_id}/queryables), text or JSON per filter-lang",
            examples=["grid_code = '450902001001001' AND status IN ('reported', 'accepted')"],
        ),
    ] = None,
    filter_lang: Annotated[
        str | None,
        Query(
            alias="filter-lang",
            description="language of filter: cql2-text (default) or cql2-json",
            json_schema_extra={"enum": list(FILTER_LANGS)},
            examples=["cql2-text"],
        ),
    ] = None,
    filter_crs: Annotated[
        str | None,
        Query(
            alias="filter-crs",
            description=f"CRS of the filter's geometries: only {FILTER_CRS}",
            examples=[FILTER_CRS],
        ),
    ] = None,
    sortby: Annotated[
        str | None,
        Query(
            description="sort: comma-separated queryables, each + (ascending, default) or -",
            examples=["-reported_at"],
        ),
    ] = None,
    properties: Annotated[
        str | None,
        Query(
            description="comma-separated properties to return (default: all)",
            examples=["status,grid_code"],
        ),
    ] = None,
    category: Annotated[
        str | None,
        Query(description="incidents: category codes, comma-separated", examples=["sanitation"]),
    ] = None,
    status: Annotated[
        str | None,
        Query(description="incidents: lifecycle statuses, comma-separated", examples=["closed"]),
    ] = None,
    grid_code: Annotated[
        str | None,
        Query(description="incidents: grid codes, comma-separated", examples=["450902001001001"]),
    ] = None,
    community_code: Annotated[
        str | None,
        Query(description="incidents: community codes, comma-separated", examples=["450902001001"]),
    ] = None,
    street_code: Annotated[
        str | None,
        Query(description="incidents: street codes, comma-separated", examples=["450902001"]),
    ] = None,
    district_code: Annotated[
        str | None,
        Query(description="incidents: district codes, comma-separated", examples=["450902"]),
    ] = None,
    code: Annotated[
        str | None,
        Query(description="boundaries: unit codes, comma-separated", examples=["450902"]),
    ] = None,
    parent_code: Annotated[
        str | None,
        Query(description="boundaries: parent unit codes, comma-separated", examples=["450902"]),
    ] = None,
) -> GeoJSONResponse:
    names = features.filter_names(collection_id)
    _check_params(request, _COMMON | set(names))
    qp = request.query_params
    page = features.items(
        ctx.maps,
        collection_id,
        bbox=parse_bbox(bbox),
        interval=parse_datetime(datetime),
        filters={n: qp.getlist(n) for n in names if qp.get(n)},
        cql=filter,
        cql_lang=filter_lang,
        cql_crs=filter_crs,
        sortby=sortby,
        properties=properties,
        offset=offset,
        limit=limit,
        after=after,
        read_after=written,
    )
    feats = [feature_json(i.id, i.geometry, i.properties) for i in page.items]
    keyset = collection_id == "incidents" and not sortby and page.items
    next_after = int(page.items[-1].id) if keyset else None
    base = _base(request)
    links = page_links(
        f"{base}/collections/{collection_id}/items",
        dict(qp),
        offset=offset,
        limit=limit,
        returned=len(feats),
        matched=page.matched,
        next_after=next_after,
    )
    links.append(link(f"{base}/collections/{collection_id}", "collection", JSON))
    body = feature_collection_json(
        feats, links=links, number_matched=page.matched, number_returned=len(feats)
    )
    return GeoJSONResponse(body)


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    summary="One feature",
    response_model=OgcFeature,
    response_class=GeoJSONResponse,
    responses=_geojson_responses("a Feature"),
)
def item(
    request: Request,
    ctx: ContextDep,
    written: ReadAfterDep,
    collection_id: CollectionP,
    feature_id: Annotated[
        str,
        Path(
            description="feature id: a unit code (published version), code@v<version> "
            "or an incident id",
            examples=["450902"],
        ),
    ],
    f: FQ = None,
) -> GeoJSONResponse:
    features.check_collection(collection_id)
    _check_params(request, {"f"})
    one = features.item(ctx.maps, collection_id, feature_id, read_after=written)
    base = _base(request)
    links = [
        link(f"{base}/collections/{collection_id}/items/{feature_id}", "self", GEOJSON),
        link(f"{base}/collections/{collection_id}", "collection", JSON),
    ]
    return GeoJSONResponse(feature_json(one.id, one.geometry, one.properties, links))


@router.get(
    "/collections/{collection_id}/queryables",
    summary="Queryables of a collection (JSON Schema)",
    response_class=Response,
    responses={
        200: {
            "description": "the properties a filter, sortby or ?name=value may name",
            "content": {SCHEMA_JSON: {"schema": QUERYABLES_SCHEMA}},
        },
        **error_responses(400, 404),
    },
)
def queryables(
    request: Request, ctx: ContextDep, collection_id: CollectionP, f: FQ = None
) -> JSONResponse:
    features.check_collection(collection_id)
    _check_params(request, {"f"})
    qs = features.queryables(ctx.maps, collection_id)
    url = f"{_base(request)}/collections/{collection_id}/queryables"
    doc = queryables_json(url, COLLECTIONS[collection_id][0], qs)
    return JSONResponse(doc, media_type=SCHEMA_JSON)


@router.get(
    "/api",
    summary="OpenAPI definition of the OGC API alone",
    response_class=Response,
    responses={
        200: {
            "description": "OpenAPI 3.0 with paths relative to /ogc",
            "content": {OPENAPI: {"schema": OGC_OPENAPI_SCHEMA}},
        },
        **error_responses(400),
    },
)
def ogc_api(request: Request, ctx: ContextDep, f: FQ = None) -> Response:
    _check_params(request, {"f"})
    # the document depends on the routes and the base URL only: rendered once per base
    cache: dict[str, bytes] = request.app.state.__dict__.setdefault("ogc_openapi", {})
    base = _base(request)
    if base not in cache:
        cache[base] = bytes(JSONResponse(_ogc_openapi(request, ctx)).body)
    return Response(cache[base], media_type=OPENAPI)


_PARAM_SCHEMA = {
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date-time": {"type": "string", "format": "date-time"},
    "string": {"type": "string"},
}


def _ogc_openapi(request: Request, ctx: AppContext) -> dict[str, Any]:
    """The app's OpenAPI document cut to ``/ogc`` (prefix stripped, ``servers`` at
    ``/ogc``), with one items path per collection whose parameters list every queryable
    (how GDAL's OAPIF driver learns which ``?name=value`` filters to send)."""
    # only the OGC routes: generating the whole API's document takes seconds on first use
    full = get_openapi(title="geogrid", version=str(request.app.version), routes=router.routes)
    paths: dict[str, Any] = {}
    for path, item in full.get("paths", {}).items():
        if path.startswith("/ogc/") and path != "/ogc/api":
            paths[path[len("/ogc") :].replace("{collection_id}", "{collectionId}")] = item
    generic = paths.get("/collections/{collectionId}/items", {}).get("get")
    all_filters = {n for cid in COLLECTIONS for n in features.filter_names(cid)}
    if generic is not None:
        for cid in COLLECTIONS:
            op = copy.deepcopy(generic)
            op["operationId"] = f"items_{cid}"
            params = [
                p
                for p in op.get("parameters", [])
                if p.get("in") != "path" and p.get("name") not in all_filters
            ]
            for name, q in features.queryables(ctx.maps, cid).items():
                if q.type == "geometry":
                    continue
                params.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": False,
                        "description": q.description or name,
                        "schema": dict(_PARAM_SCHEMA[q.type]),
                        "style": "form",
                        "explode": False,
                    }
                )
            op["parameters"] = params
            paths[f"/collections/{cid}/items"] = {"get": op}
    return {
        "openapi": full.get("openapi", "3.0.2"),
        "info": {
            "title": "geogrid OGC API - Features",
            "version": full.get("info", {}).get("version", "0"),
            "description": "Grid-management boundaries and incidents (OGC API - Features "
            "Parts 1 and 3).",
        },
        "servers": [{"url": _base(request)}],
        "paths": paths,
        "components": _referenced(full.get("components", {}), paths),
    }


def _referenced(components: dict[str, Any], root: Any) -> dict[str, Any]:
    """The components ``root`` refers to (``$ref``, transitively): the OGC document
    carries its own schemas only, not the examples of the rest of the API."""
    out: dict[str, dict[str, Any]] = {}
    todo = [root]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/"):
                _, _, kind, name = ref.split("/", 3)
                if name not in out.setdefault(kind, {}) and name in components.get(kind, {}):
                    out[kind][name] = components[kind][name]
                    todo.append(components[kind][name])
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    if "securitySchemes" in components:
        out["securitySchemes"] = components["securitySchemes"]
    return out
