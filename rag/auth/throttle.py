"""Wrong-password limiting: after too many failures in a window, sign-in is refused for a while.

Failures are rows of the user store (so they hold across restarts and across
the UI and API processes), counted per user name and per source address:
``max_per_name`` failures for one name, or ``max_per_source`` from one
address, within ``window_s`` seconds refuse further attempts
(:class:`~rag.auth.errors.SignInLimited` with the seconds to wait) until the
oldest of them leaves the window. A successful sign-in clears the name's
failures.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from rag.auth.errors import SignInLimited


@dataclass(frozen=True)
class Throttle:
    max_per_name: int = 5
    max_per_source: int = 20
    window_s: float = 300.0

    def check(self, conn: sqlite3.Connection | None, name: str, source: str, now: float) -> None:
        """Raise SignInLimited if ``name`` (or ``source``) has used up its failures in the window."""
        if conn is None:
            return
        since = now - self.window_s
        waits = []
        for column, value, limit in (("name", name, self.max_per_name), ("source", source, self.max_per_source)):
            if column == "source" and not value:
                continue
            rows = conn.execute(
                f"SELECT at FROM sign_in_failures WHERE {column} = ? AND at > ? ORDER BY at DESC LIMIT ?",
                (value, since, limit),
            ).fetchall()
            if len(rows) >= limit:
                waits.append(rows[-1]["at"] + self.window_s - now)
        if waits:
            raise SignInLimited(max(waits), name)

    def failed(self, conn: sqlite3.Connection, name: str, source: str, now: float) -> None:
        conn.execute("DELETE FROM sign_in_failures WHERE at <= ?", (now - self.window_s,))
        conn.execute("INSERT INTO sign_in_failures (name, source, at) VALUES (?, ?, ?)", (name, source, now))

    def succeeded(self, conn: sqlite3.Connection, name: str) -> None:
        conn.execute("DELETE FROM sign_in_failures WHERE name = ?", (name,))
