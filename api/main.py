"""The FastAPI application factory.

The composition is explicit: every router is listed in :data:`ROUTERS`, and the state of
a running service (engine, settings, caches) is one
:class:`~geogrid.services.context.AppContext`, opened in the app's ``lifespan`` on
``app.state.ctx`` and closed when the app stops. Routes get it through
:data:`api.deps.ContextDep` / :data:`api.deps.EngineDep`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI

from api.errors import add_exception_handlers, document_errors
from api.json import GeogridJSONResponse
from api.limits import LimitsMiddleware, install_log_redaction
from api.replica import ReplicaMiddleware
from api.routes import (
    analytics,
    audit,
    boundaries,
    config,
    disputes,  # issue 13 (TERM-C)
    docs,
    health,
    incidents,
    live,  # issue 12 (SCALE)
    locate,
    media,  # issue 13 (TERM-A)
    mobile,
    notifications,  # issue 13 (TERM-C)
    ogc,
    open311,
    patrols,
    plans,
    register,
    registry,
    residents,
    session,
    sync,  # issue 13 (TERM-C)
    tasks,  # issue 13 (TERM-C)
    teams,  # issue 13 (TERM-C)
    terminals,
    tiles,
    units,
    web,
    workers,
)
from geogrid.services import idempotency
from geogrid.services import media as media_service
from geogrid.services import notifications as notifications_service  # issue 13
from geogrid.services import partitions as partitions_service  # issue 12
from geogrid.services.context import AppContext
from geogrid.services.live import LiveHub  # issue 12
from geogrid.services.offload import Offload  # issue 10
from geogrid.settings import Settings, get_settings

__all__ = ["ROUTERS", "GeogridAPI", "create_app", "app_from_env"]

#: every router of the API, in the order of the OpenAPI document
ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    locate.router,
    boundaries.router,
    incidents.router,
    open311.router,
    analytics.router,
    ogc.router,
    live.router,  # issue 12: the live map's Server-Sent Events
    tiles.router,
    plans.router,
    session.router,
    units.router,
    config.router,
    web.router,
    mobile.router,  # issue 13: the worker's phone app at /m/
    terminals.router,  # issue 13: enrolled devices
    media.router,  # issue 13: photos and videos
    registry.router,  # issue 15: the registry's reads
    patrols.router,  # issue 13: patrol tracks and metrics
    register.router,  # issue 13: service register entries and exports
    residents.router,  # issue 14: satisfaction, follow-ups, evaluation rounds
    workers.router,  # issue 14: the worker's file and the year-end review
    teams.router,  # issue 13: grid teams
    tasks.router,  # issue 13: my tasks
    disputes.router,  # issue 13: disputes
    notifications.router,  # issue 13: notifications
    sync.router,  # issue 13: the terminal's sync bundle
    docs.router,
    audit.router,
)

_DESCRIPTION = (
    "Grid-management boundaries, incidents, metrics and maps. Coordinates are WGS84 "
    "(EPSG:4326, lon/lat) unless a `crs` parameter says otherwise (`wgs84`, `gcj02`, "
    "`bd09` or an EPSG code). Times are ISO 8601; answers give them in UTC with an "
    "explicit offset. Every error answer is an `ErrorBody`."
)


class GeogridAPI(FastAPI):
    """The app: FastAPI whose OpenAPI document shows the errors it really sends."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = document_errors(super().openapi())
        return self.openapi_schema


async def _prune_keys_hourly(ctx: AppContext) -> None:
    """Forget expired Idempotency-Keys once an hour (in a worker thread; a failure is
    logged and retried at the next hour, never fatal)."""
    while True:
        try:
            await asyncio.to_thread(
                idempotency.prune, ctx.engine, ctx.settings.idempotency_ttl_days
            )
            await asyncio.to_thread(media_service.prune_partials, ctx.settings)  # issue 13
            # issue 12: this month and the next ones partitioned ahead, the DEFAULT one emptied
            await asyncio.to_thread(partitions_service.maintain, ctx.engine)
        except Exception:  # a database outage must not stop the service
            logging.getLogger("geogrid").warning("idempotency key pruning failed", exc_info=True)
        await asyncio.sleep(3600)


def create_app(database_url: str | None = None, settings: Settings | None = None) -> FastAPI:
    """Build the app.

    Parameters
    ----------
    database_url : str, optional
        SQLAlchemy URL of the PostGIS database (default: the settings' URL, i.e.
        ``GEOGRID_DATABASE_URL``, or the embedded cluster).
    settings : Settings, optional
        The service's settings (default: :func:`geogrid.settings.get_settings`).

    Returns
    -------
    FastAPI
        The app; its context is opened when the server starts (``lifespan``).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = AppContext.open(database_url, settings)
        app.state.ctx = ctx
        if ctx.settings.switch_interval_ms is not None:  # issue 10: see the setting
            sys.setswitchinterval(ctx.settings.switch_interval_ms / 1000)
        # issue 10: as many request threads as the engine keeps connections for
        anyio.to_thread.current_default_thread_limiter().total_tokens = ctx.settings.request_threads
        # issue 10: expensive analytics out of the serving process, in niced processes
        app.state.offload = Offload(ctx.settings.expensive_processes, ctx.settings.expensive_nice)
        app.state.offload.start(("api.routes.analytics",))
        prune = asyncio.create_task(_prune_keys_hourly(ctx))
        notifier = notifications_service.start_periodic(ctx.engine, ctx.settings)  # issue 13
        ctx.live = LiveHub(
            ctx.engine, ctx.maps, ctx.tokens
        )  # issue 12: LISTEN/NOTIFY → SSE and caches
        await ctx.live.start()
        # issues 10 and 12: what start-up made (modules, the app, the context's caches)
        # lives as long as the process; frozen out of the collector's sight (gc.freeze, as
        # the Python documentation advises for long-lived servers), a full collection
        # walks only what requests made since — it walked ~225,000 objects, pausing every
        # request of the process for ~100 ms, every few map or metrics requests
        gc.freeze()
        try:
            yield
        finally:
            await ctx.live.stop()
            prune.cancel()
            await notifications_service.stop_periodic(notifier)
            app.state.offload.close()
            ctx.close()

    app = GeogridAPI(
        title="geogrid",
        version="0.1.0",
        description=_DESCRIPTION,
        lifespan=lifespan,
        default_response_class=GeogridJSONResponse,
        telemetry=None
        if (settings or get_settings()).opentelemetry
        else {"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        docs_url=None,
        redoc_url=None,
    )
    add_exception_handlers(app)
    # issue 12: read-your-writes positions; a read failed on the replica answered again
    app.add_middleware(ReplicaMiddleware)
    app.add_middleware(tiles.CachedTiles)  # issue 12: cached tiles before routing, in the limits
    # body/field limits, rate limits, the expensive gate, statement timeouts (api/limits.py)
    app.add_middleware(LimitsMiddleware, settings=settings or get_settings())
    install_log_redaction()
    for router in ROUTERS:  # every request's client is bound for the audit trail
        app.include_router(router, dependencies=[Depends(audit.audit_client)])
    _prepare_routes(app.router.routes)
    return app


def _prepare_routes(routes: list[Any]) -> None:
    """Build the included routers' effective routes now. FastAPI ≥ 0.16x builds them at the
    first request that needs them — an unmatched path or a redirect builds every one, 3.5 s
    on this API — so without this the first such request of a fresh worker stalls.
    Duck-typed: with a FastAPI that builds routes eagerly there is nothing to call."""
    for route in routes:
        build = getattr(route, "effective_candidates", None)
        if callable(build):
            _prepare_routes(list(build()))
            low = getattr(route, "effective_low_priority_routes", None)
            if callable(low):
                low()


def app_from_env() -> FastAPI:
    """The app on the environment's settings (the ``geogrid serve`` entry point)."""
    logging.basicConfig(level=logging.INFO)
    return create_app()
