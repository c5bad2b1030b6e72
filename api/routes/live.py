"""The live map's feed: ``GET /live/incidents`` (Server-Sent Events).

New incidents and status changes, as the database commits them (PostgreSQL
``LISTEN/NOTIFY`` → :class:`geogrid.services.live.LiveHub` → this stream), scoped to the
caller: signed-in staff by bearer token or session cookie (workers and unit admins: only
their units' incidents), anonymous callers public fields only. Events:

* ``ready`` — once, when subscribed: ``{"scope": "public"|"units"|"city", "listening": bool}``;
* ``new`` / ``status`` — one incident: ``id``, ``status``, ``category``, the four unit
  codes, ``lon``/``lat`` (WGS84), ``reported_at``; the SSE ``id`` is the incident id;
* ``bulk`` — a statement too large to list (an import): ``count`` and ``bbox``;
  refresh what you show.

A comment line (``: ping``) every 15 s keeps proxies from closing an idle stream.

The stream stays open only for a client that asks for one (``Accept: text/event-stream``,
as every ``EventSource`` does); any other client gets the ``ready`` event and the end of
the answer, so a generic HTTP client or an API fuzzer is never left hanging.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.auth import OptionalAccountDep
from api.deps import ContextDep
from api.models.common import error_responses
from geogrid.core.live import EVENT_FIELDS
from geogrid.core.scope import Scope
from geogrid.errors import DatabaseUnavailable

__all__ = ["router", "HEARTBEAT"]

router = APIRouter(prefix="/live", tags=["live"])

#: seconds between two heartbeat comments
HEARTBEAT = 15.0


@router.get(
    "/incidents",
    summary="Live incidents (Server-Sent Events)",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "an event stream: ready, then new / status / bulk events "
            f"(data: JSON with {', '.join(EVENT_FIELDS)})",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **error_responses(401, 503),
    },
)
async def live_incidents(
    request: Request, ctx: ContextDep, account: OptionalAccountDep
) -> EventSourceResponse:
    hub = ctx.live
    if hub is None:
        raise DatabaseUnavailable("the live feed is not running in this process")
    scope = Scope.of(account)
    stream = "text/event-stream" in request.headers.get("accept", "")
    sub = hub.subscribe(scope)

    async def events() -> AsyncIterator[ServerSentEvent]:
        try:
            yield ServerSentEvent(
                data=_json({"scope": scope.kind, "listening": hub.up}), event="ready"
            )
            while stream:
                ev = await sub.queue.get()
                eid = ev.data.get("id")
                yield ServerSentEvent(
                    data=_json(ev.data), event=ev.kind, id=None if eid is None else str(eid)
                )
        finally:
            hub.unsubscribe(sub)

    return EventSourceResponse(
        events(), ping=HEARTBEAT, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
