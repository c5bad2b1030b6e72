"""Residents' evaluation of their grid worker (群众测评, issue 14): rounds, the public
form, paper forms keyed in by staff.

A round belongs to one grid and names the grid's workers when it is created (so a later
re-assignment does not move old answers to the new worker). Its link ``/e/{token}`` is
256 random bits kept as SHA-256 only; its salt (32 random bytes) keys the voter hash
(:func:`geogrid.core.evaluation.voter_hash`), and ``UNIQUE(round_id, voter_hash)`` makes
one answer per household: a second answer is 409. The household reference or phone is
never stored, logged or audited.

Who creates rounds and keys paper forms: community, street and district admins whose
units cover the grid, and admin.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from geogrid.core import evaluation as ev
from geogrid.core.accounts import Account, hash_token, new_token
from geogrid.core.hierarchy import CODE_LENGTH, LEVEL_COLUMN, parent_chain
from geogrid.core.satisfaction import LinkExpired
from geogrid.core.scope import Scope
from geogrid.errors import Conflict, Forbidden, InvalidInput, NotFound
from geogrid.services import audit, idempotency
from geogrid.services.satisfaction import qr_svg
from geogrid.settings import get_settings
from geogrid.store import residents as store
from geogrid.store.engine import connection, transaction

__all__ = [
    "EVALUATION_ROLES",
    "EVALUATION_PATH",
    "create_round",
    "list_rounds",
    "public_round",
    "submit",
    "paper",
]

Bind = Engine | Connection

EVALUATION_ROLES = frozenset({"community_admin", "street_admin", "district_admin", "admin"})
EVALUATION_PATH = "/e/"
_DEFAULT_DAYS = 30


def _now() -> datetime:
    return datetime.now(UTC)


def _require(actor: Account) -> None:
    if actor.role not in EVALUATION_ROLES:
        raise Forbidden(
            f"role {actor.role!r} does not run evaluation rounds (roles: "
            + ", ".join(sorted(EVALUATION_ROLES))
            + ")"
        )


def _aware(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(name, str(value), "a date-time with a time zone")
    return value


def _public_round(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "grid_code": row["grid_code"],
        "grid_name": row["grid_name"],
        "label": row["label"],
        "opens_at": row["opens_at"],
        "closes_at": row["closes_at"],
        "open": row["opens_at"] <= now < row["closes_at"],
        "criteria": ev.criteria_from_stored(row["criteria"]),
    }


def _in_order(means: dict[str, float], criteria: dict[str, Any]) -> dict[str, float]:
    return {k: means[k] for k in criteria if k in means}


def _staff_round(conn: Connection, row: dict[str, Any], now: datetime) -> dict[str, Any]:
    out = _public_round(row, now)
    out.update(
        community_code=row["community_code"],
        street_code=row["street_code"],
        district_code=row["district_code"],
        worker_ids=list(row["worker_ids"] or []),
        answers=int(row["answers"]),
        mean_score=float(row["mean_score"]) if row["mean_score"] is not None else None,
        criterion_means=_in_order(store.criterion_means(conn, row["id"]), out["criteria"]),
        created_at=row["created_at"],
    )
    return out


def create_round(
    bind: Bind,
    actor: Account,
    *,
    grid_code: str,
    label: str,
    opens_at: datetime | None = None,
    closes_at: datetime | None = None,
    base_url: str,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """A new round for a grid: the round with ``url``, ``token`` (shown once) and
    ``qr_svg`` for the poster. Criteria: the ``evaluation_criteria`` setting or the
    defaults, copied into the round."""
    _require(actor)
    if (
        not isinstance(grid_code, str)
        or len(grid_code) != CODE_LENGTH["grid"]
        or not grid_code.isdigit()
    ):
        raise InvalidInput("grid_code", grid_code, f"a grid code of {CODE_LENGTH['grid']} digits")
    if not isinstance(label, str) or not 1 <= len(label.strip()) <= 200:
        raise InvalidInput("label", label, "a label of 1 to 200 characters (e.g. 2026年第二季度)")
    now = _now()
    opens = _aware(opens_at, "opens_at") or now
    closes = _aware(closes_at, "closes_at") or opens + timedelta(days=_DEFAULT_DAYS)
    if closes <= opens:
        raise InvalidInput("closes_at", closes.isoformat(), "a time after opens_at")
    chain = parent_chain(grid_code)
    codes = {LEVEL_COLUMN[lv]: code for lv, code in chain.items()}
    if not Scope.of(actor).covers(codes):
        raise NotFound(f"grid {grid_code} does not exist (or is outside your units)")
    criteria = ev.criteria_of(get_settings().evaluation_criteria)
    principal = idempotency.principal_of(actor.id)
    with transaction(bind) as c:
        first = idempotency.replay_or_claim(
            c,
            idempotency_key,
            principal=principal,
            operation="evaluation_round",
            request={
                "grid_code": grid_code,
                "label": label,
                "opens_at": opens_at,
                "closes_at": closes_at,
            },
        )
        if first is not None:
            return first
        if not store.grid_exists(c, grid_code):
            raise NotFound(f"grid {grid_code} does not exist in the published boundaries")
        token = new_token()
        rid = store.insert_round(
            c,
            {
                **codes,
                "label": label.strip(),
                "opens_at": opens,
                "closes_at": closes,
                "salt": ev.new_salt(),
                "token_hash": hash_token(token),
                "criteria": ev.criteria_to_stored(criteria),
                "worker_ids": store.grid_workers(c, grid_code),
                "created_by": actor.id,
                "created_at": now,
            },
        )
        row = store.round_row(c, rid, Scope.system())
        assert row is not None
        url = base_url.rstrip("/") + EVALUATION_PATH + token
        out = {**_staff_round(c, row, now), "url": url, "token": token, "qr_svg": qr_svg(url)}
        audit.record(
            c, actor=actor, action="evaluation.round", resource="evaluation_round", ids=[rid]
        )
        idempotency.remember(c, idempotency_key, principal=principal, answer=out, resource_id=rid)
    return out


def list_rounds(
    bind: Bind, actor: Account, *, grid_code: str | None = None
) -> list[dict[str, Any]]:
    """The rounds in the actor's units (newest first) with their answers and means."""
    _require(actor)
    now = _now()
    with connection(bind) as c:
        rows = store.round_rows(c, scope=Scope.of(actor), grid_code=grid_code)
        return [_staff_round(c, r, now) for r in rows]


def _by_token(conn: Connection, token: str) -> dict[str, Any]:
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise NotFound("this evaluation link does not exist (check the address)")
    row = store.round_by_hash(conn, hash_token(token))
    if row is None:
        raise NotFound("this evaluation link does not exist (check the address)")
    return row


def public_round(bind: Bind, token: str) -> dict[str, Any]:
    """The public fields of a round (grid name, label, window, criteria, open or not)."""
    with connection(bind) as c:
        return _public_round(_by_token(c, token), _now())


def _insert(
    conn: Connection,
    row: dict[str, Any],
    *,
    household_ref: Any,
    phone: Any,
    scores: Any,
    comment: Any,
    source: str,
    entered_by: int | None,
    at: datetime,
) -> dict[str, Any]:
    key = ev.voter_key(household_ref=household_ref, phone=phone)
    checked = ev.check_scores(scores, ev.criteria_from_stored(row["criteria"]))
    if comment is not None and (not isinstance(comment, str) or len(comment) > 2000):
        raise InvalidInput("comment", "(text)", "text of at most 2000 characters")
    aid = store.insert_answer(
        conn,
        {
            "round_id": int(row["id"]),
            "voter_hash": ev.voter_hash(bytes(row["salt"]), key),
            "scores": checked,
            "mean_score": ev.mean_score(checked),
            "comment": (comment or "").strip() or None,
            "source": source,
            "entered_by": entered_by,
            "at": at,
        },
    )
    if aid is None:
        raise Conflict(
            "this household (or phone number) has answered this round already: one answer "
            "per household — 本户已参加本轮测评"
        )
    return {
        "id": int(aid),
        "round_id": int(row["id"]),
        "scores": checked,
        "mean_score": ev.mean_score(checked),
        "source": source,
    }


def submit(
    bind: Bind,
    token: str,
    *,
    household_ref: Any = None,
    phone: Any = None,
    scores: Any,
    comment: Any = None,
    now: datetime | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """A resident's answer through the round's link (409 when the household answered).
    With ``idempotency_key`` (scoped to the round) a retry returns the first answer; the
    request is remembered by the voter's salted hash, never the identifier."""
    at = now or _now()
    with transaction(bind) as c:
        row = _by_token(c, token)
        principal = f"round:{int(row['id'])}"
        first = idempotency.replay_or_claim(
            c,
            idempotency_key,
            principal=principal,
            operation="evaluation_answer",
            request={
                "voter": ev.voter_hash(
                    bytes(row["salt"]), ev.voter_key(household_ref=household_ref, phone=phone)
                ).hex(),
                "scores": scores,
                "comment": comment,
            },
        )
        if first is not None:
            return first
        if not row["opens_at"] <= at < row["closes_at"]:
            raise LinkExpired(
                f"this evaluation round is open from {row['opens_at']:%Y-%m-%d} to "
                f"{row['closes_at']:%Y-%m-%d} — 本轮测评不在开放时间内"
            )
        out = _insert(
            c,
            row,
            household_ref=household_ref,
            phone=phone,
            scores=scores,
            comment=comment,
            source="link",
            entered_by=None,
            at=at,
        )
        audit.record(
            c, actor=None, action="evaluation.answer", resource="evaluation_round", ids=[row["id"]]
        )
        idempotency.remember(
            c, idempotency_key, principal=principal, answer=out, resource_id=out["id"]
        )
    return out


def paper(
    bind: Bind,
    round_id: int,
    actor: Account,
    *,
    household_ref: Any = None,
    phone: Any = None,
    scores: Any,
    comment: Any = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """A paper form keyed in by staff (any time: forms collected in the window may be
    keyed in later)."""
    _require(actor)
    principal = idempotency.principal_of(actor.id)
    with transaction(bind) as c:
        first = idempotency.replay_or_claim(
            c,
            idempotency_key,
            principal=principal,
            operation="evaluation_paper",
            # the voter's identifier is not part of the stored request: its hash is
            request={"round_id": int(round_id), "scores": scores, "comment": comment},
        )
        if first is not None:
            return first
        row = store.round_row(c, round_id, Scope.of(actor))
        if row is None:
            raise NotFound(f"evaluation round {round_id} does not exist (or is outside your units)")
        out = _insert(
            c,
            row,
            household_ref=household_ref,
            phone=phone,
            scores=scores,
            comment=comment,
            source="paper",
            entered_by=actor.id,
            at=_now(),
        )
        audit.record(
            c, actor=actor, action="evaluation.paper", resource="evaluation_round", ids=[round_id]
        )
        idempotency.remember(
            c, idempotency_key, principal=principal, answer=out, resource_id=out["id"]
        )
    return out
