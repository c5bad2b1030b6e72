"""``GET /health``: database reachable, PostgreSQL/PostGIS versions, published boundary
version."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from api.deps import ContextDep
from api.models.health import HealthReport
from geogrid.services.health import HEALTHY, health_report

__all__ = ["router"]

router = APIRouter(tags=["service"])


@router.get(
    "/health",
    response_model=HealthReport,
    summary="Health of the service",
    responses={503: {"model": HealthReport, "description": "the database does not answer"}},
)
async def health(ctx: ContextDep, response: Response) -> dict[str, Any]:
    """200 when the database answers, 503 (with the same body) when it does not. The
    database is probed at most once a second per server process."""
    report = ctx.health.recent()  # on the event loop: no thread, no query
    if report is None:
        report = await run_in_threadpool(health_report, ctx.engine, ctx.health)
    if ctx.reads is not None and ctx.reads.enabled:  # issue 12: its state and lag
        report["replica"] = await run_in_threadpool(ctx.reads.report)  # may query it
    if report["status"] != HEALTHY:
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return report
