"""Notifications of the grid worker's terminal: what they are, when they are due, and the
signature of the outbound webhook.

Notifications are derived from the incidents, never pushed by the incident workflow:
:func:`geogrid.services.notifications.refresh_notifications` inserts the rows that are
missing (one per account, kind and incident), so running it twice changes nothing.

Kinds
-----
``assigned`` (a new task for the account: assigned to them, their grid, their team's
grid or their unit), ``due_soon`` (its time limit ends within the due-soon window),
``overdue`` (past its time limit, not resolved), ``escalated`` (handed up a level: the
new unit's people and the grid's people who handed it on are told).

Webhook signature
-----------------
The webhook channel POSTs JSON with the headers ``X-Geogrid-Timestamp`` (Unix seconds)
and ``X-Geogrid-Signature: sha256=<hex>``, the HMAC-SHA256 of ``<timestamp>.<body>``
with the shared secret; a receiver recomputes it (:func:`verify_signature`) and refuses
old timestamps.

>>> sig = sign(b"secret", 1700000000, b'{"a":1}')
>>> sig.startswith("sha256="), verify_signature(b"secret", "1700000000", b'{"a":1}', sig,
...                                             now=1700000010)
(True, True)
>>> verify_signature(b"other", "1700000000", b'{"a":1}', sig, now=1700000010)
False
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Final

__all__ = [
    "KINDS",
    "KIND_LABELS",
    "CHANNELS",
    "DELIVERY_STATUSES",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "sign",
    "verify_signature",
    "backoff",
]

#: the kinds of notification, in the order they usually arrive
KINDS: Final[tuple[str, ...]] = ("assigned", "due_soon", "overdue", "escalated")
KIND_LABELS: Final[dict[str, tuple[str, str]]] = {
    "assigned": ("新任务", "new assignment"),
    "due_soon": ("即将到期", "due soon"),
    "overdue": ("已超时", "overdue"),
    "escalated": ("已上报升级", "escalated"),
}
#: outbound channels shipped (deployments add their own SMS/WeChat gateways behind the
#: webhook); Web Push (VAPID) is an option for deployments that reach a push service
CHANNELS: Final[tuple[str, ...]] = ("webhook", "log")
#: the states of one notification's delivery through one channel
DELIVERY_STATUSES: Final[tuple[str, ...]] = ("pending", "sent", "failed")
SIGNATURE_HEADER: Final[str] = "X-Geogrid-Signature"
TIMESTAMP_HEADER: Final[str] = "X-Geogrid-Timestamp"


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``<timestamp>.<body>`` with ``secret``."""
    mac = hmac.new(secret, str(int(timestamp)).encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float,
    tolerance_s: float = 300.0,
) -> bool:
    """True when ``signature`` is :func:`sign` of the body at ``timestamp`` and the
    timestamp is within ``tolerance_s`` of ``now`` (Unix seconds)."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(now - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), str(signature))


def backoff(attempt: int, base_s: float, cap_s: float = 3600.0) -> timedelta:
    """The wait before retry number ``attempt`` (1-based): ``base_s × 2^(attempt-1)``,
    at most ``cap_s``.

    >>> [backoff(n, 0.5).total_seconds() for n in (1, 2, 3)]
    [0.5, 1.0, 2.0]
    """
    return timedelta(seconds=min(cap_s, base_s * 2 ** max(0, attempt - 1)))
