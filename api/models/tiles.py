"""Answer models of the map tiles: TileJSON 3.0.0 documents (``/tiles/{layer}.json``,
``/heatmap.json``). The tiles themselves are binary (MVT, PNG) and documented as such on
their routes (:data:`MVT_RESPONSES`, :data:`PNG_RESPONSES`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.models.common import ApiModel, error_responses

__all__ = [
    "MVT",
    "PNG",
    "MVT_RESPONSES",
    "PNG_RESPONSES",
    "TileJSON",
    "VectorLayer",
]

MVT = "application/vnd.mapbox-vector-tile"
PNG = "image/png"


def _binary(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
            "description": description,
        },
        304: {"description": "not modified (the ETag named in If-None-Match is current)"},
        **error_responses(400),
    }


#: ``responses=`` of a vector tile route
MVT_RESPONSES = _binary(MVT, "a Mapbox Vector Tile 2.1 (extent 4096), with ETag")
#: ``responses=`` of a heat-map tile route
PNG_RESPONSES = _binary(PNG, "a 256×256 RGBA PNG, with ETag")


class VectorLayer(ApiModel):
    """One layer of a vector tile set (TileJSON ``vector_layers``)."""

    id: str = Field(description="layer name inside the tiles", examples=["grids"])
    description: str = Field(description="what the layer shows")
    minzoom: int = Field(description="lowest zoom with data", examples=[0])
    maxzoom: int = Field(description="highest zoom with data", examples=[22])
    fields: dict[str, str] = Field(
        description="attribute name → 'Type: description'",
        examples=[{"code": "String: unit code", "incidents": "Number: incidents (count)"}],
    )


class TileJSON(ApiModel):
    """A TileJSON 3.0.0 document (https://github.com/mapbox/tilejson-spec/tree/master/3.0.0)."""

    tilejson: str = Field("3.0.0", description="TileJSON version", examples=["3.0.0"])
    name: str = Field(description="name of the tile set", examples=["geogrid grids"])
    description: str | None = Field(None, description="what the tiles show")
    version: str | None = Field(None, description="version of the tile set", examples=["1.0.0"])
    attribution: str | None = Field(None, description="credit line to show with the map")
    scheme: str = Field("xyz", description="tile numbering: xyz (y from the north)")
    tiles: list[str] = Field(
        description="URL templates with {z}, {x}, {y} (and the request's window)",
        examples=[["http://localhost:8000/tiles/grids/{z}/{x}/{y}.mvt?from=2026-01-01"]],
    )
    minzoom: int = Field(description="lowest zoom", examples=[0])
    maxzoom: int = Field(description="highest zoom", examples=[22])
    bounds: list[float] = Field(
        description="extent, WGS84 west, south, east, north (degrees)",
        examples=[[109.55, 21.63, 110.9, 23.13]],
    )
    center: list[float] = Field(
        description="default view: longitude, latitude (WGS84 degrees) and zoom",
        examples=[[110.2, 22.4, 10]],
    )
    vector_layers: list[VectorLayer] | None = Field(
        None, description="the layers of vector tiles (absent for raster tiles)"
    )
