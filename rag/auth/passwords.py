"""Password hashing: Argon2id from argon2-cffi (memory-hard, salted, parameters kept in the hash string)."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 8


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2-cffi's defaults (RFC 9106 low-memory profile, Argon2id)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash("not a password of anyone")


def check_strength(password: str) -> None:
    """Refuse a password too short to be one (raises ValueError with the rule)."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password needs at least {MIN_LENGTH} characters")


def hash_password(password: str) -> str:
    """The Argon2id hash string to store (never the password)."""
    return _hasher().hash(password)


def verify(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored``; with no stored hash a dummy one is checked (same time taken)."""
    try:
        return _hasher().verify(stored or _dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether ``stored`` was made with other parameters than today's (re-hash it at the next sign-in)."""
    try:
        return _hasher().check_needs_rehash(stored)
    except InvalidHashError:
        return True
