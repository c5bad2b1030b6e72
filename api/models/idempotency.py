"""The ``Idempotency-Key`` request header of every create (see
:mod:`geogrid.services.idempotency`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

from geogrid.services.idempotency import HEADER, MAX_KEY_LENGTH

__all__ = ["IdempotencyKeyHeader", "IDEMPOTENCY_DESCRIPTION"]

#: what the header does, for the OpenAPI document
IDEMPOTENCY_DESCRIPTION = (
    f"a key of the client's choosing (1 to {MAX_KEY_LENGTH} printable ASCII characters, "
    "e.g. a UUID) that makes a retry safe: the same key with the same request returns the "
    "first answer (stored with the record, in the same transaction) instead of creating a "
    "second one; the same key with a different request is refused with 409; a retry sent "
    "while the first is still running waits for its answer. Keys are per account (per "
    "key alone for anonymous Open311 reports)."
)

#: the optional ``Idempotency-Key`` header parameter of a create route
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        description=IDEMPOTENCY_DESCRIPTION,
        examples=["5f0c2a7e-6b1d-4c55-9d3e-0b8e7f1a2c34"],
        max_length=MAX_KEY_LENGTH,
    ),
]
