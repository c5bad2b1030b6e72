"""Safe retries: an ``Idempotency-Key`` makes a create happen once, whatever the network does.

A client sends a key of its choosing with a create (``POST /incidents``, Open311's
``POST requests.json``, a transition, an escalation). The create's service claims the key
in the create's own transaction (:func:`replay_or_claim`) and stores its answer there
(:func:`remember`), so after a crash either the create and its key are both stored or
neither is:

* the same key with the same request → the first answer, stored (no second create);
* the same key with a different request → :class:`~geogrid.errors.Conflict` (409) naming
  the header;
* the same key sent again while the first is still running → the second waits for the
  first to commit and gets its answer (or, when the first fails, runs itself).

Keys belong to a principal: an account (``account:<id>``), or ``anonymous`` for reports
without a token (Open311 residents), where the key alone with the request's hash decides.
Answers are stored as JSON with their date-times tagged, so a replay returns the same
Python values as the first answer (aware datetimes stay datetimes).

Keys expire: :func:`prune` deletes the keys older than ``settings.idempotency_ttl_days``
(30 days by default, longer than a terminal stays offline); the running service prunes
once an hour and ``geogrid db prune-keys`` does it from the command line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import numpy as np
from sqlalchemy import Connection, Engine

from geogrid.errors import Conflict, InvalidInput
from geogrid.store import idempotency as store

__all__ = [
    "HEADER",
    "MAX_KEY_LENGTH",
    "ANONYMOUS",
    "check_key",
    "principal_of",
    "request_hash",
    "replay_or_claim",
    "claim_of",
    "replay",
    "stored",
    "remember",
    "answer_json",
    "prune",
    "encode",
    "decode",
]

#: the HTTP header carrying the key
HEADER = "Idempotency-Key"
#: the longest key accepted (characters)
MAX_KEY_LENGTH = 200
#: the principal of reports made without an account
ANONYMOUS = "anonymous"

_DATETIME, _DATE = "$datetime", "$date"


def check_key(key: str | None) -> str | None:
    """``key`` when it is a valid key (1–200 printable ASCII characters), None for none.

    >>> check_key("2f1c-report-17")
    '2f1c-report-17'
    >>> check_key(None) is None
    True
    >>> check_key("a\\x00b")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    geogrid.errors.InvalidInput: Idempotency-Key='a\\x00b' is not valid: expected 1 to 200 ...
    """
    if key is None:
        return None
    if not (
        isinstance(key, str)
        and 0 < len(key) <= MAX_KEY_LENGTH
        and all(" " <= ch <= "~" for ch in key)
        and key.strip()
    ):
        raise InvalidInput(
            HEADER, key, f"1 to {MAX_KEY_LENGTH} printable ASCII characters (e.g. a UUID)"
        )
    return key


def principal_of(account_id: int | None) -> str:
    """Whose keys: ``account:<id>``, or :data:`ANONYMOUS` without an account.

    >>> principal_of(12), principal_of(None)
    ('account:12', 'anonymous')
    """
    return ANONYMOUS if account_id is None else f"account:{int(account_id)}"


#: types :func:`encode` returns as they are
_PLAIN = frozenset({str, int, float, bool, type(None)})


def encode(value: Any) -> Any:
    """``value`` as JSON-ready data, date-times and dates tagged so :func:`decode` restores
    them; numpy scalars and Decimals become numbers, tuples lists.

    >>> from datetime import UTC
    >>> encode({"at": datetime(2026, 5, 1, 8, tzinfo=UTC), "n": np.int64(3)})
    {'at': {'$datetime': '2026-05-01T08:00:00+00:00'}, 'n': 3}
    """
    if type(value) in _PLAIN:  # most values: no ABC checks (issue 10, the report path)
        return value
    if type(value) is dict:
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return {_DATETIME: value.isoformat()}
    if isinstance(value, date):
        return {_DATE: value.isoformat()}
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Decimal):
        return float(value)
    return value


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`.

    >>> decode(encode({"at": datetime(2026, 5, 1, 8)}))
    {'at': datetime.datetime(2026, 5, 1, 8, 0)}
    """
    if isinstance(value, dict):
        if len(value) == 1 and _DATETIME in value:
            return datetime.fromisoformat(value[_DATETIME])
        if len(value) == 1 and _DATE in value:
            return date.fromisoformat(value[_DATE])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def request_hash(operation: str, request: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of an operation and its parameters (canonical JSON).

    >>> request_hash("create_incident", {"b": 1, "a": 2}) == request_hash(
    ...     "create_incident", {"a": 2, "b": 1})
    True
    """
    doc = json.dumps(
        {"operation": operation, "request": encode(request)},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(doc.encode("utf-8")).hexdigest()


def replay_or_claim(
    conn: Connection,
    key: str | None,
    *,
    principal: str,
    operation: str,
    request: Mapping[str, Any],
) -> dict[str, Any] | None:
    """Claim ``key`` in the caller's transaction, or return the first answer stored under it.

    Returns None when there is no key or it was free (go ahead, then :func:`remember`); the
    stored answer (as the first call returned it) when the same request was made before.

    Raises
    ------
    InvalidInput : the key is not 1–200 printable ASCII characters.
    Conflict : the key was used by this principal for a different request.
    """
    claim = claim_of(key, principal=principal, operation=operation, request=request)
    if claim is None:
        return None
    row = store.claim_key(conn, *claim)
    return None if row is None else replay(row, claim)


def claim_of(
    key: str | None, *, principal: str, operation: str, request: Mapping[str, Any]
) -> tuple[str, str, str, str] | None:
    """What claiming ``key`` writes: (principal, key, operation, request hash); None
    without a key. For a store statement that claims the key with other work (the report
    path); then :func:`replay` when the key was already there.

    Raises
    ------
    InvalidInput : the key is not 1–200 printable ASCII characters.
    """
    if check_key(key) is None:
        return None
    assert key is not None
    return principal, key, operation, request_hash(operation, request)


def replay(row: Mapping[str, Any], claim: tuple[str, str, str, str]) -> dict[str, Any]:
    """The first answer of a key found taken (``row``:
    :func:`geogrid.store.idempotency.stored_answer`) for the request ``claim`` describes.

    Raises
    ------
    Conflict : the key was used for a different request.
    """
    _, key, operation, digest = claim
    if row["request_hash"] != digest or row["operation"] != operation:
        raise Conflict(
            f"{HEADER} {key!r} was already used for a different request "
            f"({row['operation']} at {row['created_at'].isoformat()}): send a new key "
            "for a new request, the same request for a retry"
        )
    if row["response"] is None:  # pragma: no cover - the claim and answer share a transaction
        raise Conflict(f"{HEADER} {key!r}: the first request is still in progress")
    return cast(dict[str, Any], decode(row["response"]))


def stored(conn: Connection, claim: tuple[str, str, str, str]) -> dict[str, Any]:
    """The first answer under a key a store statement found taken (:func:`replay` of its
    row)."""
    row = store.stored_answer(conn, claim[0], claim[1])
    if row is None:  # pragma: no cover - a claimed key is deleted only by prune
        raise Conflict(f"{HEADER} {claim[1]!r}: the first request's answer is gone")
    return replay(row, claim)


def remember(
    conn: Connection,
    key: str | None,
    *,
    principal: str,
    answer: Mapping[str, Any],
    status_code: int = 201,
    resource_id: int | None = None,
) -> None:
    """Store the answer of a claimed key in the caller's transaction (nothing without a key)."""
    if key is None:
        return
    store.record_answer(conn, principal, key, status_code, encode(answer), resource_id)


def answer_json(answer: Mapping[str, Any]) -> str:
    """An answer as it is stored under its key (:func:`encode` as JSON text): for a store
    statement that writes it with the rows it answers for."""
    return json.dumps(encode(answer), ensure_ascii=False)


def prune(bind: Engine | Connection, days: int, *, now: datetime | None = None) -> int:
    """Forget the keys created more than ``days`` days before ``now``; returns how many.

    A retry with a forgotten key is a new request, so ``days`` must exceed the longest a
    client may hold an unacknowledged request (an offline terminal's queue).
    """
    if days < 1:
        raise InvalidInput("days", days, "a whole number of days ≥ 1")
    before = (now or datetime.now(UTC)) - timedelta(days=days)
    if isinstance(bind, Connection):
        return store.delete_before(bind, before)
    with bind.begin() as conn:
        return store.delete_before(conn, before)
