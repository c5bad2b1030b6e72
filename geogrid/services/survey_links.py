"""Satisfaction links of resolved incidents (issue 14): created when an incident is
resolved (:func:`on_resolved`, called by :func:`geogrid.services.incidents.transition` in
its transaction) or issued again by staff (:func:`geogrid.services.satisfaction.issue_link`).

A link is ``/s/{token}``: 256 random bits (:func:`geogrid.core.accounts.new_token`), only
the SHA-256 kept; it expires after ``survey_link_days`` and a newer link of the same
incident revokes the older unanswered ones. The token of the link made automatically is
for a delivery channel (an SMS gateway of the deployment): staff who meet the resident
issue a fresh one with its QR code.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from geogrid.core.accounts import hash_token, new_token
from geogrid.core.satisfaction import FollowUpRules
from geogrid.settings import get_settings
from geogrid.store import residents as store

__all__ = ["create_link", "on_resolved", "queue_follow_up", "follow_up_rules", "SURVEY_PATH"]

#: the public page of a link (``SURVEY_PATH + token``)
SURVEY_PATH = "/s/"


def create_link(
    conn: Connection, incident_id: int, *, at: datetime, created_by: int | None = None
) -> dict[str, Any]:
    """A new link of an incident (older unanswered links revoked): token (shown once),
    path and expiry."""
    token = new_token()
    days = get_settings().survey_link_days
    row = store.insert_link(
        conn,
        incident_id,
        hash_token(token),
        expires_at=at + timedelta(days=days),
        at=at,
        created_by=created_by,
    )
    return {"token": token, "path": SURVEY_PATH + token, "expires_at": row["expires_at"]}


def on_resolved(conn: Connection, incident_id: int, at: datetime) -> dict[str, Any]:
    """The link of an incident that has just been resolved (in the caller's transaction)."""
    return create_link(conn, incident_id, at=at)


def follow_up_rules() -> FollowUpRules:
    """The follow-up sample of the settings (``follow_up_*``)."""
    s = get_settings()
    return FollowUpRules(
        rate=s.follow_up_rate,
        rates=dict(s.follow_up_rates),
        dispute_categories=tuple(s.follow_up_dispute_categories),
        due_days=s.follow_up_due_days,
    )


def queue_follow_up(conn: Connection, incident_id: int, reason: str, *, at: datetime) -> int | None:
    """Queue a follow-up call of an incident (due ``follow_up_due_days`` later); None when
    it is queued for this reason already."""
    due = at + timedelta(days=follow_up_rules().due_days)
    return store.insert_follow_up(conn, incident_id, reason, due_at=due, at=at)
