"""``GET /health``: database reachable, PostGIS version, published boundary version."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import EngineDep
from geogrid.store.health import health_report

router = APIRouter(tags=["service"])


@router.get("/health")
def health(engine: EngineDep) -> JSONResponse:
    report = health_report(engine)
    return JSONResponse(report, status_code=200 if report["status"] == "healthy" else 503)
