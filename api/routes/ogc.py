"""OGC API - Features, Part 1: Core under ``/ogc`` (GeoJSON and OpenAPI 3.0 classes).

Collections: ``districts``, ``streets``, ``communities``, ``grids`` (units of the
published boundary version with the load metrics of the last 30 days as properties) and
``incidents`` (points).

Query parameters of ``/items``: ``bbox`` (CRS84, four numbers; west > east crosses the
antimeridian), ``datetime`` (RFC 3339 instant, date, or interval with ``..``/empty open
ends; incidents: ``reported_at``; boundaries: validity of their version, see
:mod:`geogrid.store.features`), ``limit`` (1..10,000, default 10; out of range is a 400,
not clamped), ``offset`` (paging; ``next``/``prev`` links), property filters
(incidents: ``category``, ``status``, ``grid_code``, ``community_code``, ``street_code``,
``district_code``; boundaries: ``code``, ``parent_code``; comma-separated values are
OR-ed) and ``f=json``. Any other parameter is a 400 (/req/core/query-param-unknown).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from api.params import parse_bbox
from api.routes.tiles import ServiceDep
from geogrid.core.ogc import (
    CONFORMANCE,
    CRS84,
    GEOJSON,
    JSON,
    LIMIT_DEFAULT,
    LIMIT_MAX,
    OPENAPI,
    feature_collection_json,
    feature_json,
    json_value,
    link,
    page_links,
    parse_datetime,
)
from geogrid.errors import InvalidInput, NotFound
from geogrid.store.features import (
    BOUNDARY_COLLECTIONS,
    INCIDENT_FILTERS,
    UNIT_FILTERS,
    collection_extent,
    incident_item,
    incident_page,
    unit_item,
    unit_page,
)

router = APIRouter(prefix="/ogc", tags=["ogc"])

COLLECTIONS = {
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
_COMMON = {"f", "bbox", "datetime", "limit", "offset"}
_UNIT_METRIC_SKIP = {
    "code",
    "name",
    "level",
    "parent_code",
    "population",
    "households",
    "area_m2",
    "geometry",
    "xmin",
    "ymin",
    "xmax",
    "ymax",
}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _check_params(request: Request, allowed: set[str]) -> None:
    for name in request.query_params:
        if name not in allowed:
            raise InvalidInput(
                name,
                request.query_params[name],
                f"one of the parameters {', '.join(sorted(allowed))}",
                f"unknown query parameter {name!r}; allowed: {', '.join(sorted(allowed))}",
            )
    f = request.query_params.get("f")
    if f is not None and f not in ("json", "geojson"):
        raise InvalidInput("f", f, "json (or geojson for features)")


def _collection(cid: str) -> None:
    if cid not in COLLECTIONS:
        raise NotFound(f"collection {cid!r} does not exist; collections: {', '.join(COLLECTIONS)}")


@router.get("/", summary="Landing page")
def landing(request: Request) -> JSONResponse:
    _check_params(request, {"f"})
    base = _base(request)
    root = str(request.base_url).rstrip("/")
    return JSONResponse(
        {
            "title": "geogrid OGC API - Features",
            "description": "Yulin grid-management boundaries and incidents (网格化管理).",
            "links": [
                link(f"{base}/", "self", JSON, "this document"),
                link(f"{root}/openapi.json", "service-desc", OPENAPI, "the API definition"),
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


@router.get("/conformance", summary="Conformance classes")
def conformance(request: Request) -> JSONResponse:
    _check_params(request, {"f"})
    return JSONResponse({"conformsTo": CONFORMANCE})


def _collection_doc(request: Request, svc, cid: str) -> dict:
    base = _base(request)
    title, desc = COLLECTIONS[cid]

    def build():
        with svc.engine.connect() as conn:
            return collection_extent(conn, cid)

    ext = svc.static.get(("extent", cid), build)
    extent: dict = {"spatial": {"bbox": [ext["bbox"] or [-180, -90, 180, 90]], "crs": CRS84}}
    if ext["interval"] is not None:
        extent["temporal"] = {
            "interval": [[json_value(t) for t in ext["interval"]]],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    return {
        "id": cid,
        "title": title,
        "description": desc,
        "itemType": "feature",
        "crs": [CRS84],
        "extent": extent,
        "links": [
            link(f"{base}/collections/{cid}", "self", JSON, title),
            link(f"{base}/collections/{cid}/items", "items", GEOJSON, f"{title}: items"),
        ],
    }


@router.get("/collections", summary="Feature collections")
def collections(request: Request, svc: ServiceDep) -> JSONResponse:
    _check_params(request, {"f"})
    svc.poll()
    base = _base(request)
    return JSONResponse(
        {
            "links": [link(f"{base}/collections", "self", JSON, "collections")],
            "collections": [_collection_doc(request, svc, cid) for cid in COLLECTIONS],
        }
    )


@router.get("/collections/{collection_id}", summary="One feature collection")
def collection(request: Request, svc: ServiceDep, collection_id: str) -> JSONResponse:
    _check_params(request, {"f"})
    _collection(collection_id)
    svc.poll()
    return JSONResponse(_collection_doc(request, svc, collection_id))


def _unit_props(row: dict, metrics) -> dict:
    props = {
        k: row[k]
        for k in (
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
    }
    if metrics is not None and row["version_status"] == "published":
        m = metrics.get(row["code"])
        if m is not None:
            props.update(m)
    return props


def _metrics_lookup(svc, level: str) -> dict:
    def build():
        df = svc.unit_metrics(level, svc.window())
        cols = [c for c in df.columns if c not in _UNIT_METRIC_SKIP]
        recs = df[cols].to_dict("records")
        return {str(c): r for c, r in zip(df["code"], recs, strict=True)}

    return svc.metrics.get(("lookup", level, svc.window().key), build)


def _incident_props(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("geometry",)}


@router.get(
    "/collections/{collection_id}/items",
    summary="Features of a collection",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}, "description": "a FeatureCollection"}},
)
def items(
    request: Request,
    svc: ServiceDep,
    collection_id: str,
    bbox: Annotated[
        str | None,
        Query(description=("minLon,minLat,maxLon,maxLat (CRS84); features intersecting it")),
    ] = None,
    datetime: Annotated[
        str | None,
        Query(
            description=(
                "RFC 3339 instant or interval (start/end, '..' open); incidents: reported_at; "
                "boundaries: the validity of their version"
            )
        ),
    ] = None,
    limit: Annotated[
        int,
        Query(
            ge=1, le=LIMIT_MAX, description=(f"items per page, 1..{LIMIT_MAX} (out of range: 400)")
        ),
    ] = LIMIT_DEFAULT,
    offset: Annotated[int, Query(ge=0, description="items to skip (paging)")] = 0,
    f: Annotated[str | None, Query(description="json")] = None,
    category: Annotated[str | None, Query(description="incidents: category codes")] = None,
    status: Annotated[str | None, Query(description="incidents: statuses")] = None,
    grid_code: Annotated[str | None, Query(description="incidents: grid codes")] = None,
    community_code: Annotated[str | None, Query(description="incidents")] = None,
    street_code: Annotated[str | None, Query(description="incidents")] = None,
    district_code: Annotated[str | None, Query(description="incidents")] = None,
    code: Annotated[str | None, Query(description="boundaries: unit codes")] = None,
    parent_code: Annotated[str | None, Query(description="boundaries: parent codes")] = None,
) -> Response:
    _collection(collection_id)
    is_inc = collection_id == "incidents"
    names = INCIDENT_FILTERS if is_inc else UNIT_FILTERS
    _check_params(request, _COMMON | set(names))
    qp = request.query_params
    box = parse_bbox(bbox)
    interval = parse_datetime(datetime)
    filters = {n: [qp[n]] for n in names if qp.get(n)}
    svc.poll()
    with svc.engine.connect() as conn:
        if is_inc:
            page = incident_page(
                conn, bbox=box, interval=interval, filters=filters, offset=offset, limit=limit
            )
        else:
            page = unit_page(
                conn,
                BOUNDARY_COLLECTIONS[collection_id],
                bbox=box,
                interval=interval,
                filters=filters,
                offset=offset,
                limit=limit,
            )
    if is_inc:
        feats = [feature_json(r["id"], r["geometry"], _incident_props(r)) for r in page.rows]
    else:
        metrics = _metrics_lookup(svc, BOUNDARY_COLLECTIONS[collection_id])
        feats = [feature_json(r["id"], r["geometry"], _unit_props(r, metrics)) for r in page.rows]
    url = f"{_base(request)}/collections/{collection_id}/items"
    links = page_links(
        url, dict(qp), offset=offset, limit=limit, returned=len(feats), matched=page.matched
    )
    links.append(
        link(
            f"{_base(request)}/collections/{collection_id}",
            "collection",
            JSON,
            COLLECTIONS[collection_id][0],
        )
    )
    body = feature_collection_json(
        feats, links=links, number_matched=page.matched, number_returned=len(feats)
    )
    return Response(body, media_type=GEOJSON)


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    summary="One feature",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}, "description": "a Feature"}},
)
def item(request: Request, svc: ServiceDep, collection_id: str, feature_id: str) -> Response:
    _collection(collection_id)
    _check_params(request, {"f"})
    svc.poll()
    with svc.engine.connect() as conn:
        if collection_id == "incidents":
            row = incident_item(conn, feature_id)
        else:
            row = unit_item(conn, BOUNDARY_COLLECTIONS[collection_id], feature_id)
    if row is None:
        raise NotFound(f"feature {feature_id!r} does not exist in collection {collection_id!r}")
    base = _base(request)
    links = [
        link(f"{base}/collections/{collection_id}/items/{feature_id}", "self", GEOJSON),
        link(f"{base}/collections/{collection_id}", "collection", JSON),
    ]
    if collection_id == "incidents":
        props = _incident_props(row)
    else:
        props = _unit_props(row, _metrics_lookup(svc, BOUNDARY_COLLECTIONS[collection_id]))
    return Response(feature_json(row["id"], row["geometry"], props, links), media_type=GEOJSON)
