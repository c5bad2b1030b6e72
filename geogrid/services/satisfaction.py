"""Residents' satisfaction with handled incidents (issue 14): links, the public survey,
answers and what they do, public status notes.

* :func:`issue_link` — staff issue (or reissue) an incident's link with its QR code;
  the first link is made when the incident is resolved
  (:func:`geogrid.services.survey_links.on_resolved`).
* :func:`survey` / :func:`answer` — the public page's reads and writes, by token. A token
  that does not exist is 404 (:class:`~geogrid.errors.NotFound`), an expired or replaced
  one :class:`~geogrid.core.satisfaction.LinkExpired` (409), an answered one
  :class:`~geogrid.core.satisfaction.LinkAnswered` (409).
* An answer is the incident's current verdict (``satisfaction``, one row per incident) and
  an event of its history (kind ``satisfaction``, **public**, the actor none: the
  resident). On a resolved incident a dissatisfied answer reopens it (resolved →
  in_progress, the comment in the note) and "solved" with a good score closes it: the
  resident is the verifier of the resolution (rules in :mod:`geogrid.core.satisfaction`).
  A dissatisfied answer also queues a follow-up call (:mod:`geogrid.services.follow_up`).
* :func:`status_notes` — the latest public note of incidents (Open311 ``status_notes``);
  :func:`add_public_note` — a staff note residents may read.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import segno
from sqlalchemy import Connection, Engine

from geogrid.core import satisfaction as rules
from geogrid.core.accounts import Account, hash_token, require_can_act
from geogrid.core.masking import mask_text
from geogrid.core.scope import Scope
from geogrid.errors import Conflict, InvalidInput, NotFound
from geogrid.services import audit, idempotency
from geogrid.services import incidents as incident_service
from geogrid.services.survey_links import create_link, queue_follow_up
from geogrid.settings import get_settings
from geogrid.store import residents as store
from geogrid.store.engine import connection, transaction

__all__ = [
    "issue_link",
    "survey",
    "answer",
    "record_verdict",
    "status_notes",
    "add_public_note",
    "qr_svg",
    "satisfaction_rules",
    "SATISFACTION_EVENT",
]

Bind = Engine | Connection

#: the kind of the history event of an answer
SATISFACTION_EVENT = "satisfaction"
_NOTE_EVENT = "note"
#: statuses a link may be issued for
_LINKABLE = ("resolved", "closed")


def _now() -> datetime:
    return datetime.now(UTC)


def satisfaction_rules() -> rules.SatisfactionRules:
    s = get_settings()
    return rules.SatisfactionRules(
        reopen=s.satisfaction_reopen,
        reopen_max_score=s.satisfaction_reopen_max_score,
        close_min_score=s.satisfaction_close_min_score,
    )


def qr_svg(url: str) -> str:
    """The QR code of ``url`` as inline SVG text (segno, error correction M)."""
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="svg", scale=4, xmldecl=False, svgns=True)
    return buf.getvalue().decode("utf-8")


def issue_link(
    bind: Bind,
    incident_id: int,
    actor: Account,
    *,
    base_url: str,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """A new satisfaction link of a resolved (or closed) incident, for a member of staff
    who may act on it: ``{url, token, qr_svg, expires_at, incident_id}``. Older
    unanswered links of the incident stop working. NotFound outside the actor's units;
    Conflict when the incident is not resolved or closed."""
    principal = idempotency.principal_of(actor.id)
    with transaction(bind) as c:
        first = idempotency.replay_or_claim(
            c,
            idempotency_key,
            principal=principal,
            operation="satisfaction_link",
            request={"incident_id": int(incident_id)},
        )
        if first is not None:
            return first
        row = store.incident_brief(c, incident_id, lock=True)
        if row is None or not Scope.of(actor).covers(row):
            raise NotFound(f"incident {incident_id} does not exist (or is outside your units)")
        require_can_act(actor, row, f"incident {incident_id}")
        if row["status"] not in _LINKABLE:
            raise Conflict(
                f"incident {incident_id} is {row['status']}: a satisfaction link is issued "
                f"for a resolved or closed incident"
            )
        link = create_link(c, incident_id, at=_now(), created_by=actor.id)
        url = base_url.rstrip("/") + link["path"]
        out = {
            "incident_id": int(incident_id),
            "url": url,
            "token": link["token"],
            "qr_svg": qr_svg(url),
            "expires_at": link["expires_at"],
        }
        audit.record(
            c, actor=actor, action="satisfaction.link", resource="incident", ids=[incident_id]
        )
        idempotency.remember(
            c, idempotency_key, principal=principal, answer=out, resource_id=int(incident_id)
        )
    return out


def _link(conn: Connection, token: str, *, lock: bool) -> dict[str, Any]:
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise NotFound("this satisfaction link does not exist (check the address)")
    row = store.link_by_hash(conn, hash_token(token), lock=lock)
    if row is None:
        raise NotFound("this satisfaction link does not exist (check the address)")
    return row


def _usable(row: dict[str, Any], now: datetime) -> None:
    if row["answered_at"] is not None:
        raise rules.LinkAnswered(
            "this link was answered already (one answer per link); thank you — "
            "此链接已评价，感谢您的反馈"
        )
    if row["revoked_at"] is not None:
        raise rules.LinkExpired(
            "this link was replaced by a newer one; use the latest link — 此链接已失效，请使用最新链接"
        )
    if row["expires_at"] <= now:
        raise rules.LinkExpired(
            f"this link expired on {row['expires_at']:%Y-%m-%d}; ask the grid centre for a new "
            "one — 此链接已过期"
        )


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "incident_id": int(row["incident_id"]),
        "category": row["category"],
        "category_zh": row["category_zh"],
        "category_en": row["category_en"],
        "status": row["status"],
        "reported_at": row["reported_at"],
        "resolved_at": row["resolved_at"],
        "grid_name": row["grid_name"],
        "expires_at": row["expires_at"],
        "answered": row["answered_at"] is not None,
        "choices": {k: {"zh": zh, "en": en} for k, (zh, en) in rules.SOLVED_NAMES.items()},
    }


def survey(bind: Bind, token: str, *, now: datetime | None = None) -> dict[str, Any]:
    """The public fields of a link's incident (category, status, times, grid name) and
    the choices; refused as :func:`answer` refuses."""
    with connection(bind) as c:
        row = _link(c, token, lock=False)
    _usable(row, now or _now())
    return _public(row)


def record_verdict(
    conn: Connection,
    incident_id: int,
    *,
    source: str,
    solved: str,
    score: int,
    comment: str | None,
    at: datetime,
    actor_id: int | None = None,
) -> dict[str, Any]:
    """Store an answer (the incident's current verdict and a public history event) and
    apply it: reopen or close a resolved incident, queue a follow-up when dissatisfied.
    Returns the verdict and the incident's new status."""
    brief = store.incident_brief(conn, incident_id, lock=True)
    if brief is None:
        raise NotFound(f"incident {incident_id} does not exist")
    saved = store.upsert_satisfaction(
        conn, incident_id, source=source, solved=solved, score=score, comment=comment, at=at
    )
    zh, en = rules.SOLVED_NAMES[solved]
    store.insert_event(
        conn,
        incident_id,
        at=at,
        kind=SATISFACTION_EVENT,
        note=comment,
        data={"source": source, "solved": solved, "score": score},
        public=True,
        actor_id=actor_id,
    )
    r = satisfaction_rules()
    what = rules.verdict(solved, score, r) if brief["status"] == "resolved" else "keep"
    status = brief["status"]
    said = f"居民评价 resident's answer: {zh} {en}, {score}/5" + (
        f" — {comment}" if comment else ""
    )
    if what == "reopen":
        status = incident_service.transition(conn, incident_id, "in_progress", None, said)["status"]
    elif what == "close":
        status = incident_service.transition(conn, incident_id, "closed", None, said)["status"]
    if rules.dissatisfied(solved, score, r):
        queue_follow_up(conn, incident_id, "dissatisfied", at=at)
    return {**saved, "verdict": what, "status": status}


def answer(
    bind: Bind,
    token: str,
    *,
    solved: Any,
    score: Any,
    comment: Any = None,
    now: datetime | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """The resident's answer through a link (one per link). Returns ``{incident_id,
    solved, score, verdict ('reopen'|'close'|'keep'), status}``. With
    ``idempotency_key`` (scoped to the link), a retry returns the first answer instead of
    409 "answered already"."""
    sol, sc, text = rules.check_answer(solved, score, comment)
    at = now or _now()
    principal = "link:" + hash_token(str(token))[:32]
    with transaction(bind) as c:
        first = idempotency.replay_or_claim(
            c,
            idempotency_key,
            principal=principal,
            operation="satisfaction_answer",
            request={"solved": sol, "score": sc, "comment": text},
        )
        if first is not None:
            return first
        row = _link(c, token, lock=True)
        _usable(row, at)
        store.mark_link_answered(c, row["link_id"], at)
        out = record_verdict(
            c, row["incident_id"], source="link", solved=sol, score=sc, comment=text, at=at
        )
        audit.record(
            c,
            actor=None,
            action="satisfaction.answer",
            resource="incident",
            ids=[row["incident_id"]],
        )
        answer_out = {
            "incident_id": int(row["incident_id"]),
            "solved": sol,
            "score": sc,
            "verdict": out["verdict"],
            "status": out["status"],
        }
        idempotency.remember(
            c,
            idempotency_key,
            principal=principal,
            answer=answer_out,
            status_code=200,
            resource_id=int(row["incident_id"]),
        )
    return answer_out


def status_notes(bind: Bind, incident_ids: list[int]) -> dict[int, str]:
    """The latest public note of each incident (for Open311's ``status_notes``), contact
    details masked (:func:`geogrid.core.masking.mask_text`)."""
    notes = store.public_notes(bind, incident_ids)
    return {i: mask_text(n) or "" for i, n in notes.items()}


def add_public_note(bind: Bind, incident_id: int, note: str, actor: Account) -> dict[str, Any]:
    """A status note residents may read (Open311 ``status_notes``), by staff who may act
    on the incident."""
    if not isinstance(note, str) or not note.strip() or len(note) > rules.MAX_COMMENT:
        raise InvalidInput("note", note, f"text of 1 to {rules.MAX_COMMENT} characters")
    at = _now()
    with transaction(bind) as c:
        row = store.incident_brief(c, incident_id, lock=True)
        if row is None or not Scope.of(actor).covers(row):
            raise NotFound(f"incident {incident_id} does not exist (or is outside your units)")
        require_can_act(actor, row, f"incident {incident_id}")
        eid = store.insert_event(
            c,
            incident_id,
            at=at,
            kind=_NOTE_EVENT,
            note=note.strip(),
            data=None,
            public=True,
            actor_id=actor.id,
        )
        audit.record(
            c, actor=actor, action="incident.public_note", resource="incident", ids=[incident_id]
        )
    return {
        "id": eid,
        "incident_id": int(incident_id),
        "at": at,
        "note": note.strip(),
        "public": True,
    }
