"""The errors of :mod:`rag.auth`: one line each, saying what to do."""

from __future__ import annotations

import math

from rag.errors import HopragError


class AuthError(HopragError):
    """A user-management request that cannot be done (unknown user, bad role or name, last admin...)."""


class SignInLimited(HopragError):
    """Too many wrong passwords lately: sign-in is refused for ``retry_after_s`` seconds."""

    def __init__(self, retry_after_s: float, who: str = "") -> None:
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        target = f" for {who!r}" if who else ""
        super().__init__(f"too many wrong passwords{target}: try again in {self.retry_after_s} s")
