"""Passwords of people who sign in: the policy and argon2id hashing (pure).

Hashing uses argon2-cffi's :class:`argon2.PasswordHasher` with argon2id and OWASP's
recommended minimum (Password Storage Cheat Sheet): 2 passes over 19 MiB, 1 lane, a random
16-byte salt in each hash — about 50 ms on one core, so a sign-in does not tie up a
worker of a small server. A hash carries its own parameters; hashes made with other
parameters are upgraded at the next sign-in (:func:`needs_rehash`). Passwords are never logged, stored or echoed back: errors
name the rule that was broken, not the value.

Policy: 10 to 256 characters (length matters more than character classes, NIST SP
800-63B), no control characters, not the username, not a run of one character.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from geogrid.errors import InvalidInput

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "MAX_PASSWORD_LENGTH",
    "check_password",
    "check_username",
    "hash_password",
    "verify_password",
    "needs_rehash",
    "burn_verify",
]

MIN_PASSWORD_LENGTH: Final = 10
MAX_PASSWORD_LENGTH: Final = 256
_USERNAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-@")

#: argon2id, t=2, m=19 MiB, p=1 (OWASP); argon2-cffi picks argon2id and 16-byte salts
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
#: a hash of a password nobody has: verified against when the username is unknown so a
#: wrong username costs the same time as a wrong password (no user enumeration by timing)
_DUMMY_HASH: Final = _hasher.hash("geogrid: no such account, nothing to find here")


def _refuse(rule: str) -> InvalidInput:
    # the value is never echoed: only the rule
    return InvalidInput("password", "(hidden)", rule, message=f"password refused: {rule}")


def check_password(password: str, username: str | None = None) -> str:
    """``password`` when it meets the policy (see the module notes), else InvalidInput.

    The error message names the rule, never the password.

    >>> check_password("correct horse battery")
    'correct horse battery'
    >>> check_password("short")
    Traceback (most recent call last):
    ...
    geogrid.errors.InvalidInput: password refused: at least 10 characters
    """
    if not isinstance(password, str):
        raise _refuse("a text")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise _refuse(f"at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise _refuse(f"at most {MAX_PASSWORD_LENGTH} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in password):
        raise _refuse("no control characters (tabs, new lines, NUL)")
    if len(set(password)) == 1:
        raise _refuse("not one character repeated")
    if username and password.casefold() == username.casefold():
        raise _refuse("not the username")
    return password


def check_username(username: str) -> str:
    """A username in its stored form (trimmed, lower case), else InvalidInput.

    3 to 64 characters of ``a-z 0-9 . _ - @``.

    >>> check_username(" Li.Mei ")
    'li.mei'
    """
    clean = str(username).strip().lower() if username is not None else ""
    if not 3 <= len(clean) <= 64 or not set(clean) <= _USERNAME_CHARS:
        raise InvalidInput(
            "username", username, "3 to 64 characters of letters, digits, '.', '_', '-', '@'"
        )
    return clean


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (PHC string with its parameters and salt).

    >>> hash_password("correct horse battery").startswith("$argon2id$")
    True
    """
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Does ``password`` match ``stored_hash``? False for no hash or a malformed one.

    >>> h = hash_password("correct horse battery")
    >>> verify_password(h, "correct horse battery"), verify_password(h, "wrong horse")
    (True, False)
    """
    if not stored_hash:
        burn_verify(password)
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Was ``stored_hash`` made with other parameters than today's (upgrade it)?"""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def burn_verify(password: str) -> None:
    """Spend the time of one verification (for an unknown username or a locked account)."""
    try:
        _hasher.verify(_DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        pass
