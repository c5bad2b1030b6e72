"""The terminal's sync bundle: what a grid worker's phone caches for offline work."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.auth import AccountDep
from api.caching import etag_response
from api.deps import ContextDep
from api.json import jsonable
from api.models.common import error_responses
from api.models.sync import SyncBundle
from geogrid.services import sync

__all__ = ["router"]

router = APIRouter(tags=["terminal"])


@router.get(
    "/sync",
    response_model=SyncBundle,
    summary="The terminal's offline bundle",
    responses={**error_responses(400, 401), 304: {"description": "unchanged (If-None-Match)"}},
)
def sync_bundle(
    request: Request,
    ctx: ContextDep,
    account: AccountDep,
    since: Annotated[
        datetime | None,
        Query(
            description="the last sync's `server_time` (ISO 8601 with a time zone): "
            "notifications created since then",
            examples=["2026-05-01T00:00:00+08:00"],
        ),
    ] = None,
) -> Response:
    """The caller's account and teams, their grids and buildings (GeoJSON), open tasks
    (overdue first), notifications since `since`, the category catalogue, the dispute
    vocabulary and the people due a visit. `ETag` over everything but `server_time`: send
    it as `If-None-Match` to get 304 when nothing changed."""
    data = jsonable(sync.bundle(ctx.engine, account, since=since, settings=ctx.settings))
    stable = {k: v for k, v in data.items() if k != "server_time"}
    digest = hashlib.sha256(
        json.dumps(stable, sort_keys=True, ensure_ascii=False).encode("utf-8")
    ).hexdigest()[:32]
    body = json.dumps(data, ensure_ascii=False).encode("utf-8")
    return etag_response(
        request,
        body,
        f'"{digest}"',
        "application/json",
        "private, no-cache",
        headers={"Vary": "Authorization, Cookie"},
    )
