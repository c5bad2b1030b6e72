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

from api.replica import caller_key
from geogrid.services.context import AppContext

__all__ = [
    "ContextDep",
    "EngineDep",
    "ReadAfterDep",
    "ReadEngineDep",
    "context_of",
    "get_context",
    "get_engine",
    "get_read_engine",
    "read_after",
]


def context_of(request: Request) -> AppContext:
    """The context the app's ``lifespan`` put on ``app.state.ctx``."""
    ctx: AppContext = request.app.state.ctx
    return ctx


# issue 10: the dependencies that only read the app's state are coroutines — a plain
# ``def`` dependency is run in the thread pool, a hop per dependency per request


async def get_context(request: Request) -> AppContext:
    """The context the app's ``lifespan`` put on ``app.state.ctx``."""
    return context_of(request)


async def get_engine(request: Request) -> Engine:
    """The engine of the app's context."""
    return context_of(request).engine


def get_read_engine(request: Request) -> Engine:
    """The engine of read-only work (issue 12): the replica when one is configured, up,
    not lagging and caught up with the caller's own last write; else the primary. Only
    for routes whose services never write (no audit row, no last-seen update). (A thread:
    the replica's health check may query it.)"""
    return context_of(request).read_engine(caller_key(request.scope))


async def read_after(request: Request) -> int | None:
    """The primary's WAL position the caller's reads must see (its last write), or None."""
    reads = context_of(request).reads
    return reads.written(caller_key(request.scope)) if reads is not None else None


ContextDep = Annotated[AppContext, Depends(get_context)]
EngineDep = Annotated[Engine, Depends(get_engine)]
ReadEngineDep = Annotated[Engine, Depends(get_read_engine)]
ReadAfterDep = Annotated[int | None, Depends(read_after)]
