"""Rules of credentials other than passwords (pure): token lifetimes, browser sessions
and their CSRF tokens, and the sign-in lock-out.

Tokens (for machines and the worker's devices) are random, shown once and stored as a
SHA-256 digest (:mod:`geogrid.core.accounts`); each has an expiry (default
:data:`DEFAULT_TOKEN_DAYS`) and can be revoked or rotated. A browser session id is random
too, sent only in an HttpOnly cookie and stored as its digest. The session's CSRF token is
derived from the session id with HMAC-SHA256, so the page can ask for it again after a
reload (``GET /session``) while a cross-site page can neither read the cookie nor compute
the token (double submit with a derived token).

Lock-out: after :data:`MAX_FAILED_LOGINS` wrong passwords in a row, sign-in is refused for
:data:`LOCKOUT` (tokens keep working; an admin can unlock at once).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Final

from geogrid.errors import InvalidInput

__all__ = [
    "DEFAULT_TOKEN_DAYS",
    "MAX_TOKEN_DAYS",
    "SESSION_LIFETIME",
    "MAX_FAILED_LOGINS",
    "LOCKOUT",
    "SESSION_COOKIE",
    "CSRF_HEADER",
    "token_expiry",
    "token_state",
    "new_session_id",
    "hash_secret",
    "csrf_token_for",
    "csrf_matches",
    "lock_after_failure",
    "seconds_locked",
]

DEFAULT_TOKEN_DAYS: Final = 90
MAX_TOKEN_DAYS: Final = 3650
SESSION_LIFETIME: Final = timedelta(hours=12)
MAX_FAILED_LOGINS: Final = 5
LOCKOUT: Final = timedelta(minutes=15)
#: the name of the session cookie and of the CSRF header the page sends on writes
SESSION_COOKIE: Final = "geogrid_session"
CSRF_HEADER: Final = "X-CSRF-Token"
_CSRF_CONTEXT: Final = b"geogrid csrf v1"


def token_expiry(now: datetime, days: float | None = DEFAULT_TOKEN_DAYS) -> datetime:
    """When a token issued at ``now`` for ``days`` days expires (0 days: at once).

    >>> from datetime import timezone
    >>> token_expiry(datetime(2026, 3, 1, tzinfo=timezone.utc), 90).date().isoformat()
    '2026-05-30'
    """
    d = DEFAULT_TOKEN_DAYS if days is None else days
    if not (0 <= float(d) <= MAX_TOKEN_DAYS):
        raise InvalidInput("days", days, f"a number of days from 0 to {MAX_TOKEN_DAYS}")
    return now + timedelta(days=float(d))


def token_state(expires_at: datetime | None, revoked_at: datetime | None, now: datetime) -> str:
    """``active``, ``expired`` or ``revoked`` (revocation wins).

    >>> from datetime import timezone
    >>> t0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
    >>> token_state(t0, None, t0), token_state(t0 + timedelta(1), None, t0)
    ('expired', 'active')
    """
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and expires_at <= now:
        return "expired"
    return "active"


def new_session_id() -> str:
    """A fresh session id (43 URL-safe characters, 256 random bits)."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 hex digest of a random secret (a session id, a CSRF token).

    >>> len(hash_secret("x"))
    64
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def csrf_token_for(session_id: str) -> str:
    """The CSRF token of a session (HMAC-SHA256 of a fixed context keyed by the session id).

    >>> csrf_token_for("abc") == csrf_token_for("abc") != csrf_token_for("abd")
    True
    """
    mac = hmac.new(session_id.encode("utf-8"), _CSRF_CONTEXT, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def csrf_matches(session_id: str, sent: str | None) -> bool:
    """Constant-time check of a CSRF header against the session's token."""
    if not sent:
        return False
    return hmac.compare_digest(csrf_token_for(session_id).encode(), sent.encode("utf-8"))


def lock_after_failure(failed_logins: int, now: datetime) -> datetime | None:
    """``locked_until`` after the ``failed_logins``-th failure in a row (None: not yet).

    >>> from datetime import timezone
    >>> t0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
    >>> lock_after_failure(4, t0) is None, lock_after_failure(5, t0) == t0 + LOCKOUT
    (True, True)
    """
    return now + LOCKOUT if failed_logins >= MAX_FAILED_LOGINS else None


def seconds_locked(locked_until: datetime | None, now: datetime) -> int:
    """Whole seconds until sign-in is allowed again (0 when not locked).

    >>> from datetime import timezone
    >>> t0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
    >>> seconds_locked(t0 + timedelta(seconds=90.2), t0), seconds_locked(t0, t0)
    (91, 0)
    """
    if locked_until is None or locked_until <= now:
        return 0
    return int(-(-(locked_until - now).total_seconds() // 1))
