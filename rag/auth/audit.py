"""The audit log: who did what, when, from where; append-only JSON lines in ``<data_dir>/audit.jsonl``.

One record per line: ``{"time": ISO-8601 UTC, "actor", "action", "target",
"source", ...extra}``. An append is one ``write`` on a file opened with
``O_APPEND`` under a file lock (several processes write it), followed by
``fsync``: a record is on disk when :meth:`Audit.record` returns, and a crash
leaves at most one torn last line, which :meth:`Audit.read` skips.

Actions recorded: ``user_add``, ``user_remove``, ``role_set``, ``password_set``,
``grant``, ``revoke``, ``key_new``, ``key_revoke``, ``sign_in``,
``sign_in_failed``, ``sign_in_limited`` (:mod:`rag.auth.users`); ``ingest``,
``document_delete``, ``kb_create``, ``kb_delete`` (:mod:`rag.server`).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock

AUDIT_FILE = "audit.jsonl"
LOCK_TIMEOUT_S = 30


def _now() -> datetime:
    return datetime.now(timezone.utc)


def parse_since(value: datetime | str | float | None) -> datetime | None:
    """A lower time bound: a datetime, epoch seconds, an ISO date/time, or a span back from now (``90m``, ``24h``,
    ``7d``). Raises ValueError for anything else."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    text = value.strip()
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    if text[:-1].isdigit() and text[-1:] in units:
        return _now() - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--since {value!r} is not a time: use an ISO date or time (2026-11-29, 2026-11-29T10:00) or a span "
            "back from now (30m, 24h, 7d)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


class Audit:
    """The audit log of one data dir."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / AUDIT_FILE
        self._lock = FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT_S)

    def record(self, actor: str, action: str, target: str = "", source: str = "", **extra: Any) -> dict[str, Any]:
        """Append one record (durable when this returns) and return it."""
        entry = {"time": _now().isoformat(timespec="milliseconds").replace("+00:00", "Z"), "actor": actor or "",
                 "action": action, "target": target or "", "source": source or "", **extra}
        line = (json.dumps(entry, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        return entry

    def read(
        self,
        since: datetime | str | float | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """The records, oldest first, at or after ``since`` (see :func:`parse_since`), of ``actor`` and ``action``
        if given; ``limit``: only the last that many."""
        if not self.path.is_file():
            return []
        start = parse_since(since)
        out: list[dict[str, Any]] = []
        with open(self.path, "rb") as f:
            for raw in f:
                try:
                    entry = json.loads(raw)
                except ValueError:
                    continue  # a torn last line (crash mid-append)
                if not isinstance(entry, dict):
                    continue
                if actor is not None and entry.get("actor") != actor:
                    continue
                if action is not None and entry.get("action") != action:
                    continue
                if start is not None:
                    try:
                        when = datetime.fromisoformat(str(entry.get("time", "")).replace("Z", "+00:00"))
                    except ValueError:
                        continue
                    if when < start:
                        continue
                out.append(entry)
        return out[-limit:] if limit else out
