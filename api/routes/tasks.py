"""My tasks: the open incidents the caller answers for, overdue first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from api.auth import AccountDep
from api.deps import EngineDep
from api.models.common import error_responses
from api.models.tasks import Task
from geogrid.services import tasks

__all__ = ["router"]

router = APIRouter(tags=["terminal"])


@router.get(
    "/tasks",
    response_model=list[Task],
    summary="My tasks, overdue first",
    responses=error_responses(400, 401),
)
def my_tasks(
    engine: EngineDep,
    account: AccountDep,
    response: Response,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="at most this many", examples=[100])
    ] = 100,
    offset: Annotated[
        int, Query(ge=0, le=10_000_000, description="skip this many first", examples=[0])
    ] = 0,
) -> list[dict[str, Any]]:
    """Open incidents assigned to the caller, to their units (a worker's grids) or to a
    grid of one of their teams: overdue first, then by due time; each with its allowed
    next statuses and `updated_at` (send it back as `expected_updated_at`). The number of
    tasks on every page is in the `X-Total-Count` header."""
    rows, total = tasks.my_tasks(engine, account, limit=limit, offset=offset)
    response.headers["X-Total-Count"] = str(total)
    return rows
