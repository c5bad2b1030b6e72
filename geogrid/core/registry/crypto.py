"""Encryption at rest of the registry's ID numbers and phones, and their blind indexes.

One master key (32 bytes, from the settings or the key file: see
:mod:`geogrid.services.registry_keys`) gives, through HKDF-SHA256 with a purpose label,
one key to seal values (AES-256-GCM, a random 96-bit nonce per value, stored as
``nonce ‖ ciphertext ‖ tag``) and one key per kind of blind index (HMAC-SHA256 of the
value's normal form), so an equality search needs no decryption and an index of one kind
cannot be compared with another's. Values are normalised before blinding: an ID number
is stripped and upper-cased (``x`` → ``X``), a phone is reduced to its digits.

>>> v = Vault(bytes(range(32)))
>>> sealed = v.seal("11010519491231002X")
>>> len(sealed), v.open(sealed)
(46, '11010519491231002X')
>>> v.seal("13812345678") != v.seal("13812345678")   # random nonces
True
>>> v.blind("id", "11010519491231002x") == v.blind("id", " 11010519491231002X")
True
>>> v.blind("phone", "138-1234-5678") == v.blind("phone", "+86 13812345678")
True
>>> v.blind("id", "13812345678") == v.blind("phone", "13812345678")
False
>>> v.blind_many("id", ["11010519491231002X", None]) == [v.blind("id", "11010519491231002X"), None]
True
>>> Vault(bytes(32)).open(sealed)
Traceback (most recent call last):
...
ValueError: the value cannot be decrypted with this key (wrong key or altered data)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import unicodedata
from collections.abc import Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["BLIND_KINDS", "KEY_BYTES", "NONCE_BYTES", "Vault", "normalise_for_blind"]

#: the kinds of blind index (each with its own derived key)
BLIND_KINDS: Final[tuple[str, ...]] = ("id", "phone")
KEY_BYTES: Final[int] = 32
NONCE_BYTES: Final[int] = 12
_NON_DIGIT = re.compile(r"\D")


def normalise_for_blind(kind: str, value: str) -> str:
    """The normal form of a value before blinding (``id``: NFKC, stripped, upper-case;
    ``phone``: digits only, the ``86`` of a 13-digit number dropped).

    >>> normalise_for_blind("phone", "+86 138-1234-5678"), normalise_for_blind("id", "1x ")
    ('13812345678', '1X')
    """
    if kind == "id":
        return unicodedata.normalize("NFKC", value).strip().upper()
    if kind == "phone":
        digits = _NON_DIGIT.sub("", unicodedata.normalize("NFKC", value))
        if len(digits) == 13 and digits.startswith("86"):
            digits = digits[2:]
        return digits
    raise ValueError(f"unknown blind index kind {kind!r}: one of {', '.join(BLIND_KINDS)}")


def _derive(master: bytes, purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose.encode()
    ).derive(master)


class Vault:
    """Seal/open values and compute blind indexes with keys derived from one master key.

    Picklable (it keeps the master key), so worker processes can seal in parallel.

    Parameters
    ----------
    key : bytes
        The 32-byte master key.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"the registry key must be {KEY_BYTES} bytes, got {len(key)}")
        self._key = bytes(key)
        self._aead = AESGCM(_derive(self._key, "geogrid registry seal v1"))
        self._blind_keys = {
            k: _derive(self._key, f"geogrid registry blind {k} v1") for k in BLIND_KINDS
        }

    def __reduce__(self) -> tuple[type[Vault], tuple[bytes]]:
        return (Vault, (self._key,))

    def __repr__(self) -> str:
        return "Vault(<key>)"

    def seal(self, value: str) -> bytes:
        """AES-256-GCM of the UTF-8 value: ``nonce ‖ ciphertext ‖ tag``."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, value.encode(), None)

    def open(self, sealed: bytes) -> str:
        """The value of :meth:`seal`'s output.

        Raises
        ------
        ValueError
            Wrong key or altered data (the message names no value).
        """
        blob = bytes(sealed)
        try:
            plain = self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], None)
        except InvalidTag:
            raise ValueError(
                "the value cannot be decrypted with this key (wrong key or altered data)"
            ) from None
        return plain.decode()

    def blind(self, kind: str, value: str) -> bytes:
        """HMAC-SHA256 of the value's normal form with the kind's derived key (32 bytes)."""
        return hmac.digest(
            self._blind_keys[kind], normalise_for_blind(kind, value).encode(), hashlib.sha256
        )

    def seal_many(self, values: Sequence[str | None]) -> list[bytes | None]:
        """:meth:`seal` of many values (``None`` stays ``None``); one call for the nonces."""
        return self.seal_bytes([None if v is None else v.encode() for v in values])

    def seal_bytes(self, values: Sequence[bytes | None]) -> list[bytes | None]:
        """:meth:`seal_many` of values already UTF-8 encoded.

        >>> v = Vault(bytes(range(32)))
        >>> [v.open(b) for b in v.seal_bytes([b"13812345678"])], v.seal_bytes([None])
        (['13812345678'], [None])
        """
        n = len(values)
        nonces = os.urandom(NONCE_BYTES * n)
        enc = self._aead.encrypt
        out: list[bytes | None] = []
        append = out.append
        for i, v in enumerate(values):
            if v is None:
                append(None)
                continue
            nonce = nonces[i * NONCE_BYTES : (i + 1) * NONCE_BYTES]
            append(nonce + enc(nonce, v, None))
        return out

    def blind_many(self, kind: str, values: Sequence[str | None]) -> list[bytes | None]:
        """:meth:`blind` of many values ALREADY in their normal form (``None`` stays)."""
        return self.blind_bytes(kind, [None if v is None else v.encode() for v in values])

    def blind_bytes(self, kind: str, values: Sequence[bytes | None]) -> list[bytes | None]:
        """:meth:`blind_many` of values already UTF-8 encoded.

        >>> v = Vault(bytes(range(32)))
        >>> v.blind_bytes("id", [b"11010519491231002X", None]) == v.blind_many(
        ...     "id", ["11010519491231002X", None])
        True
        """
        # HMAC-SHA256 from the precomputed inner and outer SHA-256 states (RFC 2104):
        # the same digest as hmac.digest, without its per-call key setup
        key = self._blind_keys[kind]
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in key.ljust(64, b"\0")))
        outer = hashlib.sha256(bytes(b ^ 0x5C for b in key.ljust(64, b"\0")))
        icopy, ocopy = inner.copy, outer.copy
        out: list[bytes | None] = []
        append = out.append
        for v in values:
            if v is None:
                append(None)
                continue
            i = icopy()
            i.update(v)
            o = ocopy()
            o.update(i.digest())
            append(o.digest())
        return out
