"""API keys: ``hrk_<key id>_<secret>``, random, shown once; the store keeps only the key id and a SHA-256 digest.

The key id (12 hex characters, not secret) finds the row; the digest of the
whole key is then compared with :func:`hmac.compare_digest`, in constant
time, so how long a check takes does not depend on how much of a guessed key
is right. A fast hash is enough: the keys carry 256 random bits, nothing a
dictionary could guess (passwords get Argon2id instead, :mod:`.passwords`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "hrk_"
KEY_ID_HEX = 12
_FORMAT = re.compile(rf"{PREFIX}([0-9a-f]{{{KEY_ID_HEX}}})_([A-Za-z0-9_-]{{20,100}})")
_DUMMY_DIGEST = hashlib.sha256(b"no such key").digest()


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key (never the key): id, label, times (epoch seconds, ``None`` = never)."""

    key_id: str
    user: str
    label: str
    created: float
    last_used: float | None
    revoked: float | None

    @property
    def active(self) -> bool:
        return self.revoked is None

    def to_dict(self) -> dict:
        return {**self.__dict__, "active": self.active}


def new_key() -> tuple[str, str, bytes]:
    """A fresh key: (key id, the key to show once, its digest to store)."""
    key_id = secrets.token_hex(KEY_ID_HEX // 2)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return key_id, key, digest(key)


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def key_id_of(key: str) -> str | None:
    """The key id a presented key names, or None if it is not a hoprag key at all."""
    match = _FORMAT.fullmatch(key.strip())
    return match[1] if match else None


def matches(key: str, stored: bytes | None) -> bool:
    """Whether ``key`` is the key whose digest is ``stored`` (None: no such key; the comparison still runs)."""
    return hmac.compare_digest(digest(key), stored if stored is not None else _DUMMY_DIGEST) and stored is not None
