"""The follow-up (回访) queue (issue 14): the centre's staff call or visit residents and
record what they heard; the result feeds the same satisfaction figures as the links.

Sampling (:mod:`geogrid.core.satisfaction`): every dissatisfied answer is queued when it
is given (:func:`geogrid.services.satisfaction.record_verdict`); :func:`refresh` queues
every closed incident of a dispute category and the deterministic sample (by a hash of the
incident id, ``follow_up_rate`` / ``follow_up_rates`` per category) of the other closed
incidents of the last :data:`REFRESH_DAYS` days. It runs before the queue is read, so the
queue is current without a scheduler; running it twice queues nothing new.

Who: community, street and district admins (their units) and admin (everything).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from geogrid.core import satisfaction as rules
from geogrid.core.accounts import Account
from geogrid.core.scope import Scope
from geogrid.errors import Conflict, Forbidden, InvalidInput, NotFound
from geogrid.services import audit, idempotency
from geogrid.services.satisfaction import record_verdict
from geogrid.services.survey_links import follow_up_rules, queue_follow_up
from geogrid.store import residents as store
from geogrid.store.engine import transaction

__all__ = ["FOLLOW_UP_ROLES", "REFRESH_DAYS", "refresh", "queue", "record"]

Bind = Engine | Connection

#: the roles that work the queue
FOLLOW_UP_ROLES = frozenset({"community_admin", "street_admin", "district_admin", "admin"})
#: closed incidents of this many past days are considered by :func:`refresh`
REFRESH_DAYS = 60


def _now() -> datetime:
    return datetime.now(UTC)


def _require(actor: Account) -> None:
    if actor.role not in FOLLOW_UP_ROLES:
        raise Forbidden(
            f"role {actor.role!r} does not work the follow-up queue (roles: "
            + ", ".join(sorted(FOLLOW_UP_ROLES))
            + ")"
        )


def refresh(bind: Bind, *, now: datetime | None = None) -> int:
    """Queue the closed incidents the rules sample (dispute categories, the share of the
    others). Returns how many were queued."""
    at = now or _now()
    r = follow_up_rules()
    n = 0
    with transaction(bind) as c:
        for row in store.closed_unqueued(c, at - timedelta(days=REFRESH_DAYS)):
            reason = rules.follow_up_reason(int(row["id"]), row["category"], r)
            if reason is not None and queue_follow_up(c, int(row["id"]), reason, at=at):
                n += 1
    return n


def queue(
    bind: Bind,
    actor: Account,
    *,
    done: bool | None = False,
    limit: int = 200,
    offset: int = 0,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The follow-ups in the actor's units (open ones by due time first), after
    :func:`refresh`. ``done``: False open only, True done only, None both."""
    _require(actor)
    refresh(bind, now=now)
    at = now or _now()
    rows = store.follow_up_rows(bind, scope=Scope.of(actor), done=done, limit=limit, offset=offset)
    for d in rows:
        d["overdue"] = d["done_at"] is None and d["due_at"] < at
        d["reason_zh"], d["reason_en"] = rules.FOLLOW_UP_REASON_NAMES[d["reason"]]
    audit.record_read(
        bind,
        Scope.of(actor),
        "follow_up",
        [int(d["incident_id"]) for d in rows if d["resident_comment"] or d["note"]],
        ["resident_comment", "note"],
    )
    return rows


def record(
    bind: Bind,
    follow_up_id: int,
    actor: Account,
    *,
    reached: Any,
    satisfied: Any = None,
    score: Any = None,
    note: Any = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Record a call or visit. When the resident was reached, ``satisfied`` is required and
    the answer becomes the incident's satisfaction (source ``follow_up``) — applied like a
    link's answer (a dissatisfied resident reopens a resolved incident)."""
    _require(actor)
    if not isinstance(reached, bool):
        raise InvalidInput("reached", reached, "true or false")
    if reached and not isinstance(satisfied, bool):
        raise InvalidInput("satisfied", satisfied, "true or false (the resident was reached)")
    if note is not None and (not isinstance(note, str) or len(note) > rules.MAX_COMMENT):
        raise InvalidInput("note", "(text)", f"text of at most {rules.MAX_COMMENT} characters")
    solved_score = rules.from_follow_up(bool(satisfied), score) if reached else None
    principal = idempotency.principal_of(actor.id)
    at = _now()
    with transaction(bind) as c:
        first = idempotency.replay_or_claim(
            c,
            idempotency_key,
            principal=principal,
            operation="follow_up",
            request={
                "id": int(follow_up_id),
                "reached": reached,
                "satisfied": satisfied,
                "score": score,
                "note": note,
            },
        )
        if first is not None:
            return first
        row = store.lock_follow_up(c, follow_up_id, Scope.of(actor))
        if row is None:
            raise NotFound(f"follow-up {follow_up_id} does not exist (or is outside your units)")
        if row["done_at"] is not None:
            raise Conflict(
                f"follow-up {follow_up_id} was recorded already at {row['done_at']:%Y-%m-%d %H:%M} UTC"
            )
        store.finish_follow_up(
            c,
            follow_up_id,
            staff_id=actor.id,
            reached=reached,
            satisfied=satisfied if reached else None,
            score=solved_score[1] if solved_score else None,
            note=note,
            at=at,
        )
        verdict = None
        if solved_score is not None:
            verdict = record_verdict(
                c,
                int(row["incident_id"]),
                source="follow_up",
                solved=solved_score[0],
                score=solved_score[1],
                comment=note,
                at=at,
                actor_id=actor.id,
            )
        audit.record(
            c, actor=actor, action="follow_up.record", resource="follow_up", ids=[follow_up_id]
        )
        out = {
            "id": int(follow_up_id),
            "incident_id": int(row["incident_id"]),
            "reached": reached,
            "satisfied": satisfied if reached else None,
            "score": solved_score[1] if solved_score else None,
            "done_at": at,
            "verdict": verdict["verdict"] if verdict else None,
            "status": verdict["status"] if verdict else row["status"],
        }
        idempotency.remember(
            c,
            idempotency_key,
            principal=principal,
            answer=out,
            status_code=200,
            resource_id=int(follow_up_id),
        )
    return out
