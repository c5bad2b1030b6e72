"""Terminals (the grid worker's phones): enrolment codes, their format, and the refusal
of a revoked device (pure; the workflows are in :mod:`geogrid.services.terminals`).

An admin issues a one-time **enrolment code** for a worker; the phone redeems it once and
gets its own bearer token (an ``account_token`` row linked from ``terminal``), so a
stolen phone is cut off by revoking that device alone.

Codes are 10 characters of Crockford's base-32 alphabet (no I, L, O, U: nothing to
misread on a phone keyboard), shown as two groups of five (``7KQ2M-X9DPA``): 50 random
bits, stored only as a SHA-256 digest, valid for a limited time (a day by default) and
once. Reading is forgiving: case, spaces and dashes are ignored and the look-alikes
``O``/``I``/``L`` read as ``0``/``1``/``1``.
"""

from __future__ import annotations

import hashlib
import io
import secrets
from datetime import datetime, timedelta
from typing import Any

import segno

from geogrid.errors import InvalidInput, Unauthorized

__all__ = [
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "DEFAULT_TTL_MINUTES",
    "MAX_TTL_MINUTES",
    "TOUCH_EVERY",
    "APP_VERSION_HEADER",
    "MAX_LABEL",
    "MAX_APP_VERSION",
    "TerminalRevoked",
    "new_code",
    "format_code",
    "normalize_code",
    "hash_code",
    "check_ttl",
    "check_label",
    "check_app_version",
    "enrol_uri",
    "qr_svg",
    "DEVICE_TOKEN_DAYS",
    "terminal_state",
]

#: Crockford's base 32: digits and letters without I, L, O, U
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: characters of a code (without the dash)
CODE_LENGTH = 10
#: lifetime of a code (minutes) unless told, and the longest allowed (a week)
DEFAULT_TTL_MINUTES = 1440
MAX_TTL_MINUTES = 7 * 1440
#: lifetime of a device's credential (days); revoking the device ends it at once
DEVICE_TOKEN_DAYS = 365
#: last_seen_at / app_version are written at most this often per device
TOUCH_EVERY = timedelta(seconds=60)
#: the request header naming the app's version
APP_VERSION_HEADER = "X-App-Version"
MAX_LABEL = 100
MAX_APP_VERSION = 64

_LOOKALIKE = str.maketrans({"O": "0", "I": "1", "L": "1"})


class TerminalRevoked(Unauthorized):
    """A request made with the credential of a revoked terminal (401,
    ``code: terminal_revoked``)."""

    code = "terminal_revoked"

    def __init__(self, terminal_id: int, revoked_at: datetime | None):
        self.terminal_id = int(terminal_id)
        when = f" at {revoked_at.isoformat(timespec='seconds')}" if revoked_at else ""
        super().__init__(
            f"this terminal was revoked{when} (terminal {terminal_id}): it can no longer "
            "sign in; ask your community admin for a new enrolment code"
        )

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(code=self.code, terminal_id=self.terminal_id)
        return d


def new_code() -> str:
    """A fresh enrolment code (:data:`CODE_LENGTH` characters of :data:`CODE_ALPHABET`).

    >>> c = new_code()
    >>> len(c), set(c) <= set(CODE_ALPHABET)
    (10, True)
    """
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def format_code(code: str) -> str:
    """The code as shown to people: two groups of five.

    >>> format_code("7KQ2MX9DPA")
    '7KQ2M-X9DPA'
    """
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def normalize_code(value: Any, parameter: str = "code") -> str:
    """A typed code in canonical form (upper case, no dashes or spaces, look-alikes read
    as digits), or InvalidInput naming ``parameter``.

    >>> normalize_code(" 7kq2m-x9dpa ")
    '7KQ2MX9DPA'
    >>> normalize_code("7KQ2M X9DPO")
    '7KQ2MX9DP0'
    >>> normalize_code("short")
    Traceback (most recent call last):
    ...
    geogrid.errors.InvalidInput: code='short' is not valid: expected 10 characters of \
0-9 and A-Z without I, L, O, U (dashes and spaces are ignored), e.g. 7KQ2M-X9DPA
    """
    allowed = (
        f"{CODE_LENGTH} characters of 0-9 and A-Z without I, L, O, U (dashes and spaces "
        "are ignored), e.g. 7KQ2M-X9DPA"
    )
    if not isinstance(value, str):
        raise InvalidInput(parameter, value, allowed)
    text = "".join(value.split()).replace("-", "").upper().translate(_LOOKALIKE)
    if len(text) != CODE_LENGTH or not set(text) <= set(CODE_ALPHABET):
        raise InvalidInput(parameter, value[:40], allowed)
    return text


def hash_code(code: str) -> str:
    """SHA-256 hex digest of a canonical code (what the database stores)."""
    return hashlib.sha256(("enrol:" + code).encode("ascii")).hexdigest()


def check_ttl(minutes: Any) -> int:
    """Minutes a code lives: 1 to :data:`MAX_TTL_MINUTES`.

    >>> check_ttl(60)
    60
    """
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise InvalidInput(
            "ttl_minutes", minutes, f"a whole number of minutes, 1 to {MAX_TTL_MINUTES}"
        )
    if not 1 <= minutes <= MAX_TTL_MINUTES:
        raise InvalidInput("ttl_minutes", minutes, f"1 to {MAX_TTL_MINUTES} minutes (a week)")
    return minutes


def _text(value: Any, parameter: str, longest: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(parameter, value, f"text of at most {longest} characters")
    text = " ".join(value.split())
    if len(text) > longest or any(ord(ch) < 32 for ch in text):
        raise InvalidInput(parameter, value[:80], f"printable text of at most {longest} characters")
    return text or None


def check_label(value: Any) -> str | None:
    """A device's label (whitespace folded; None when empty).

    >>> check_label("  李梅的  手机 ")
    '李梅的 手机'
    """
    return _text(value, "label", MAX_LABEL)


def check_app_version(value: Any, parameter: str = "app_version") -> str | None:
    """An app version as sent by the phone (None when empty)."""
    return _text(value, parameter, MAX_APP_VERSION)


def enrol_uri(code: str, base_url: str | None = None) -> str:
    """What the QR code of an enrolment holds: the app's enrolment address with the code
    (``<base>/m/#enrol=<code>``) or, without a base URL, ``geogrid-enrol:<code>``.

    >>> enrol_uri("7KQ2MX9DPA", "https://grid.example.org/")
    'https://grid.example.org/m/#enrol=7KQ2M-X9DPA'
    >>> enrol_uri("7KQ2MX9DPA")
    'geogrid-enrol:7KQ2M-X9DPA'
    """
    shown = format_code(code)
    if base_url:
        return f"{base_url.rstrip('/')}/m/#enrol={shown}"
    return f"geogrid-enrol:{shown}"


def qr_svg(text: str) -> str:
    """An SVG document (UTF-8 text, no XML declaration) of a QR code holding ``text``.

    >>> qr_svg("geogrid-enrol:7KQ2M-X9DPA").startswith("<svg")
    True
    """
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=4, xmldecl=False, svgclass=None)
    return out.getvalue().decode("utf-8")


def terminal_state(revoked_at: datetime | None, token_revoked_at: datetime | None) -> str:
    """``active`` or ``revoked`` (the device, or its token, was revoked).

    >>> terminal_state(None, None)
    'active'
    """
    return "revoked" if revoked_at is not None or token_revoked_at is not None else "active"
