"""The FastAPI application factory: composes routers, opens the engine in ``lifespan``."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.errors import add_exception_handlers
from api.routes import boundaries, health, locate

__all__ = ["create_app", "app_from_env"]


def create_app(database_url: str | None = None) -> FastAPI:
    """Build the app on a database (default: ``GEOGRID_DATABASE_URL`` or the embedded one)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from geogrid.store import get_engine

        app.state.engine = get_engine(database_url)
        yield

    app = FastAPI(
        title="geogrid",
        version="0.1.0",
        description="Grid-management boundaries, incidents, metrics and maps. Coordinates "
        "are WGS84 (EPSG:4326, lon/lat) unless a `crs` parameter says otherwise "
        "(`gcj02`, `bd09`).",
        lifespan=lifespan,
    )
    add_exception_handlers(app)
    app.include_router(health.router)
    app.include_router(locate.router)
    app.include_router(boundaries.router)
    for extra in _optional_routers():
        app.include_router(extra)
    return app


def _optional_routers():
    """Routers of later features, included when their modules exist."""
    import importlib

    for name in ("incidents", "open311", "analytics", "ogc", "tiles", "plans", "web"):
        try:
            mod = importlib.import_module(f"api.routes.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"api.routes.{name}":
                raise
            continue
        yield mod.router


def app_from_env() -> FastAPI:
    logging.basicConfig(level=logging.INFO)
    return create_app()
