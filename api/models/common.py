"""Models shared by several resources: the base of every answer model, the error body and
GeoJSON.

Answer models subclass :class:`ApiModel` so that their JSON follows the API's one set of
rules (:func:`api.json.jsonable`): datetimes in UTC with an explicit offset, NaN and
infinities as ``null``, numpy values as plain numbers, also inside ``dict[str, Any]``
fields.

Error answers: add ``responses=error_responses(...)`` (or :data:`ERROR_RESPONSES` for the
common 400/404) to a route so the OpenAPI document lists the statuses it can answer with,
each with an :class:`ErrorBody`::

    @router.get("/things/{code}", response_model=Thing, responses=error_responses(400, 404))

Invalid parameters and malformed bodies are always answered with 400 + ``ErrorBody`` (the
app documents that for every operation that has parameters; see :mod:`api.errors`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FieldSerializationInfo,
    SerializerFunctionWrapHandler,
    field_serializer,
)

from api.json import jsonable

__all__ = [
    "ApiModel",
    "ErrorBody",
    "Geometry",
    "Feature",
    "FeatureCollection",
    "ERROR_DESCRIPTIONS",
    "ERROR_RESPONSES",
    "error_responses",
]


class ApiModel(BaseModel):
    """Base of the API's models: JSON output through :func:`api.json.jsonable`.

    >>> from datetime import datetime, timedelta, timezone
    >>> class Stamp(ApiModel):
    ...     at: datetime
    ...     score: float | None
    ...     extra: dict[str, Any] = {}
    >>> cst = timezone(timedelta(hours=8))
    >>> Stamp(at=datetime(2026, 3, 1, 16, tzinfo=cst), score=float("nan"),
    ...       extra={"seen": datetime(2026, 3, 1, 16, tzinfo=cst)}).model_dump_json()
    '{"at":"2026-03-01T08:00:00+00:00","score":null,"extra":{"seen":"2026-03-01T08:00:00+00:00"}}'
    """

    #: fields whose values are already plain JSON numbers and lists (e.g. GeoJSON
    #: coordinates): left to pydantic's own, much faster, serialiser
    _plain_fields: ClassVar[frozenset[str]] = frozenset()
    #: fields left to pydantic: the plain ones and those holding models (which apply
    #: these rules to their own fields); computed for each subclass
    _by_pydantic: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        nested = {n for n, f in cls.model_fields.items() if _holds_models(f.annotation)}
        cls._by_pydantic = frozenset(nested) | cls._plain_fields

    # The return type is deliberately not annotated: an annotation would replace every
    # field's own schema in the OpenAPI document by the annotation's.
    @field_serializer("*", mode="wrap")
    def _json_rules(
        self, value: Any, handler: SerializerFunctionWrapHandler, info: FieldSerializationInfo
    ):
        if not info.mode_is_json() or info.field_name in self._by_pydantic:
            return handler(value)
        return jsonable(value)


def _holds_models(annotation: Any) -> bool:
    """Whether a field annotation mentions a pydantic model (``list[Feature] | None``...).

    >>> _holds_models(list[Feature] | None), _holds_models(dict[str, Any])
    (True, False)
    """
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_models(arg) for arg in get_args(annotation))


class ErrorBody(ApiModel):
    """The body of every 4xx/5xx answer (see ``api/errors.py``)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(
        description="error class: InvalidInput, FileInputError, NotFound, Conflict, "
        "TopologyError, Unauthorized, Forbidden, DatabaseUnavailable, HTTPError or InternalError",
        examples=["InvalidInput"],
    )
    message: str = Field(
        description="what went wrong, naming the parameter, the value and what is allowed",
        examples=["level='town' is not valid: expected one of district, street, community, grid"],
    )
    parameter: str | None = Field(
        None, description="the offending parameter (InvalidInput)", examples=["level"]
    )
    value: Any = Field(None, description="the value received (InvalidInput)", examples=["town"])
    allowed: str | None = Field(
        None,
        description="what would have been accepted, in words (InvalidInput)",
        examples=["one of district, street, community, grid"],
    )
    errors: list[dict[str, Any]] | None = Field(
        None,
        description="every problem found: for invalid requests ``parameter``, ``in`` (query, "
        "path, header, body), ``message`` and ``value``; for refused files ``file``, ``row``, "
        "``field``, ``message`` and ``value``",
    )
    findings: list[dict[str, Any]] | None = Field(
        None, description="the topology findings that refused an edit (TopologyError)"
    )


class Geometry(ApiModel):
    """A GeoJSON geometry (RFC 7946), WGS84 lon/lat."""

    model_config = ConfigDict(extra="allow")

    _plain_fields = frozenset({"coordinates"})

    type: str = Field(description="GeoJSON geometry type", examples=["MultiPolygon"])
    coordinates: Any = Field(None, description="coordinates, WGS84 (lon, lat) degrees")
    geometries: list[Geometry] | None = Field(
        None, description="the members of a GeometryCollection"
    )


class Feature(ApiModel):
    """A GeoJSON Feature."""

    model_config = ConfigDict(extra="allow")

    type: Literal["Feature"] = "Feature"
    id: str | int | None = Field(None, description="feature id")
    geometry: Geometry | None = Field(None, description="WGS84 geometry")
    properties: dict[str, Any] | None = Field(None, description="feature attributes")


class FeatureCollection(ApiModel):
    """A GeoJSON FeatureCollection."""

    model_config = ConfigDict(extra="allow")

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature] = Field(description="the features")


#: what each error status means (the mapping itself is ``api.errors.STATUS_CODES``)
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "invalid input (the parameter is named)",
    401: "no or an unknown bearer token",
    403: "the account may not do this (role or unit scope)",
    404: "not found",
    409: "conflicts with the stored state",
    422: "the edit would break the partition (findings attached)",
    503: "the database is unavailable",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the given error statuses, each with an :class:`ErrorBody`.

    >>> sorted(error_responses(400, 404))
    [400, 404]
    >>> error_responses(409)[409]["description"]
    'conflicts with the stored state'
    """
    return {s: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[s]} for s in statuses}


#: ``responses=`` for routes: the common error answers (400 and 404)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = error_responses(400, 404)
