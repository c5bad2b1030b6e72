"""Outbound channels of notifications: a :class:`Channel` protocol, the ``webhook``
channel (JSON POST signed with HMAC-SHA256) and the ``log`` channel.

SMS and WeChat gateways are the deployments' own: they receive the webhook and forward
it. Web Push (VAPID keys, a push service) would be a third channel for deployments that
reach a push service; it is not shipped here (not testable offline).

A payload carries no personal data: the notification's id, kind and time, the account
id it is for, and the incident's id, category, status, due time and units — never a
description, a name or a phone number. The receiver maps the account id to its own
contact list.

The retries (with exponential backoff) and the record of each delivery in
``notification_delivery`` are done by :func:`geogrid.services.notifications.deliver`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import httpx

from geogrid.core.notifications import CHANNELS, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from geogrid.errors import InvalidInput
from geogrid.settings import Settings

__all__ = [
    "Channel",
    "DeliveryError",
    "WebhookChannel",
    "LogChannel",
    "payload_of",
    "channels_from_settings",
]

log = logging.getLogger("geogrid.notifications")


class DeliveryError(Exception):
    """A channel could not deliver (the message says why; no personal data)."""


@runtime_checkable
class Channel(Protocol):
    """An outbound channel: ``name`` and ``send(payload)`` (raises DeliveryError)."""

    name: str

    def send(self, payload: Mapping[str, Any]) -> None: ...


def payload_of(n: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON payload of a notification row (with its incident's summary): no personal
    fields.

    >>> from datetime import datetime, UTC
    >>> p = payload_of({"id": 5, "kind": "overdue", "account_id": 7, "incident_id": 9,
    ...   "created_at": datetime(2026, 5, 1, tzinfo=UTC), "category": "garbage",
    ...   "status": "accepted", "due_at": None, "assigned_level": "grid",
    ...   "assigned_unit": "450902001001001", "grid_code": "450902001001001"})
    >>> p["kind"], p["incident"]["id"], p["created_at"]
    ('overdue', 9, '2026-05-01T00:00:00+00:00')
    """

    def iso(v: Any) -> Any:
        return v.isoformat() if hasattr(v, "isoformat") else v

    return {
        "id": int(n["id"]),
        "kind": n["kind"],
        "account_id": int(n["account_id"]),
        "created_at": iso(n["created_at"]),
        "incident": {
            "id": int(n["incident_id"]),
            "category": n.get("category"),
            "status": n.get("status"),
            "due_at": iso(n.get("due_at")),
            "assigned_level": n.get("assigned_level"),
            "assigned_unit": n.get("assigned_unit"),
            "grid_code": n.get("grid_code"),
        },
    }


class WebhookChannel:
    """POST the payload as JSON to ``url``, signed: ``X-Geogrid-Timestamp`` and
    ``X-Geogrid-Signature: sha256=<HMAC-SHA256 of "<timestamp>.<body>">`` (see
    :mod:`geogrid.core.notifications`). Any answer but 2xx, or no answer within
    ``timeout`` seconds, is a DeliveryError."""

    name = "webhook"

    def __init__(self, url: str, secret: bytes, *, timeout: float = 5.0):
        if not url.startswith(("http://", "https://")):
            raise InvalidInput("notify_webhook_url", url, "an http:// or https:// URL")
        if not secret:
            raise InvalidInput("notify_webhook_secret", "(empty)", "a shared secret")
        self.url = url
        self._secret = secret
        self._client = httpx.Client(timeout=timeout)

    def send(self, payload: Mapping[str, Any]) -> None:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: sign(self._secret, ts, body),
            "User-Agent": "geogrid-notify/1",
        }
        try:
            r = self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook: {type(exc).__name__}") from None
        if not 200 <= r.status_code < 300:
            raise DeliveryError(f"webhook answered {r.status_code}")

    def close(self) -> None:
        self._client.close()


class LogChannel:
    """Write one line per notification to the ``geogrid.notifications`` log: kind,
    notification, account and incident ids, the incident's status and units — no
    personal data."""

    name = "log"

    def send(self, payload: Mapping[str, Any]) -> None:
        inc = payload.get("incident") or {}
        log.info(
            "notification %s kind=%s account=%s incident=%s status=%s unit=%s",
            payload.get("id"),
            payload.get("kind"),
            payload.get("account_id"),
            inc.get("id"),
            inc.get("status"),
            inc.get("assigned_unit"),
        )


def channels_from_settings(settings: Settings) -> dict[str, Channel]:
    """The channels named in ``settings.notify_channels`` (InvalidInput for an unknown
    name or a webhook without URL or secret)."""
    out: dict[str, Channel] = {}
    for name in settings.notify_channels:
        if name == "log":
            out[name] = LogChannel()
        elif name == "webhook":
            secret = settings.notify_webhook_secret
            if not settings.notify_webhook_url or secret is None:
                raise InvalidInput(
                    "notify_channels",
                    name,
                    "webhook with GEOGRID_NOTIFY_WEBHOOK_URL and GEOGRID_NOTIFY_WEBHOOK_SECRET set",
                )
            out[name] = WebhookChannel(
                settings.notify_webhook_url, secret.get_secret_value().encode("utf-8")
            )
        else:
            raise InvalidInput("notify_channels", name, "some of " + ", ".join(CHANNELS))
    return out
