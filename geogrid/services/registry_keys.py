"""The registry's master key and its :class:`~geogrid.core.registry.crypto.Vault`.

The key is ``GEOGRID_REGISTRY_KEY`` (base64 of 32 bytes) when set, else the key file
``<home>/registry.key`` (base64 text), created with mode 0600 and a random key when
missing. Losing the key loses every stored ID number and phone (the blind indexes can no
longer be matched either): back it up apart from the database dumps.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from geogrid.core.registry.crypto import KEY_BYTES, Vault
from geogrid.errors import InvalidInput
from geogrid.settings import Settings

__all__ = ["KEY_FILE", "key_path", "master_key", "vault"]

#: the key file's name under ``settings.home``
KEY_FILE = "registry.key"


def key_path(settings: Settings) -> Path:
    """Where the key file is (or would be)."""
    return Path(settings.home) / KEY_FILE


def _decode(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise InvalidInput(where, "(hidden)", f"base64 of {KEY_BYTES} bytes")
    return key


def master_key(settings: Settings) -> bytes:
    """The 32-byte master key (creating the key file when neither it nor the setting
    exists).

    Raises
    ------
    InvalidInput  the setting or the file does not hold base64 of 32 bytes
    """
    if settings.registry_key is not None and settings.registry_key.get_secret_value():
        return _decode(settings.registry_key.get_secret_value(), "GEOGRID_REGISTRY_KEY")
    path = key_path(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: read theirs
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(base64.b64encode(os.urandom(KEY_BYTES)).decode() + "\n")
    return _decode(path.read_text(), str(path))


def vault(settings: Settings) -> Vault:
    """The registry's vault for these settings."""
    return Vault(master_key(settings))
