"""Answer models of OGC API - Features, Part 1: Core (OGC 17-069r4) under ``/ogc``.

Field names are the standard's (``conformsTo``, ``itemType``, ``numberMatched``,
``numberReturned``, ``timeStamp``…): GDAL's OAPIF driver and OWSLib read them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from api.models.common import ApiModel, Geometry

__all__ = [
    "Link",
    "LandingPage",
    "Conformance",
    "SpatialExtent",
    "TemporalExtent",
    "Extent",
    "Collection",
    "Collections",
    "OgcFeature",
    "FeaturePage",
    "QUERYABLES_SCHEMA",
    "OGC_OPENAPI_SCHEMA",
]


class Link(ApiModel):
    """A link (``href``, ``rel``, media ``type``, optional ``title``)."""

    href: str = Field(description="URL", examples=["http://localhost:8000/ogc/collections"])
    rel: str = Field(description="relation", examples=["data"])
    type: str | None = Field(None, description="media type", examples=["application/json"])
    title: str | None = Field(None, description="label", examples=["collections"])


class LandingPage(ApiModel):
    """``/ogc/``: what the service is and where its parts are."""

    title: str = Field(description="name of the service")
    description: str | None = Field(None, description="what it serves")
    links: list[Link] = Field(description="self, service-desc, service-doc, conformance, data")


class Conformance(ApiModel):
    """``/ogc/conformance``: the conformance classes implemented."""

    conformsTo: list[str] = Field(  # the standard's name
        description="URIs of the conformance classes",
        examples=[["http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"]],
    )


class SpatialExtent(ApiModel):
    """Spatial extent: one bbox (west, south, east, north) in ``crs``."""

    bbox: list[list[float]] = Field(
        description="bounding boxes, CRS84 west, south, east, north",
        examples=[[[109.55, 21.63, 110.9, 23.13]]],
    )
    crs: str = Field(description="CRS of the bboxes (CRS84)")


class TemporalExtent(ApiModel):
    """Temporal extent: one interval, ``null`` ends open."""

    interval: list[list[datetime | None]] = Field(
        description="intervals [start, end], RFC 3339 UTC; null is open",
        examples=[[["2025-11-01T00:00:00+00:00", None]]],
    )
    trs: str = Field(description="temporal reference system (Gregorian)")


class Extent(ApiModel):
    """Spatial and (when known) temporal extent of a collection."""

    spatial: SpatialExtent = Field(description="where the features are")
    temporal: TemporalExtent | None = Field(None, description="when they are valid/reported")


class Collection(ApiModel):
    """One feature collection."""

    id: str = Field(description="collection id", examples=["grids"])
    title: str = Field(description="title", examples=["Grids (网格)"])
    description: str | None = Field(None, description="what the collection holds")
    itemType: str = Field("feature", description="feature")
    crs: list[str] = Field(description="CRSs the features can be served in (CRS84)")
    extent: Extent = Field(description="spatial and temporal extent")
    links: list[Link] = Field(description="self and items")


class Collections(ApiModel):
    """``/ogc/collections``: every collection."""

    links: list[Link] = Field(description="self")
    collections: list[Collection] = Field(description="the collections")


class OgcFeature(ApiModel):
    """A GeoJSON Feature of a collection (``links`` on the single-item answer)."""

    model_config = ConfigDict(extra="allow")

    type: Literal["Feature"] = "Feature"
    id: str | int = Field(description="feature id (unit code, code@v<version>, incident id)")
    geometry: Geometry | None = Field(None, description="CRS84 geometry")
    properties: dict[str, Any] = Field(description="attributes (units: with load metrics)")
    links: list[Link] | None = Field(None, description="self and collection (single item)")


class FeaturePage(ApiModel):
    """A page of items: a GeoJSON FeatureCollection with paging links and counts."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    timeStamp: str = Field(  # the standard's name
        description="when the answer was made, RFC 3339 UTC", examples=["2026-03-01T08:00:00Z"]
    )
    numberReturned: int = Field(description="features in this page")
    numberMatched: int | None = Field(  # the standard's name
        None, description="features matching the filters, all pages"
    )
    links: list[Link] = Field(description="self, next (more follow), prev, collection")
    features: list[OgcFeature] = Field(description="the features of the page")


#: The shape of ``/ogc/collections/{id}/queryables``: a JSON Schema (draft 2020-12) whose
#: ``properties`` are the queryables (Part 3, /req/queryables). A plain dict: the answer is
#: itself a schema, whose keys (``$schema``, ``$id``) are no model's field names.
QUERYABLES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["$schema", "$id", "type", "properties"],
    "properties": {
        "$schema": {
            "type": "string",
            "description": "the JSON Schema dialect",
            "examples": ["https://json-schema.org/draft/2020-12/schema"],
        },
        "$id": {
            "type": "string",
            "format": "uri",
            "description": "this document's URL",
            "examples": ["http://localhost:8000/ogc/collections/grids/queryables"],
        },
        "type": {"type": "string", "const": "object", "description": "always object"},
        "title": {"type": "string", "description": "the collection's title", "examples": ["Grids"]},
        "properties": {
            "type": "object",
            "description": "queryable name → its JSON Schema (title, type, format, enum…)",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "title": {"type": "string", "description": "the queryable's name"},
                    "description": {"type": "string", "description": "what it is"},
                    "type": {
                        "type": "string",
                        "enum": ["string", "integer", "number", "boolean"],
                        "description": "JSON type (absent for the geometry)",
                    },
                    "format": {
                        "type": "string",
                        "description": "date-time, or geometry-point / geometry-any …",
                    },
                    "enum": {"type": "array", "items": {}, "description": "the values allowed"},
                    "x-ogc-role": {
                        "type": "string",
                        "description": "primary-geometry for the geometry",
                    },
                },
            },
            "examples": [{"code": {"title": "code", "type": "string"}}],
        },
        "additionalProperties": {
            "type": "boolean",
            "description": "true: other properties may exist (not queryable)",
        },
    },
}

#: The shape of ``/ogc/api``: an OpenAPI 3.0 document of the OGC routes alone.
OGC_OPENAPI_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["openapi", "info", "paths"],
    "properties": {
        "openapi": {"type": "string", "description": "OpenAPI version", "examples": ["3.1.0"]},
        "info": {
            "type": "object",
            "required": ["title", "version"],
            "properties": {
                "title": {"type": "string", "examples": ["geogrid OGC API - Features"]},
                "version": {"type": "string", "examples": ["1.0.0"]},
                "description": {"type": "string"},
            },
        },
        "servers": {
            "type": "array",
            "description": "the base URL (/ogc)",
            "items": {
                "type": "object",
                "properties": {"url": {"type": "string", "format": "uri"}},
            },
        },
        "paths": {
            "type": "object",
            "description": "path (relative to /ogc) → its operations",
            "additionalProperties": {"type": "object", "description": "a Path Item Object"},
        },
        "components": {
            "type": "object",
            "description": "the schemas the paths refer to",
            "additionalProperties": {"type": "object"},
        },
    },
}
