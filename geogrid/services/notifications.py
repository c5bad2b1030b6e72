"""Notifications of the grid worker's terminal, derived from the incidents.

Nothing in the incident workflow sends a notification: :func:`refresh_notifications`
looks at the open incidents, their assignment, due time and escalation events, and
inserts the ``notification`` rows that are missing for their recipients (the assignee,
the accounts of the assigned unit — the grid's workers or the unit's admins — and the
members of teams covering the assigned grid; for an escalated incident also the people of
the grid it was handed up from). ``UNIQUE(account_id, kind, incident_id)`` makes every
run idempotent. It runs at the start of ``GET /notifications`` and ``GET /sync`` (for
the caller only), from ``geogrid notify run`` (cron) and periodically in the app
(:func:`run_once`, every ``settings.notify_interval`` seconds).

The terminal gets its notifications on its next sync (``GET /notifications?since=``)
and marks them read. Outbound channels (:mod:`geogrid.services.notify_channels`,
``settings.notify_channels``) get one ``notification_delivery`` row per new
notification and channel; :func:`deliver` sends the due ones outside any transaction,
retrying with exponential backoff, and records attempts, the last error and the time
sent. A delivery that still fails after ``MAX_ATTEMPTS`` attempts is ``failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, Engine

from geogrid.core.accounts import Account
from geogrid.core.notifications import KIND_LABELS, backoff
from geogrid.errors import InvalidInput, NotFound
from geogrid.services.notify_channels import (
    Channel,
    DeliveryError,
    channels_from_settings,
    payload_of,
)
from geogrid.settings import Settings, get_settings
from geogrid.store import locks
from geogrid.store import notifications as store
from geogrid.store.engine import transaction

__all__ = [
    "ESCALATE_EVENT",
    "FULL_SWEEP",
    "MAX_ATTEMPTS",
    "RETRY_LATER_S",
    "refresh_notifications",
    "list_notifications",
    "mark_read",
    "deliver",
    "run_once",
    "deliveries",
    "start_periodic",
    "stop_periodic",
]

Bind = Engine | Connection
log = logging.getLogger("geogrid.notifications")

#: the ``incident_event.kind`` of an escalation (written by geogrid.services.incidents)
ESCALATE_EVENT: Final[str] = "escalate"
#: the advisory-lock namespace of the city-wide derivation (geogrid.store.locks)
NOTIFY_LOCK_NAMESPACE: Final[int] = 0x67670013
#: attempts of one delivery before it is given up (``failed``)
MAX_ATTEMPTS: Final[int] = 10
#: the wait before a later run retries a delivery whose tries all failed: this many
#: seconds × 2^(runs-1), at most :data:`RETRY_LATER_CAP_S`
RETRY_LATER_S: Final[float] = 60.0
RETRY_LATER_CAP_S: Final[float] = 6 * 3600.0
#: issue 10: a city-wide derivation looks at every open incident at least this often; in
#: between it goes on from the last run (``notification_sweep``, revision 0023)
FULL_SWEEP: Final[timedelta] = timedelta(hours=1)
#: how long a claimed delivery is left to its sender before another may take it
_LEASE = timedelta(minutes=5)


def _aware(value: datetime | None, parameter: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidInput(parameter, value.isoformat(), "a date-time with a time zone")
    return value


def refresh_notifications(
    conn: Bind,
    now: datetime | None = None,
    *,
    account_id: int | None = None,
    settings: Settings | None = None,
) -> list[int]:
    """Insert the notifications the open incidents call for at ``now`` that are missing
    (for every recipient, or only ``account_id``); queue their outbound deliveries on the
    configured channels. Returns the new notification ids (none on a second run).

    A city-wide run holds an advisory lock for its transaction: when another process
    (another app worker's periodic task, the CLI) is running one, it returns at once."""
    s = settings or get_settings()
    when = _aware(now, "now") or datetime.now(UTC)
    with transaction(conn) as c:
        city_wide = account_id is None
        if city_wide and not locks.try_xact_lock(c, NOTIFY_LOCK_NAMESPACE, 0):
            return []  # another process (an app worker, the CLI) is deriving them now
        changed: store.Changed | None = None
        if city_wide:
            # issue 10: go on from the last city-wide run when it may (see _changed_since)
            xmin = store.snapshot_xmin(c)  # before the derivation reads anything
            who = store.recipients_digest(c)
            last = store.last_sweep(c)
            changed = _changed_since(last, when, who)
        ids = store.insert_missing(
            c,
            now=when,
            due_soon_until=when + timedelta(hours=float(s.notify_due_soon_hours)),
            escalate_kind=ESCALATE_EVENT,
            account_id=account_id,
            changed=changed,
        )
        if city_wide:
            full_at = when if changed is None or last is None else last.full_at
            store.record_sweep(c, store.Sweep(when, xmin, who, full_at))
        if ids and s.notify_channels:
            store.queue_deliveries(c, ids, list(s.notify_channels), when)
    return ids


def _changed_since(last: store.Sweep | None, now: datetime, who: str) -> store.Changed | None:
    """What a city-wide run at ``now`` must look at after ``last``: None for everything.

    Everything when there was no run yet, when ``now`` is before the last run's (a run for
    an earlier moment), when the last full run is :data:`FULL_SWEEP` old (a net under
    anything missed), or when who receives what (``who``: the recipients' digest) is not
    what it was. Otherwise the open incidents written by a transaction the last run could not
    see — new reports, imports, assignments, escalations: each writes the incident row —
    or due between the last run's time and the end of this run's due-soon window: the
    others' notices are all there already, since nothing else they depend on changed."""
    if last is None or now < last.swept_at or now - last.full_at >= FULL_SWEEP:
        return None
    if who != last.recipients:
        return None
    return store.Changed(since_xmin=last.since_xmin, due_since=last.swept_at)


def _view(row: Mapping[str, Any]) -> dict[str, Any]:
    zh, en = KIND_LABELS[row["kind"]]
    return {
        "id": int(row["id"]),
        "kind": row["kind"],
        "title_zh": zh,
        "title_en": en,
        "created_at": row["created_at"],
        "read_at": row["read_at"],
        "incident": {
            "id": int(row["incident_id"]),
            "category": row["category"],
            "category_name_zh": row["category_name_zh"],
            "category_name_en": row["category_name_en"],
            "status": row["status"],
            "due_at": row["due_at"],
            "updated_at": row["updated_at"],
            "assigned_level": row["assigned_level"],
            "assigned_unit": row["assigned_unit"],
            "grid_code": row["grid_code"],
        },
    }


def list_notifications(
    bind: Bind,
    account: Account,
    *,
    since: datetime | None = None,
    unread_only: bool = False,
    limit: int = 500,
    now: datetime | None = None,
    settings: Settings | None = None,
    refresh: bool = True,
) -> list[dict[str, Any]]:
    """The account's newest ``limit`` notifications created after ``since`` (all
    without), oldest first, after deriving the account's missing ones (``refresh``). They carry no
    personal field (the incident's category, status, due time and units)."""
    since = _aware(since, "since")
    with transaction(bind) as c:
        if refresh:
            refresh_notifications(c, now, account_id=account.id, settings=settings)
        rows = store.notification_rows(
            c, account.id, since=since, unread_only=unread_only, limit=limit
        )
    return [_view(r) for r in rows]


def mark_read(bind: Bind, account: Account, notification_id: int) -> dict[str, Any]:
    """Mark one of the account's notifications read (NotFound for another's)."""
    with transaction(bind) as c:
        row = store.mark_read(c, notification_id, account.id, datetime.now(UTC))
    if row is None:
        raise NotFound(f"notification {notification_id} does not exist (or is not yours)")
    return _view(row)


def deliver(
    bind: Engine,
    channels: Mapping[str, Channel],
    *,
    now: datetime | None = None,
    tries: int = 3,
    backoff_s: float = 0.5,
    limit: int = 500,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, int]:
    """Send the due pending deliveries of ``channels``: each gets up to ``tries``
    attempts now, ``backoff_s × 2^(n-1)`` seconds apart; one still failing waits for a
    later run (:data:`RETRY_LATER_S` × 2^(runs-1)), and is ``failed`` after
    :data:`MAX_ATTEMPTS`. The network is never used inside a transaction.

    Returns counts: ``sent``, ``retry`` (left for a later run), ``failed``.
    """
    when = _aware(now, "now") or datetime.now(UTC)
    with transaction(bind) as c:
        claimed = store.claim_deliveries(
            c, channels=list(channels), now=when, lease_until=when + _LEASE, limit=limit
        )
    counts = {"sent": 0, "retry": 0, "failed": 0}
    for d in claimed:
        channel = channels[d["channel"]]
        payload = payload_of(d["notification"])
        attempts = int(d["attempts"])
        error: str | None = None
        ok = False
        for k in range(max(1, tries)):
            attempts += 1
            try:
                channel.send(payload)
                ok = True
                break
            except DeliveryError as exc:
                error = str(exc)
            if k + 1 < tries and attempts < MAX_ATTEMPTS:
                sleep(backoff(k + 1, backoff_s).total_seconds())
            if attempts >= MAX_ATTEMPTS:
                break
        done = datetime.now(UTC)
        if ok:
            status, nxt, counts_key = "sent", None, "sent"
        elif attempts >= MAX_ATTEMPTS:
            status, nxt, counts_key = "failed", None, "failed"
        else:
            runs = max(1, attempts // max(1, tries))
            later = backoff(runs, RETRY_LATER_S, RETRY_LATER_CAP_S)
            status, nxt, counts_key = "pending", done + later, "retry"
        counts[counts_key] += 1
        with transaction(bind) as c:
            store.finish_delivery(
                c,
                int(d["id"]),
                status=status,
                attempts=attempts,
                last_error=None if ok else error,
                sent_at=done if ok else None,
                next_attempt_at=nxt,
            )
    return counts


def run_once(
    bind: Engine,
    *,
    now: datetime | None = None,
    settings: Settings | None = None,
    channels: Mapping[str, Channel] | None = None,
) -> dict[str, int]:
    """Derive every missing notification and send the due deliveries (the CLI's
    ``geogrid notify run`` and the app's periodic task). Returns ``created`` plus the
    counts of :func:`deliver`."""
    s = settings or get_settings()
    created = refresh_notifications(bind, now, settings=s)
    chans = channels if channels is not None else channels_from_settings(s)
    counts = {"sent": 0, "retry": 0, "failed": 0}
    try:
        if chans:
            counts = deliver(
                bind,
                chans,
                now=now,
                tries=s.notify_webhook_tries,
                backoff_s=s.notify_webhook_backoff,
            )
    finally:
        if channels is None:
            for ch in chans.values():
                close = getattr(ch, "close", None)
                if close is not None:
                    close()
    return {"created": len(created), **counts}


def deliveries(bind: Bind, notification_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """The delivery records (of ``notification_ids``, or all), oldest first."""
    return store.delivery_rows(bind, notification_ids)


async def _periodically(bind: Engine, settings: Settings, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            counts = await asyncio.to_thread(run_once, bind, settings=settings)
            if any(counts.values()):
                log.info("notifications: %s", counts)
        except Exception:  # keep the service's loop alive; the next run retries
            log.exception("notifications: the periodic run failed")


def start_periodic(bind: Engine, settings: Settings) -> asyncio.Task[None] | None:
    """Start :func:`run_once` every ``settings.notify_interval`` seconds on the running
    event loop (in a worker thread); None when the interval is 0. Stop it with
    :func:`stop_periodic`."""
    interval = float(settings.notify_interval)
    if interval <= 0:
        return None
    return asyncio.get_running_loop().create_task(_periodically(bind, settings, interval))


async def stop_periodic(task: asyncio.Task[None] | None) -> None:
    """Cancel the task of :func:`start_periodic` (a run in progress finishes on its own)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
