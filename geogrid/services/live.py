"""The live map's feed: one PostgreSQL listener per process fanning incident events out to
subscribers (Server-Sent Events clients), scoped, and driving the map caches' invalidation.

:class:`LiveHub` lives on the :class:`~geogrid.services.context.AppContext` and runs in the
service's event loop (started and stopped by the app's lifespan). It LISTENs on
:data:`geogrid.core.live.CHANNEL` (one notification per statement that inserts incidents
or changes their status: migration 0014) and on ``map_change`` (every map edit, boundary
publishes included) with :func:`geogrid.store.notify.listen`:

* each incident event goes to every subscriber whose :class:`~geogrid.core.scope.Scope`
  may see it (:func:`geogrid.core.live.visible`): a worker only their grids' incidents,
  anonymous subscribers public fields only. A statement of more than 16 rows arrives as
  one ``bulk`` event (its count and extent), not row by row;
* any notification makes the map service apply the new ``map_change`` rows at once
  (:meth:`MapService.poll`, forced, coalesced: one poll in flight, one queued), which
  drops exactly the incident, heat and metric tiles around the change. While the listener
  is up the map service's own polling slows to a fallback interval
  (:meth:`MapService.set_push`); when the listener is down (database restart, network),
  polling resumes at its normal pace until the listener reconnects.

A subscriber's queue is bounded: a client too slow to read loses the oldest events (and
gets a ``bulk`` refresh instead), it never holds memory of the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from geogrid.core.live import CHANNEL, Batch, parse_batch, visible
from geogrid.core.scope import Scope
from geogrid.services.accounts import TokenCache
from geogrid.services.mapservice import MapService
from geogrid.store.notify import AUTH_CHANNEL, MAP_CHANNEL, dsn_of, listen

__all__ = ["LiveEvent", "LiveHub", "Subscriber"]

log = logging.getLogger("geogrid.services.live")

#: events kept per subscriber before the oldest are dropped
QUEUE_SIZE = 256
#: issue 10 (REPORTS): shortest pause (s) between two pushed polls of the map changes. The
#: first change after a quiet spell is applied at once; under a stream of reports (200/s:
#: one notification per report) the changes that arrive meanwhile are applied together,
#: a few times a second, instead of one poll per report.
POLL_GAP = 0.25


@dataclass(frozen=True)
class LiveEvent:
    """One event for one subscriber: ``kind`` (new, status, bulk) and its ``data``."""

    kind: str
    data: dict[str, Any]


@dataclass(eq=False)
class Subscriber:
    """A client of the feed: its scope and its queue of :class:`LiveEvent`."""

    scope: Scope
    queue: asyncio.Queue[LiveEvent] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: int = 0

    def offer(self, event: LiveEvent) -> None:
        """Queue ``event``; when full, drop the oldest and note it."""
        while True:
            try:
                self.queue.put_nowait(event)
                return
            except asyncio.QueueFull:
                with contextlib.suppress(asyncio.QueueEmpty):
                    self.queue.get_nowait()
                self.dropped += 1


class LiveHub:
    """One listener per process, many subscribers.

    Parameters
    ----------
    engine : Engine
        The database (the listener opens its own connection on the same URL).
    maps : MapService, optional
        The map service whose caches follow the notifications.
    """

    def __init__(
        self, engine: Engine, maps: MapService | None = None, tokens: TokenCache | None = None
    ) -> None:
        self.engine = engine
        self.maps = maps
        #: issue 10: the process's token cache, emptied on every ``geogrid_auth``
        self.tokens = tokens
        self.subscribers: set[Subscriber] = set()
        self.up = False
        self.received = 0
        self._task: asyncio.Task[None] | None = None
        self._poll: asyncio.Task[None] | None = None
        self._poll_again = False
        self._ready = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle
    async def start(self, *, wait: float = 5.0) -> None:
        """Start listening (waits up to ``wait`` s for the LISTEN to be in place, so an
        event committed right after start is not missed)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="geogrid-live-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), wait)

    async def stop(self) -> None:
        """Stop listening and release the connection."""
        for task in (self._task, self._poll):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._poll = None
        self._set_up(False)

    async def _run(self) -> None:
        dsn = dsn_of(self.engine)
        backoff = 0.5
        while True:
            try:
                await listen(
                    dsn, (CHANNEL, MAP_CHANNEL, AUTH_CHANNEL), self._on_notify, on_ready=self._on_up
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: fall back, retry
                log.warning(
                    "live listener down (%s); retrying in %.1f s", type(exc).__name__, backoff
                )
            self._set_up(False)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    def _on_up(self) -> None:
        self._set_up(True)
        self._ready.set()
        self._schedule_poll()  # changes made while we were down

    def _set_up(self, up: bool) -> None:
        self.up = up
        if self.maps is not None:
            self.maps.set_push(up)
        if self.tokens is not None and self.tokens.watched != up:
            self.tokens.watch(up)

    # ------------------------------------------------------------------ subscribers
    def subscribe(self, scope: Scope) -> Subscriber:
        """A new subscriber of ``scope`` (call :meth:`unsubscribe` when it leaves)."""
        sub = Subscriber(scope)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    # ------------------------------------------------------------------ notifications
    def _on_notify(self, channel: str, payload: str) -> None:
        self.received += 1
        if channel == AUTH_CHANNEL:
            if self.tokens is not None:
                self.tokens.clear()
            return
        if channel == CHANNEL and self.subscribers:  # issue 10: no parse for nobody
            batch = parse_batch(payload)
            if batch is not None:
                self.publish(batch)
        self._schedule_poll()

    def publish(self, batch: Batch) -> None:
        """Hand a batch's events to the subscribers that may see them."""
        if batch.truncated:
            bulk = LiveEvent("bulk", {"kind": batch.kind, "count": batch.count, "bbox": batch.bbox})
            for sub in list(self.subscribers):
                sub.offer(bulk)
            return
        for event in batch.events:
            for sub in list(self.subscribers):
                data = visible(sub.scope, event)
                if data is not None:
                    sub.offer(LiveEvent(str(event.get("kind") or batch.kind), data))

    def _schedule_poll(self) -> None:
        """Apply the map changes now, in a thread; coalesced (one running, one queued)."""
        if self.maps is None:
            return
        if self._poll is not None and not self._poll.done():
            self._poll_again = True
            return
        self._poll = asyncio.get_running_loop().create_task(self._apply())

    async def _apply(self) -> None:
        assert self.maps is not None
        while True:
            self._poll_again = False
            try:
                await asyncio.to_thread(self.maps.poll, True)
            except Exception as exc:  # pragma: no cover - poll logs its own failures
                log.warning("map change poll failed: %s", exc)
            if not self._poll_again:
                return
            await asyncio.sleep(POLL_GAP)  # the notifications meanwhile: one batch
