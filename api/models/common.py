"""Models shared by several resources: the error body and GeoJSON."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ErrorBody", "Geometry", "Feature", "FeatureCollection", "ERROR_RESPONSES"]


class ErrorBody(BaseModel):
    """The body of every 4xx/5xx answer (see ``api/errors.py``)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="error class", examples=["InvalidInput"])
    message: str = Field(
        description="what went wrong, naming the parameter, the value and what is allowed",
        examples=[
            "level: 'town' is not allowed; expected one of district, street, community, grid"
        ],
    )
    parameter: str | None = Field(None, description="the offending parameter", examples=["level"])


class Geometry(BaseModel):
    """A GeoJSON geometry (RFC 7946), WGS84 lon/lat."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="GeoJSON geometry type", examples=["MultiPolygon"])
    coordinates: Any = Field(None, description="coordinates, WGS84 (lon, lat) degrees")


class Feature(BaseModel):
    """A GeoJSON Feature."""

    model_config = ConfigDict(extra="allow")

    type: Literal["Feature"] = "Feature"
    id: str | int | None = Field(None, description="feature id")
    geometry: Geometry | None = Field(None, description="WGS84 geometry")
    properties: dict[str, Any] | None = Field(None, description="feature attributes")


class FeatureCollection(BaseModel):
    """A GeoJSON FeatureCollection."""

    model_config = ConfigDict(extra="allow")

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature] = Field(description="the features")


#: ``responses=`` for routes: the documented error answers
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "invalid input (the parameter is named)"},
    404: {"model": ErrorBody, "description": "not found"},
}
