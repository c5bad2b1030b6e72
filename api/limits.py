"""Request limits: one caller cannot starve the rest, and malformed input is refused early.

:class:`LimitsMiddleware` is a pure ASGI middleware (no ``BaseHTTPMiddleware``: bodies are
not copied twice and streaming answers are untouched). For every HTTP request, in order:

1. **Class** — :func:`classify` puts the request in a :class:`RequestClass` (``cheap``:
   ``/locate``, vector tiles, static files; ``expensive``: ``/hotspots``, ``/metrics/{level}``
   with a window, Open311 ``POST``, automatic partitions; ``standard``: the rest) and says
   whether it is *heavy* (runs under the concurrency gate).
2. **Rate** — a sliding-window limit per class (the ``limits`` library) per IP for
   anonymous callers and per credential (bearer token, ``api_key``, session cookie) for the
   others, in Redis when ``GEOGRID_REDIS_URL`` is set (shared by the workers), in memory
   otherwise → 429 with ``Retry-After``. Requests are also weighted by their cost: the
   server time each standard or expensive request took is charged to its caller's
   *time budget* (``time_budget_anonymous`` / ``time_budget_account``, tenths of a second
   per window); a caller who used it up waits (429) while the others are served. Issue 10:
   a refusal is remembered by the process for a second (answered again without Redis),
   and a caller asking again before its Retry-After gets its 429 after a pause of up to a
   second (no CPU): hammering a limit cannot keep a worker busy saying no.
3. **Malformed values** — a NUL byte or bytes that are not UTF-8 in the path or a query
   parameter, an over-long path → 400 naming the parameter.
4. **Body** — more than ``body_limit`` bytes (``body_limit_plans`` under ``/plans``,
   ``body_limit_patrols`` for ``POST /patrols``) → 413;
   JSON bodies with ``NaN``/``Infinity`` or a NUL in a string, form bodies that are not
   UTF-8 or hold a NUL → 400 naming the field.
5. **Concurrency** — heavy requests run at most ``expensive_concurrency`` at a time, of
   them at most ``expensive_concurrency_anonymous`` for anonymous callers, in the whole
   deployment: the worker processes share the slots in Redis (leases renewed while a
   request runs) when ``GEOGRID_REDIS_URL`` is set, else each process has its own. Up to
   ``expensive_queue`` per process wait at most ``expensive_wait`` seconds; the others get
   503 with ``Retry-After`` at once, the body naming the limit (``limit``,
   ``limit_value``). Issue 10: two workers each running one heavy request took both cores
   and the event loops, and ``/locate`` waited seconds (``bench.abuse``).
6. **Statement timeout** — the request's transactions run with the class's
   ``statement_timeouts`` (``statement_timeouts_anonymous`` for anonymous callers, lower
   for expensive requests) (:func:`geogrid.services.limits.statement_timeout`).

Every refusal is an :class:`~api.models.common.ErrorBody`; a 429 names the limit reached
(``limit``: ``rate_limits_anonymous.expensive``, ``time_budget_anonymous`` …). :func:`install_log_redaction`
keeps ``api_key``, ``token``, ``password`` and ``Authorization`` values out of uvicorn's
logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from enum import StrEnum
from typing import Any
from urllib.parse import unquote_to_bytes

import redis.asyncio as aioredis
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from api.errors import error_response
from geogrid.services.limits import statement_timeout
from geogrid.settings import Settings

__all__ = [
    "RequestClass",
    "LimitsMiddleware",
    "classify",
    "check_query",
    "check_path",
    "check_json",
    "MAX_PATH",
    "MAX_SEGMENT",
    "redact",
    "RedactingFilter",
    "install_log_redaction",
    "media_body_limit",
]

log = logging.getLogger("geogrid.api.limits")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: longest path (characters) and path segment accepted
MAX_PATH = 2048
MAX_SEGMENT = 255

_WINDOWED = frozenset({"from", "to", "as_of"})
#: issue 14: the residents' public forms, limited in their own class (``public_form``)
_PUBLIC_FORMS = ("/s/", "/e/", "/satisfaction/", "/evaluations/")
_CREDENTIAL_PARAMS = (b"api_key", b"token", b"access_token")


class RequestClass(StrEnum):
    """How much a request may cost the service."""

    CHEAP = "cheap"
    STANDARD = "standard"
    EXPENSIVE = "expensive"
    #: issue 14: residents' public forms (satisfaction and evaluation links)
    PUBLIC_FORM = "public_form"


class Refused(Exception):
    """A request refused by a limit (status, error body, headers)."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        parameter: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"error": error, "message": message}
        if parameter is not None:
            self.body["parameter"] = parameter
        self.headers = headers


def _invalid(parameter: str, message: str) -> Refused:
    return Refused(400, "InvalidInput", f"{parameter}: {message}", parameter)


def classify(method: str, path: str, params: Iterable[str] = ()) -> tuple[RequestClass, bool]:
    """``(class, heavy)`` of a request; ``params`` are the query parameters' names.

    >>> classify("GET", "/locate")
    (<RequestClass.CHEAP: 'cheap'>, False)
    >>> classify("GET", "/hotspots")
    (<RequestClass.EXPENSIVE: 'expensive'>, True)
    >>> classify("GET", "/metrics/grid", ["from"])
    (<RequestClass.EXPENSIVE: 'expensive'>, True)
    >>> classify("GET", "/metrics/grid")
    (<RequestClass.STANDARD: 'standard'>, True)
    >>> classify("GET", "/heatmap/12/3299/1786.png", ["from", "to"])
    (<RequestClass.STANDARD: 'standard'>, True)
    >>> classify("POST", "/open311/v2/requests.json")
    (<RequestClass.EXPENSIVE: 'expensive'>, False)
    >>> classify("GET", "/incidents")
    (<RequestClass.STANDARD: 'standard'>, False)
    """
    windowed = not _WINDOWED.isdisjoint(params)
    if path.startswith(_PUBLIC_FORMS):
        return RequestClass.PUBLIC_FORM, False
    if path == "/hotspots":
        return RequestClass.EXPENSIVE, True
    if path.startswith("/metrics/") and not path.endswith("/trend"):
        return (RequestClass.EXPENSIVE if windowed else RequestClass.STANDARD), True
    if path.startswith("/heatmap/"):
        return RequestClass.STANDARD, windowed
    if method == "POST" and path.startswith("/plans/") and path.endswith("/autopartition"):
        return RequestClass.EXPENSIVE, True
    if method == "POST" and path.startswith("/open311/") and "/requests." in path:
        return RequestClass.EXPENSIVE, False
    if path in (
        "/",
        "/locate",
        "/config",
        "/openapi.json",
        "/docs",
        "/heatmap.json",
    ) or path.startswith(("/health", "/static/", "/tiles/", "/live/")):
        # a live stream (SSE) stays open for hours: its open time is not work to charge
        return RequestClass.CHEAP, False
    return RequestClass.STANDARD, False


def _decode(raw: bytes, parameter: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid(parameter, "not valid UTF-8 (percent-encode UTF-8 bytes)") from None
    if "\x00" in text:
        raise _invalid(parameter, "contains a NUL byte")
    return text


def check_query(raw: bytes, where: str = "query") -> list[str]:
    """The names of the parameters of a query string (or form body); a NUL byte or bytes
    that are not UTF-8 raise :class:`Refused` (400) naming the parameter.

    >>> check_query(b"lon=110.1&lat=22.6&crs=wgs84")
    ['lon', 'lat', 'crs']
    >>> check_query(b"category=a%00b")
    Traceback (most recent call last):
    api.limits.Refused: category: contains a NUL byte
    >>> check_query(b"q=%ff")
    Traceback (most recent call last):
    api.limits.Refused: q: not valid UTF-8 (percent-encode UTF-8 bytes)
    """
    names: list[str] = []
    for part in raw.split(b"&"):
        if not part:
            continue
        key, _, value = part.partition(b"=")
        key_b = unquote_to_bytes(key.replace(b"+", b" "))
        name = key_b.decode("utf-8", "replace").replace("\x00", "\\0")[:100] or where
        _decode(key_b, name)
        _decode(unquote_to_bytes(value.replace(b"+", b" ")), name)
        names.append(name)
    return names


def check_path(raw_path: bytes) -> str:
    """The decoded path; NUL bytes, bytes that are not UTF-8, and over-long paths or segments
    raise :class:`Refused` (400, parameter ``path``).

    >>> check_path(b"/static/app.css")
    '/static/app.css'
    >>> check_path(b"/static/a%00.js")
    Traceback (most recent call last):
    api.limits.Refused: path: contains a NUL byte
    """
    path = _decode(unquote_to_bytes(raw_path), "path")
    if len(path) > MAX_PATH:
        raise _invalid("path", f"longer than {MAX_PATH} characters")
    if any(len(segment) > MAX_SEGMENT for segment in path.split("/")):
        raise _invalid("path", f"a segment longer than {MAX_SEGMENT} characters")
    return path


class _NotANumber(float):
    """Stands for a ``NaN``/``Infinity`` constant while a JSON body is searched."""


def _where_bad(value: Any, at: str) -> tuple[str, str] | None:
    if isinstance(value, _NotANumber):
        return at, "NaN and infinities are not numbers JSON allows"
    if isinstance(value, str):
        return (at, "contains a NUL byte") if "\x00" in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            if "\x00" in k:
                return f"{at}.{k!r}", "a key contains a NUL byte"
            found = _where_bad(v, f"{at}.{k}")
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _where_bad(v, f"{at}.{i}")
            if found:
                return found
    return None


def check_json(body: bytes) -> None:
    """Refuse (400, naming the field) a JSON body with ``NaN``/``Infinity`` or a NUL in a
    string, or that is not UTF-8. Bodies that are not JSON at all are left to the route
    (which names the problem itself).

    >>> check_json(b'{"params": {"weight": 1.5}}')
    >>> check_json(b'{"params": {"weight": NaN}}')
    Traceback (most recent call last):
    api.limits.Refused: body.params.weight: NaN and infinities are not numbers JSON allows
    >>> check_json(b'{"description": "a\\\\u0000b"}')
    Traceback (most recent call last):
    api.limits.Refused: body.description: contains a NUL byte
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("body", "not valid UTF-8") from None
    try:
        doc = json.loads(text, parse_constant=_NotANumber)
    except ValueError:
        return
    found = _where_bad(doc, "body")
    if found:
        raise _invalid(*found)


class _Gate:
    """At most ``slots`` holders; at most ``queue`` waiting, each until ``deadline``."""

    def __init__(self, slots: int, queue: int):
        self.slots, self.queue = max(1, slots), max(0, queue)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sem = asyncio.Semaphore(self.slots)
        self._waiting = 0

    async def enter(self, deadline: float) -> bool:
        """Take a slot, waiting until ``deadline`` (``time.monotonic()``) at most."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new server loop (tests): a new semaphore
            self._loop, self._sem, self._waiting = loop, asyncio.Semaphore(self.slots), 0
        if not self._sem.locked():
            await self._sem.acquire()
            return True
        if self._waiting >= self.queue:
            return False
        self._waiting += 1
        try:
            await asyncio.wait_for(self._sem.acquire(), max(0.0, deadline - time.monotonic()))
            return True
        except TimeoutError:
            return False
        finally:
            self._waiting -= 1

    def leave(self) -> None:
        self._sem.release()


#: issue 10 (ABUSE): the shared slots are sorted sets (member: a holder's token, score: the
#: end of its lease in Redis's clock, ms); one script takes a slot in every set or none
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[i + 2]) then return 0 end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + tonumber(ARGV[1]), ARGV[2])
  redis.call('PEXPIRE', key, 2 * tonumber(ARGV[1]))
end
return 1
"""
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + tonumber(ARGV[1]), ARGV[2])
  redis.call('PEXPIRE', key, 2 * tonumber(ARGV[1]))
end
return 1
"""
_RELEASE = """
for _, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[1]) end
return 1
"""
#: seconds between two tries of a full shared gate (doubling up to the last)
_POLL = (0.02, 0.05, 0.1, 0.2)


class _SharedSlots:
    """Slots shared by every worker process through Redis, each held under a lease that
    its holder renews while its request runs (a killed worker's slot frees itself)."""

    def __init__(self, url: str, lease_s: float):
        self.url, self.lease_ms = url, max(1000, int(lease_s * 1000))
        self._redis: aioredis.Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        if self._redis is None or self._loop is not loop:
            self._redis, self._loop = aioredis.Redis.from_url(self.url), loop
        return self._redis

    async def take(self, limits: dict[str, int], token: str) -> bool:
        keys = list(limits)
        args: list[str | int] = [self.lease_ms, token, *limits.values()]
        return bool(await self._client().eval(_ACQUIRE, len(keys), *keys, *args))

    async def hold(self, keys: list[str], token: str) -> None:
        """Renew the lease every third of it until cancelled."""
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                await self._client().eval(_RENEW, len(keys), *keys, self.lease_ms, token)
            except Exception:
                log.warning("expensive gate: lease not renewed", exc_info=True)

    async def give(self, keys: list[str], token: str) -> None:
        await self._client().eval(_RELEASE, len(keys), *keys, token)


_GATE_KEY = "geogrid-gate:{expensive}:"


class _Ticket:
    """What :meth:`_ExpensiveGate.enter` took, given back by :meth:`_ExpensiveGate.leave`."""

    def __init__(self, local: list[_Gate]):
        self.local = local
        self.keys: list[str] = []
        self.token = ""
        self.renew: asyncio.Task[None] | None = None


class _ExpensiveGate:
    """Issue 10: heavy requests running at once — ``expensive_concurrency`` in all, of them
    ``expensive_concurrency_anonymous`` for anonymous callers — in the whole deployment
    when ``redis_url`` is set (and ``expensive_gate`` is ``"shared"``), else per process.

    A request first takes a slot of its process (``expensive_queue`` wait there, in order,
    at most ``expensive_wait`` seconds), then the deployment's (tried again, backing off,
    until the same deadline). Redis unreachable: the process's slots alone decide.
    """

    def __init__(self, settings: Settings):
        self.slots = max(1, settings.expensive_concurrency)
        self.anonymous_slots = max(1, min(self.slots, settings.expensive_concurrency_anonymous))
        self.wait = settings.expensive_wait
        self.all = _Gate(self.slots, settings.expensive_queue)
        self.anonymous = _Gate(self.anonymous_slots, settings.expensive_queue)
        self.shared = (
            _SharedSlots(settings.redis_url, settings.expensive_lease_s)
            if settings.redis_url and settings.expensive_gate == "shared"
            else None
        )

    def limit(self, credentialed: bool) -> tuple[str, int]:
        """The setting (name, value) that bounds the caller's heavy requests."""
        if credentialed:
            return "expensive_concurrency", self.slots
        return "expensive_concurrency_anonymous", self.anonymous_slots

    async def enter(self, credentialed: bool) -> _Ticket | None:
        """A ticket, or None when every slot stayed taken (answer 503)."""
        deadline = time.monotonic() + self.wait
        ticket = _Ticket([])
        gates = [self.all] if credentialed else [self.anonymous, self.all]
        for gate in gates:
            if not await gate.enter(deadline):
                self._leave_local(ticket)
                return None
            ticket.local.append(gate)
        if self.shared is None:
            return ticket
        limits = {_GATE_KEY + "all": self.slots}
        if not credentialed:
            limits = {_GATE_KEY + "anonymous": self.anonymous_slots, **limits}
        token = uuid.uuid4().hex
        try:
            for tries in itertools.count():
                if await self.shared.take(limits, token):
                    break
                pause = _POLL[min(tries, len(_POLL) - 1)]
                if time.monotonic() + pause > deadline:
                    self._leave_local(ticket)
                    return None
                await asyncio.sleep(pause)
        except Exception:  # Redis down: the process's slots alone (serve, do not refuse)
            log.warning("expensive gate: Redis unavailable; per-process gate", exc_info=True)
            return ticket
        except BaseException:  # cancelled while waiting (the client went away)
            self._leave_local(ticket)
            raise
        ticket.keys, ticket.token = list(limits), token
        ticket.renew = asyncio.create_task(self.shared.hold(ticket.keys, token))
        return ticket

    @staticmethod
    def _leave_local(ticket: _Ticket) -> None:
        for gate in reversed(ticket.local):
            gate.leave()
        ticket.local = []

    async def leave(self, ticket: _Ticket) -> None:
        if ticket.renew is not None:
            ticket.renew.cancel()
        if ticket.keys and self.shared is not None:
            try:
                await self.shared.give(ticket.keys, ticket.token)
            except Exception:  # the lease ends by itself
                log.warning("expensive gate: slot not given back", exc_info=True)
        self._leave_local(ticket)


_TIME = "server-time"
#: tenths of a second a heavy request takes from its caller's time budget on admission
_UPFRONT_HEAVY = 10


#: issue 10: writes under these paths may revoke, rotate or change credentials: this
#: process's token cache (``AppContext.tokens``) is emptied after each
_CREDENTIAL_WRITES = ("/tokens", "/session", "/users", "/terminals", "/teams")
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def _forget_tokens(scope: Scope) -> None:
    """Empty the token cache of the app serving ``scope`` (when it has a context)."""
    ctx = getattr(getattr(scope.get("app"), "state", None), "ctx", None)
    tokens = getattr(ctx, "tokens", None)
    if tokens is not None:
        tokens.clear()


#: callers whose uncharged remainders (under a tenth of a second each) a process keeps
_OWED_CALLERS = 100_000
#: seconds a process answers a refused caller from memory before asking the storage again
_REFUSED_S = 1.0
#: seconds at most a caller refused again before its Retry-After waits for its 429
_TARPIT_S = 1.0
#: issue 10: a caller's server-time budget seen with at least :data:`_BUDGET_MARGIN`
#: tenths left is not asked of the storage again for :data:`_BUDGET_RECHECK_S` seconds
#: per :data:`_BUDGET_MARGIN` tenths left, at most :data:`_BUDGET_RECHECK_MAX_S` (a Redis
#: round trip per request saved — with 500 terminals reporting every few seconds, a
#: fixed half second saved none; what other processes charge meanwhile can overdraw the
#: budget by at most their use in that time, which is short when little is left)
_BUDGET_RECHECK_S = 0.5
_BUDGET_RECHECK_MAX_S = 5.0
_BUDGET_MARGIN = 20


def _rate(rates: dict[str, str], klass: RequestClass) -> str:
    """The limit of a class; a class the settings do not name has the standard one."""
    return rates.get(klass.value) or rates[RequestClass.STANDARD.value]


class _RateLimits:
    """Per-class sliding-window limits, anonymous (per IP) and per credential."""

    def __init__(self, settings: Settings):
        self.redis_url = settings.redis_url
        self.anonymous = {
            c: parse_many(_rate(settings.rate_limits_anonymous, c)) for c in RequestClass
        }
        self.account = {c: parse_many(_rate(settings.rate_limits_account, c)) for c in RequestClass}
        self.time_anonymous = parse_many(settings.time_budget_anonymous)
        self.time_account = parse_many(settings.time_budget_account)
        self._limiter: SlidingWindowCounterRateLimiter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: issue 10 (REPORTS): server time (tenths) used but not charged yet, per caller:
        #: the budget counts whole tenths, and rounding each request's few milliseconds up
        #: to a tenth charged a 5 ms report 100 ms (a reporter at 10/s was refused for
        #: using 1 s of server time per second); the remainder waits for the next request
        self._owed: dict[str, float] = {}
        #: issue 10 (ABUSE): callers refused lately, per (class, caller): the end of their
        #: wait (time.time()), the limit, and when to ask the storage again — a caller
        #: hammering a limit is refused from memory, not with two Redis round trips each
        self._refused: dict[tuple[str, str], tuple[float, str, float, bool]] = {}
        #: callers' budgets seen lately with room to spare: caller → (until, tenths left
        #: then, less what this process charged since) — see :data:`_BUDGET_RECHECK_S`
        self._budget: dict[str, tuple[float, float]] = {}

    def _get(self) -> SlidingWindowCounterRateLimiter:
        loop = asyncio.get_running_loop()
        if self._limiter is None or self._loop is not loop:
            storage: Storage
            if self.redis_url:
                storage = RedisStorage(
                    "async+" + self.redis_url, implementation="redispy", key_prefix="geogrid-rl"
                )
            else:
                storage = MemoryStorage()
            self._limiter, self._loop = SlidingWindowCounterRateLimiter(storage), loop
        return self._limiter

    async def check(
        self, klass: RequestClass, who: str, credentialed: bool, upfront: int = 0
    ) -> tuple[float, str] | None:
        """None when allowed, else the seconds to wait and the setting whose limit was
        reached (``rate_limits_anonymous.expensive``, ``time_budget_anonymous`` …). Counts
        the request in its class
        and, for all but cheap requests, checks the caller's server-time budget and takes
        ``upfront`` tenths of a second from it at once (so a burst of concurrent requests
        cannot all pass before the first is charged)."""
        items: list[RateLimitItem] = (self.account if credentialed else self.anonymous)[klass]
        limiter = self._get()
        kind = "account" if credentialed else "anonymous"
        key = (klass.value, who)
        refused = self._refused.get(key)
        if refused is not None:
            until, limit, recheck, _ = refused
            now = time.time()
            if now < recheck and now < until:
                self._refused[key] = (until, limit, recheck, True)
                return until - now, limit
            del self._refused[key]
        try:
            for item in items:
                if not await limiter.hit(item, klass.value, who):
                    wait = await self._wait(limiter, item, klass.value, who)
                    return self._refuse(key, wait, f"rate_limits_{kind}.{klass.value}")
            if klass is not RequestClass.CHEAP:
                strict = klass is RequestClass.EXPENSIVE or upfront > 0
                refusal = await self._check_budget(limiter, who, credentialed, strict)
                if refusal is not None:
                    return self._refuse(key, refusal, f"time_budget_{kind}")
                if upfront:
                    await self.charge(who, credentialed, upfront / 10)
        except Exception:  # the limiter's storage (Redis) is down: serve, do not refuse
            log.warning("rate-limit storage unavailable; request not limited", exc_info=True)
        return None

    async def _check_budget(
        self,
        limiter: SlidingWindowCounterRateLimiter,
        who: str,
        credentialed: bool,
        strict: bool = True,
    ) -> float | None:
        """None when the caller has server time left, else the seconds to wait. A budget
        seen with room to spare a moment ago is not asked again (:data:`_BUDGET_MARGIN`),
        nor one seen empty (until its window frees a tenth).

        Unless ``strict`` (expensive requests), a caller this process has not seen lately
        is served without asking: its budget is read when it is next charged
        (:meth:`charge`, at each whole tenth of server time), which notes an empty one
        here. Issue 10: a terminal reports every few minutes, so "seen lately" was never
        true for it and every report paid a Redis round trip for a budget it was far from
        spending; now a caller spending the budget through several processes is refused
        by each after at most a tenth of a second of its time there."""
        now = time.monotonic()
        seen = self._budget.get(who)
        if seen is not None and now < seen[0]:
            if seen[1] >= _BUDGET_MARGIN:
                return None
            if seen[1] < 1:
                return max(1.0, seen[0] - now)
        elif seen is None and not strict:
            return None
        least = math.inf
        for item in self.time_account if credentialed else self.time_anonymous:
            stats = await limiter.get_window_stats(item, _TIME, who)
            if stats.remaining < 1:
                self._budget.pop(who, None)
                return max(1.0, stats.reset_time - time.time())
            least = min(least, stats.remaining)
        self._note_budget(who, now, least)
        return None

    def _note_budget(self, who: str, now: float, least: float, wait: float = 0.0) -> None:
        """Remember the tenths a caller has left (``least``, read from the storage at
        ``now``): kept longer the more room it has (:data:`_BUDGET_RECHECK_S`); an empty
        budget is refused for ``wait`` seconds, at most :data:`_REFUSED_S`."""
        if len(self._budget) >= _OWED_CALLERS:  # bounded: forget them
            self._budget.clear()
        if least < 1:
            self._budget[who] = (now + min(wait, _REFUSED_S), least)
        else:
            recheck = min(_BUDGET_RECHECK_MAX_S, _BUDGET_RECHECK_S * least / _BUDGET_MARGIN)
            self._budget[who] = (now + recheck, least)

    def repeated(self, klass: RequestClass, who: str) -> bool:
        """Whether the caller was refused in this class less than a second ago already
        (it did not wait for its Retry-After)."""
        refused = self._refused.get((klass.value, who))
        return refused is not None and refused[3]

    def _refuse(self, key: tuple[str, str], wait: float, limit: str) -> tuple[float, str]:
        """Remember a refusal for at most :data:`_REFUSED_S` (the storage is asked again
        then: a budget refilled by another process's window is seen)."""
        if len(self._refused) >= _OWED_CALLERS:  # bounded: forget them
            self._refused.clear()
        now = time.time()
        self._refused[key] = (now + wait, limit, now + _REFUSED_S, False)
        return wait, limit

    async def charge(self, who: str, credentialed: bool, seconds: float) -> None:
        """Charge ``seconds`` of server time to the caller's budget (at most what is left,
        so the budget empties and refills with its window). Less than a tenth is kept in
        the process and added to the caller's next charge (no Redis round trip)."""
        owed = self._owed.pop(who, 0.0) + seconds * 10
        tenths = math.floor(owed)
        if owed - tenths > 0:
            if len(self._owed) >= _OWED_CALLERS:  # bounded: forget the remainders
                self._owed.clear()
            self._owed[who] = owed - tenths
        if tenths < 1:
            return
        seen = self._budget.get(who)
        if seen is not None:  # what this process charged comes off the budget it saw
            self._budget[who] = (seen[0], seen[1] - tenths)
        limiter = self._get()
        try:
            least, wait = math.inf, 0.0
            for item in self.time_account if credentialed else self.time_anonymous:
                stats = await limiter.get_window_stats(item, _TIME, who)
                cost = min(tenths, stats.remaining)
                if cost > 0:
                    await limiter.hit(item, _TIME, who, cost=cost)
                if stats.remaining - cost < least:
                    least = stats.remaining - cost
                    wait = max(1.0, stats.reset_time - time.time())
            # what is left now, for :meth:`_check_budget` (empty: refused until it frees)
            if math.isfinite(least):
                self._note_budget(who, time.monotonic(), least, wait)
        except Exception:
            log.warning("rate-limit storage unavailable; time not charged", exc_info=True)

    @staticmethod
    async def _wait(
        limiter: SlidingWindowCounterRateLimiter, item: RateLimitItem, *ids: str
    ) -> float:
        stats = await limiter.get_window_stats(item, *ids)
        return max(1.0, stats.reset_time - time.time())


def _header(scope: Scope, name: bytes) -> bytes | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return bytes(v)
    return None


_SESSION_COOKIE = re.compile(rb"(?:^|;\s*)(geogrid_session|session)=([^;]+)")


def _caller(scope: Scope) -> tuple[str, bool]:
    """``(key, credentialed)``: a digest of the credential, or the client's IP."""
    credential: bytes | None = None
    auth = _header(scope, b"authorization")
    if auth:
        credential = auth
    else:
        for part in scope.get("query_string", b"").split(b"&"):
            key, _, value = part.partition(b"=")
            if key in _CREDENTIAL_PARAMS and value:
                credential = value
                break
        if credential is None:
            cookie = _header(scope, b"cookie")
            m = _SESSION_COOKIE.search(cookie) if cookie else None
            credential = m.group(2) if m else None
    if credential:
        return "cred:" + hashlib.sha256(credential).hexdigest()[:24], True
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown"), False


class LimitsMiddleware:
    """The request limits of :mod:`api.limits` (settings from :class:`Settings`)."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.settings = settings
        self.rates = _RateLimits(settings) if settings.rate_limits else None
        self.gate = _ExpensiveGate(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self._serve(scope, receive, send)
        except Refused as r:
            await error_response(r.body, r.status, r.headers)(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        path = check_path(raw_path.split(b"?", 1)[0])
        names = check_query(scope.get("query_string", b""))
        klass, heavy = classify(scope["method"], path, names)
        who, credentialed = _caller(scope)
        upfront = _UPFRONT_HEAVY if heavy else 0
        if self.rates is not None:
            limited = await self.rates.check(klass, who, credentialed, upfront)
            if limited is not None:
                wait, limit = limited
                if self.rates.repeated(klass, who):
                    # refused again before its Retry-After: answered after a pause (no
                    # CPU), so a client ignoring Retry-After cannot make the server spend
                    # its time saying no
                    await asyncio.sleep(min(wait, _TARPIT_S))
                refusal = Refused(
                    429,
                    "TooManyRequests",
                    f"rate limit of {klass.value} requests reached ({limit}); "
                    f"retry in {math.ceil(wait)} s",
                    headers={"Retry-After": str(math.ceil(wait))},
                )
                refusal.body["limit"] = limit
                raise refusal
        receive = await self._body(scope, receive, path)
        ticket = await self.gate.enter(credentialed) if heavy else None
        if heavy and ticket is None:
            name, value = self.gate.limit(credentialed)
            refusal = Refused(
                503,
                "Busy",
                f"too many expensive requests at once ({name} = {value}); retry shortly",
                headers={"Retry-After": "5"},
            )
            refusal.body.update(limit=name, limit_value=value)
            raise refusal
        started = time.perf_counter()
        try:
            await self._run(scope, receive, send, klass, credentialed)
        finally:
            if scope["method"] not in _SAFE and path.startswith(_CREDENTIAL_WRITES):
                _forget_tokens(scope)
            if ticket is not None:
                await self.gate.leave(ticket)
            if self.rates is not None and klass is not RequestClass.CHEAP:
                took = time.perf_counter() - started - upfront / 10
                if took > 0:
                    await self.rates.charge(who, credentialed, took)

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, klass: RequestClass, credentialed: bool
    ) -> None:
        ms = self.settings.statement_timeouts.get(klass.value)
        if not credentialed:  # issue 10: anonymous callers' expensive SQL has a lower budget
            ms = self.settings.statement_timeouts_anonymous.get(klass.value, ms)
        with statement_timeout(ms):
            await self.app(scope, receive, send)

    async def _body(self, scope: Scope, receive: Receive, path: str) -> Receive:
        """Read the body (at most the limit), check it and give a receive that replays it."""
        length = _header(scope, b"content-length")
        chunked = _header(scope, b"transfer-encoding")
        if length is None and chunked is None:
            return receive
        limit = self.settings.body_limit
        if path.startswith("/plans"):
            limit = self.settings.body_limit_plans
        elif path == "/patrols":  # a day's GPS track (8 h at one fix per 5 s ≈ 290 KB)
            limit = self.settings.body_limit_patrols
        media = media_body_limit(
            self.settings, scope["method"], path, _header(scope, b"content-type")
        )
        if media is not None:
            limit = media
        too_large = Refused(
            413,
            "PayloadTooLarge",
            f"the request body is larger than {limit} bytes",
            parameter="body",
        )
        if length is not None:
            try:
                if int(length) > limit:
                    raise too_large
            except ValueError:
                raise _invalid("content-length", "not a number") from None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return _replay(b"", receive, message)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        ctype = (_header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
        if ctype == b"application/json" or ctype.endswith(b"+json"):
            check_json(body)
        elif ctype == b"application/x-www-form-urlencoded":
            check_query(body, "body")
        return _replay(body, receive)


def media_body_limit(
    settings: Settings, method: str, path: str, content_type: bytes | None
) -> int | None:
    """Issue 13: the body limit of an upload (``PUT /media/{sha256}``): a video's
    (``media_video_limit``) when the Content-Type says video, else an image's
    (``media_image_limit``); None for other requests. The service checks the sniffed type
    against its own limit again.

    >>> s = Settings()
    >>> media_body_limit(s, "PUT", "/media/ab", b"video/mp4") == s.media_video_limit
    True
    >>> media_body_limit(s, "PUT", "/media/ab", b"image/jpeg") == s.media_image_limit
    True
    >>> media_body_limit(s, "POST", "/incidents", b"application/json") is None
    True
    """
    if method != "PUT" or not path.startswith("/media/"):
        return None
    if (content_type or b"").strip().lower().startswith(b"video/"):
        return settings.media_video_limit
    return settings.media_image_limit


def _replay(body: bytes, receive: Receive, first: Message | None = None) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return first or {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


_SECRET_PARAMS = re.compile(
    r"(?i)((?:^|[?&;])(?:api_key|token|access_token|password|passwd|secret)=)[^&;\s\"]*"
)
_AUTH_VALUES = re.compile(
    r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(bearer\s+|basic\s+)?[^\s\"',]+"
)


def redact(text: str) -> str:
    """``text`` with credentials in query strings and ``Authorization`` values replaced.

    >>> redact("GET /open311/v2/requests.json?api_key=s3cr3t&service_code=road HTTP/1.1")
    'GET /open311/v2/requests.json?api_key=[redacted]&service_code=road HTTP/1.1'
    >>> redact("Authorization: Bearer abc.def")
    'Authorization: Bearer [redacted]'
    """
    text = _SECRET_PARAMS.sub(r"\1[redacted]", text)
    return _AUTH_VALUES.sub(lambda m: m.group(1) + (m.group(2) or "") + "[redacted]", text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts credentials (:func:`redact`) in a record's message and
    arguments (uvicorn's access log passes the path with its query string as an argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def install_log_redaction(names: Iterable[str] = ("uvicorn.access", "uvicorn.error")) -> None:
    """Add one :class:`RedactingFilter` to each of the named loggers (idempotent)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
