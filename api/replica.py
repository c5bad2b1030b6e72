"""Read replicas in the API (issue 12; the routing is :mod:`geogrid.services.replica`).

* :func:`caller_key` — who a request comes from, for read-your-writes: a hash of its
  bearer token or session cookie (never the secret itself), else its client address.
* :class:`ReplicaMiddleware` — with a replica configured:

  - after a write (``POST``/``PUT``/``PATCH``/``DELETE`` answered below 400), and before
    the answer leaves, the primary's WAL position is remembered for the caller, so that
    the caller's next reads wait for a replica that has it (or use the primary);
  - a ``GET``/``HEAD`` whose read failed on the replica (it went down between two health
    checks, or a recovery conflict cancelled the query) and that would answer 5xx is
    answered again, once, on the primary: the replica's failure never reaches the caller.
    Only the status line is held back until the app answers, so streams (SSE) pass as
    they are.

Without a replica the middleware passes every request through untouched.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.concurrency import run_in_threadpool

from geogrid.core.credentials import SESSION_COOKIE
from geogrid.services.replica import begin_attempt

__all__ = ["ReplicaMiddleware", "caller_key", "replica_reads"]

log = logging.getLogger("geogrid.api.replica")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_READS = frozenset({"GET", "HEAD"})
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_COOKIE = SESSION_COOKIE.encode()


def caller_key(scope: Scope) -> str | None:
    """A stable, non-secret key of the request's caller: ``t:``/``s:`` and a hash of the
    bearer token or the session cookie, else ``a:`` and the client's address."""
    auth = cookie = None
    for k, v in scope.get("headers", ()):
        if k == b"authorization":
            auth = v
        elif k == b"cookie":
            cookie = v
    if auth is not None and auth[:7].lower() == b"bearer ":
        return "t:" + hashlib.sha256(auth[7:].strip()).hexdigest()[:24]
    if cookie is not None:
        for part in cookie.split(b";"):
            name, _, value = part.strip().partition(b"=")
            if name == _COOKIE and value:
                return "s:" + hashlib.sha256(value).hexdigest()[:24]
    client = scope.get("client")
    return f"a:{client[0]}" if client else None


def _reads(scope: Scope) -> Any:
    app = scope.get("app")
    ctx = getattr(getattr(app, "state", None), "ctx", None)
    reads = getattr(ctx, "reads", None)
    return reads if reads is not None and reads.enabled else None


def replica_reads(scope: Scope) -> bool:
    """Whether the app reads from a replica: then a read goes through
    :class:`ReplicaMiddleware` (answered again on the primary when the replica fails)."""
    return _reads(scope) is not None


class ReplicaMiddleware:
    """ASGI middleware: read-your-writes positions and the replica's failed reads answered
    again on the primary (see the module's notes)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        reads = _reads(scope)
        if reads is None:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method in _READS:
            await self._read(scope, receive, send)
        elif method in _WRITES:
            await self._write(scope, receive, send, reads)
        else:
            await self.app(scope, receive, send)

    async def _read(self, scope: Scope, receive: Receive, send: Send) -> None:
        attempt = begin_attempt()
        started = False

        async def hold(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                if message["status"] >= 500 and attempt["failed"]:
                    raise _RetryOnPrimary
                started = True
            await send(message)

        try:
            await self.app(scope, receive, hold)
            return
        except _RetryOnPrimary:
            pass
        except Exception:
            if started or not attempt["failed"]:
                raise
        log.info("read failed on the replica; answered on the primary: %s", scope["path"])
        begin_attempt(force_primary=True)
        replayed = False

        async def again() -> Message:
            nonlocal replayed
            if not replayed:  # a GET's (empty) body, once more
                replayed = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return await receive()

        await self.app(scope, again, send)

    async def _write(self, scope: Scope, receive: Receive, send: Send, reads: Any) -> None:
        key = caller_key(scope)

        async def note(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                try:  # the write has committed: its position, before the caller hears of it
                    await run_in_threadpool(reads.note_write, key)
                except Exception as exc:  # the write stands; only the routing is less fresh
                    log.warning("could not read the primary's WAL position: %s", exc)
            await send(message)

        await self.app(scope, receive, note)


class _RetryOnPrimary(Exception):
    """A read's answer to drop: it failed on the replica and is answered again."""
