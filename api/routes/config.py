"""``GET /config``: the city served (name, time zone, metric CRS, map view, source), the
unit levels, metrics, statuses and categories, for clients such as the web page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import ContextDep
from api.models.config import ClientConfig
from geogrid.services.city import city_config

__all__ = ["router"]

router = APIRouter(tags=["service"])


@router.get("/config", response_model=ClientConfig, summary="The city and its vocabulary")
def config(ctx: ContextDep) -> dict[str, Any]:
    """The city's configuration completed from the published boundaries
    (:func:`geogrid.services.city.city_config`)."""
    return city_config(ctx)
