"""Request dependencies: the :class:`~geogrid.services.context.AppContext` that the app's
``lifespan`` opened (``request.app.state.ctx``) and its engine.

Use them as annotated parameters::

    @router.get("/things", response_model=Things)
    def things(ctx: ContextDep) -> Things:
        return things_service.list_things(ctx)
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from geogrid.services.context import AppContext

__all__ = ["ContextDep", "EngineDep", "get_context", "get_engine"]


def get_context(request: Request) -> AppContext:
    """The context the app's ``lifespan`` put on ``app.state.ctx``."""
    ctx: AppContext = request.app.state.ctx
    return ctx


def get_engine(request: Request) -> Engine:
    """The engine of the app's context."""
    return get_context(request).engine


ContextDep = Annotated[AppContext, Depends(get_context)]
EngineDep = Annotated[Engine, Depends(get_engine)]
