"""Read replicas (issue 12): which engine a read-only piece of work uses.

With ``GEOGRID_DATABASE_REPLICA_URL`` set, the service holds a second engine on a
streaming replica. Writes, authentication, audit rows and anything else that writes keep
using the primary (``ctx.engine``); the read-only work — tiles, OGC items, metrics,
locate, incident lists — asks a :class:`ReadRouter` for its engine. The router answers
the replica only when all of these hold, else the primary:

* the replica is **up**: its last health check (one short statement on a pooled
  connection, connect timeout 2 s, statement timeout 1 s) succeeded; the check is cached
  :attr:`ReadRouter.check_interval` seconds, so a down replica costs each request
  nothing and is picked up again within that time once it is back;
* it is a standby (``pg_is_in_recovery()``; a promoted former replica is another
  database) and **not lagging** more than ``replica_max_lag_s``: the lag is 0 when its
  replay LSN has reached the primary's WAL position read just before, else the smaller of
  the age of the last transaction it replayed (``pg_last_xact_replay_timestamp()``) and
  the time since a check last found it caught up (with replay paused it grows from the
  pause on);
* **read-your-writes**: the read needs no position the replica has not replayed yet.
  A caller that wrote (an account's token or session; an anonymous caller by address)
  leaves the primary's WAL insert position after its write's commit
  (:meth:`ReadRouter.note_write`); its reads use the replica only once the replica's
  replay LSN is at least that — so a reporter fetching the incident they just posted
  reads the primary, or a replica that already has it. The map service keeps the same
  kind of position for its tile cache (the WAL position of the last change-log poll that
  found changes), so a tile is never rendered from a replica older than the invalidation
  that dropped it.

Why an LSN and not a time window after the write: a window long enough for the worst lag
sends every writer's reads to the primary for that long on every write (the phone app's
workers write all day), while the replica is normally milliseconds behind; the LSN lets
the reads go back to the replica as soon as it has the write, and stays correct when the
replica lags longer than any window. The remembered positions are per process (one dict),
so with several workers a read landing on another worker than the write is only as fresh
as the replica's lag bound; they are forgotten once the replica has replayed them.

A read that fails on the replica (it went down between two checks, or a query was
cancelled by a recovery conflict) marks the replica down at once; the API answers that
``GET`` again on the primary (:mod:`api.replica`), so callers never see the failure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Engine, event

from geogrid.store import replica as store

__all__ = ["DEFAULT_CHECK_INTERVAL", "ReadRouter", "ReplicaState"]

log = logging.getLogger("geogrid.services.replica")

#: seconds a replica health check is reused
DEFAULT_CHECK_INTERVAL = 2.0
#: callers whose last write position is remembered at most (oldest forgotten first)
MAX_WRITERS = 100_000
#: SQLSTATEs of a failed replica read answered again on the primary: recovery conflicts
#: (40001, 40P01), a write refused in recovery (25006), the standby shutting down or
#: starting (57P01, 57P02, 57P03)
_RETRIED = frozenset({"40001", "40P01", "25006", "57P01", "57P02", "57P03"})


@dataclass(frozen=True)
class ReplicaState:
    """The replica as the last check saw it.

    ``state`` is ``"none"`` (no replica configured), ``"up"``, ``"lagging"`` (over the
    lag bound), ``"down"`` (unreachable or failing) or ``"not_standby"``."""

    state: str
    lag_s: float | None = None
    lag_bytes: int | None = None
    replay_lsn: int | None = None
    paused: bool = False
    error: str | None = None
    checked_at: float = 0.0  # time.monotonic() of the check

    @property
    def usable(self) -> bool:
        return self.state == "up"


class ReadRouter:
    """Chooses the engine of read-only work (see the module's notes).

    Parameters
    ----------
    primary : Engine
        The primary (writes, and reads whenever the replica will not do).
    replica : Engine or None
        The streaming replica; None: every read uses the primary and nothing is checked.
    max_lag_s : float
        Lag in seconds beyond which reads leave the replica.
    check_interval : float
        Seconds a health check is reused.
    """

    def __init__(
        self,
        primary: Engine,
        replica: Engine | None,
        *,
        max_lag_s: float = 5.0,
        check_interval: float = DEFAULT_CHECK_INTERVAL,
    ) -> None:
        self.primary = primary
        self.replica = replica
        self.max_lag_s = max_lag_s
        self.check_interval = check_interval
        self._state = ReplicaState("none" if replica is None else "down")
        self._check_lock = threading.Lock()
        self._caught_up_at: float | None = None  # monotonic time of a check finding lag 0
        self._writes: OrderedDict[str, int] = OrderedDict()
        self._writes_lock = threading.Lock()
        #: reads routed to each side since start (for /health and tests)
        self.reads = {"replica": 0, "primary": 0}
        if replica is not None and not event.contains(replica, "handle_error", self._on_error):
            event.listen(replica, "handle_error", self._on_error)

    @property
    def enabled(self) -> bool:
        """Whether a replica is configured."""
        return self.replica is not None

    # ------------------------------------------------------------------ health
    def state(self, *, fresh: bool = False) -> ReplicaState:
        """The replica's state, checked again when the last check is older than
        :attr:`check_interval` (or ``fresh``). One thread checks at a time; the others use
        the last state meanwhile (a slow check never queues requests)."""
        st = self._state
        if self.replica is None:
            return st
        if not fresh and time.monotonic() - st.checked_at < self.check_interval:
            return st
        if not self._check_lock.acquire(blocking=fresh):
            return st
        try:
            if not fresh and time.monotonic() - self._state.checked_at < self.check_interval:
                return self._state
            self._state = self._check()
            return self._state
        finally:
            self._check_lock.release()

    def _check(self) -> ReplicaState:
        assert self.replica is not None
        now = time.monotonic()
        try:
            with self.primary.connect() as conn:
                head = store.primary_lsn(conn)
            with self.replica.connect() as conn:
                pos = store.replica_position(conn)
        except Exception as exc:  # any driver error: down until the next check
            before = self._state.state
            if before != "down" or self._state.checked_at == 0.0:
                log.warning("read replica down: %s", _short(exc))
            return ReplicaState("down", error=_short(exc), checked_at=now)
        if not pos.in_recovery or pos.replay_lsn is None:
            return ReplicaState("not_standby", error="not in recovery", checked_at=now)
        behind = max(head - pos.replay_lsn, 0)
        if behind == 0:
            self._caught_up_at = now
            lag = 0.0
        else:
            # two bounds of how stale it is; the smaller one holds: the age of the last
            # commit it replayed (large after a quiet hour, though only one write is
            # missing) and the time since a check found it caught up
            lag = max(pos.replay_age_s or 0.0, 0.0)
            if self._caught_up_at is not None:
                lag = min(lag, now - self._caught_up_at)
        state = "up" if lag <= self.max_lag_s else "lagging"
        if state != self._state.state:
            log.info("read replica %s (lag %.1f s, %d bytes)", state, lag, behind)
        return ReplicaState(
            state,
            lag_s=round(lag, 3),
            lag_bytes=behind,
            replay_lsn=pos.replay_lsn,
            paused=pos.paused,
            checked_at=now,
        )

    def mark_down(self, reason: str) -> None:
        """Stop using the replica until the next check (after a failed read)."""
        if self.replica is None:
            return
        log.warning("read replica marked down: %s", reason)
        self._state = ReplicaState("down", error=reason, checked_at=time.monotonic())

    def _on_error(self, ctx: Any) -> None:
        # a lost or refused connection, a recovery conflict, a write refused by the standby:
        # the request is answered again on the primary (api.replica), and a lost replica is
        # left at once. Not a statement timeout: the same query would time out again.
        exc = ctx.original_exception
        lost = bool(getattr(ctx, "is_disconnect", False)) or ctx.connection is None
        sqlstate = getattr(exc, "sqlstate", None)
        if lost or sqlstate in _RETRIED:
            _FAILED.note()
        if sqlstate == "25006":  # a bug: a read routed here wrote
            log.error("a read on the replica tried to write: %s", _short(exc))
        if lost:
            self.mark_down(_short(exc))

    # ------------------------------------------------------------------ routing
    def engine(self, after: int | None = None) -> Engine:
        """The engine of a read that must see the primary's WAL up to ``after`` (None: any
        replica within the lag bound will do)."""
        if self.replica is None or _FAILED.force_primary():
            return self._primary()
        st = self.state()
        if not st.usable:
            return self._primary()
        if after is not None and (st.replay_lsn is None or st.replay_lsn < after):
            # the cached position is too old: ask the replica where it is now (one cheap
            # statement; usually it has replayed the write within milliseconds)
            try:
                with self.replica.connect() as conn:
                    now_at = store.replay_lsn(conn)
            except Exception as exc:
                self.mark_down(_short(exc))
                return self._primary()
            if now_at is None or now_at < after:
                return self._primary()
            self._state = replace(st, replay_lsn=now_at)
        self.reads["replica"] += 1
        return self.replica

    def _primary(self) -> Engine:
        self.reads["primary"] += 1
        return self.primary

    def engine_for(self, caller: str | None) -> Engine:
        """The engine of a read by ``caller`` (read-your-writes: see :meth:`note_write`)."""
        return self.engine(self.written(caller))

    def note_write(self, caller: str | None) -> int | None:
        """Remember the primary's WAL position for ``caller`` after its write committed;
        returns it (None without a replica or a caller)."""
        if self.replica is None or caller is None:
            return None
        with self.primary.connect() as conn:
            lsn = store.primary_lsn(conn)
        with self._writes_lock:
            self._writes[caller] = lsn
            self._writes.move_to_end(caller)
            while len(self._writes) > MAX_WRITERS:
                self._writes.popitem(last=False)
        return lsn

    def written(self, caller: str | None) -> int | None:
        """The position ``caller`` must read at least, or None (no recent write, or the
        replica has replayed it: then it is forgotten)."""
        if caller is None or self.replica is None:
            return None
        with self._writes_lock:
            lsn = self._writes.get(caller)
            if lsn is None:
                return None
            replayed = self._state.replay_lsn
            if replayed is not None and replayed >= lsn and self._state.usable:
                del self._writes[caller]
                return None
        return lsn

    # ------------------------------------------------------------------ report
    def report(self) -> dict[str, Any] | None:
        """The replica's part of ``GET /health``: None without a replica, else ``state``,
        ``lag_s``, ``lag_bytes``, ``paused``, ``error`` and the reads routed each way."""
        if self.replica is None:
            return None
        st = self.state()
        return {
            "state": st.state,
            "lag_s": st.lag_s,
            "lag_bytes": st.lag_bytes,
            "paused": st.paused,
            "max_lag_s": self.max_lag_s,
            "error": st.error,
            "reads": dict(self.reads),
        }


class _Failures:
    """Per-request flags (a context variable holding a mutable record, set up by the API
    around each ``GET``): whether a replica read failed, and whether this attempt must use
    the primary (the retry)."""

    def __init__(self) -> None:
        from contextvars import ContextVar

        self._var: ContextVar[dict[str, bool] | None] = ContextVar(
            "geogrid_replica_attempt", default=None
        )

    def begin(self, *, force_primary: bool = False) -> dict[str, bool]:
        rec = {"failed": False, "force_primary": force_primary}
        self._var.set(rec)
        return rec

    def note(self) -> None:
        rec = self._var.get()
        if rec is not None:
            rec["failed"] = True

    def force_primary(self) -> bool:
        rec = self._var.get()
        return bool(rec and rec["force_primary"])


_FAILED = _Failures()


def begin_attempt(*, force_primary: bool = False) -> dict[str, bool]:
    """Start tracking replica failures for the current request (the API's middleware);
    the returned record's ``failed`` turns True when a read on the replica fails."""
    return _FAILED.begin(force_primary=force_primary)


def _short(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
