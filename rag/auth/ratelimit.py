"""The API's per-key request limit (setting ``rate_limit_per_minute``): a moving window from the ``limits`` library.

In memory, per server process: a limit protects the machine from one client,
it is not a quota (a restart forgets the window).
"""

from __future__ import annotations

import time

from rag.extras import require

require("limits", "api")

from limits import RateLimitItemPerMinute  # noqa: E402
from limits.storage import MemoryStorage  # noqa: E402
from limits.strategies import MovingWindowRateLimiter  # noqa: E402


class KeyRateLimit:
    """At most ``per_minute`` requests per identity in any 60 s (0: no limit)."""

    def __init__(self, per_minute: int) -> None:
        self.item = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, identity: str) -> float | None:
        """Count one request of ``identity``: None if allowed, else the seconds until it would be."""
        if self.item is None or self.limiter.hit(self.item, "hoprag-api", identity):
            return None
        reset, _ = self.limiter.get_window_stats(self.item, "hoprag-api", identity)
        return max(1.0, reset - time.time())
