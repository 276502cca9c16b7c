"""The saved-conversation store: one SQLite file (WAL) in the data dir for every knowledge base.

Two tables: ``conversations`` (id, title, kb, owner, created, updated, turns)
and ``turns`` (conversation_id, n, question, answer JSON, settings JSON, trace
JSON, created). A turn is written in one transaction once its answer is
finished (the conversation row is created in that same transaction), so a
process killed mid-answer leaves no half turn and no empty conversation.
The sidebar's list is one indexed query on (owner, kb, updated) per page.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from rag.errors import ConfigError, StoreError

FILENAME = "conversations.sqlite3"
TITLE_CHARS = 60  # a new conversation is titled with its first question, cut at a word to this length
MAX_TITLE_CHARS = 200
MAX_ID_CHARS = 200

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    kb TEXT NOT NULL,
    owner TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    turns INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS conversations_by_owner ON conversations (owner, kb, updated DESC);
CREATE TABLE IF NOT EXISTS turns (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    n INTEGER NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    settings TEXT NOT NULL,
    trace TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (conversation_id, n)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class ConversationInfo:
    """One saved conversation, as the list shows it."""

    id: str
    title: str
    kb: str
    owner: str
    created: float
    updated: float
    turns: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class StoredTurn:
    """One finished turn as stored: the answer, settings and trace are JSON objects."""

    n: int
    question: str
    answer: dict[str, Any]
    settings: dict[str, Any]
    trace: dict[str, Any]
    created: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def title_from(question: str) -> str:
    """A conversation title from its first question: one line, cut at a word boundary."""
    text = " ".join(question.split())
    if len(text) <= TITLE_CHARS:
        return text or "Untitled"
    cut = text[:TITLE_CHARS].rsplit(" ", 1)[0]
    return (cut if len(cut) >= TITLE_CHARS // 2 else text[:TITLE_CHARS]).rstrip(" ,;:.") + "…"


def check_id(conversation_id: str) -> str:
    if not isinstance(conversation_id, str) or not conversation_id.strip() or len(conversation_id) > MAX_ID_CHARS:
        raise ConfigError(
            f"conversation id {conversation_id!r} is not valid: use 1 to {MAX_ID_CHARS} characters, e.g. a UUID"
        )
    return conversation_id.strip()


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class ConversationStore:
    """Saved conversations in ``<data_dir>/conversations.sqlite3`` (thread-safe; several processes may share it)."""

    def __init__(self, path: str | Path, *, timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a committed turn survives a crash
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"the conversation store {self.path} cannot be opened: {exc}; check the data_dir "
                             "setting and that the file is a hoprag conversation store") from exc
        self._lock = threading.Lock()

    @classmethod
    def in_data_dir(cls, data_dir: str | Path) -> "ConversationStore":
        return cls(Path(data_dir) / FILENAME)

    # ---- reading -------------------------------------------------------------------
    def _rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"the conversation store {self.path} cannot be read: {exc}") from exc

    def list(
        self, *, owner: str | None = None, kb: str | None = None, query: str = "", offset: int = 0, limit: int = 20
    ) -> list[ConversationInfo]:
        """Conversations, most recently updated first; ``None`` owner/kb: any; ``query``: in the title."""
        where, args = [], []
        if owner is not None:
            where.append("owner = ?")
            args.append(owner)
        if kb is not None:
            where.append("kb = ?")
            args.append(kb)
        if query.strip():
            where.append("title LIKE ? ESCAPE '\\'")
            args.append(_like(query.strip()))
        sql = "SELECT id, title, kb, owner, created, updated, turns FROM conversations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY updated DESC, id LIMIT ? OFFSET ?"
        return [ConversationInfo(*r) for r in self._rows(sql, (*args, max(0, limit), max(0, offset)))]

    def info(self, conversation_id: str) -> ConversationInfo | None:
        rows = self._rows("SELECT id, title, kb, owner, created, updated, turns FROM conversations WHERE id = ?",
                          (conversation_id,))
        return ConversationInfo(*rows[0]) if rows else None

    def turns(self, conversation_id: str, last: int | None = None) -> list[StoredTurn]:
        """The turns in order (only the ``last`` ones if given)."""
        sql = "SELECT n, question, answer, settings, trace, created FROM turns WHERE conversation_id = ?"
        if last is None:
            rows = self._rows(sql + " ORDER BY n", (conversation_id,))
        else:
            rows = self._rows(sql + " ORDER BY n DESC LIMIT ?", (conversation_id, max(0, last)))[::-1]
        return [StoredTurn(n, q, json.loads(a), json.loads(s), json.loads(t), c) for n, q, a, s, t, c in rows]

    # ---- writing -------------------------------------------------------------------
    def _write(self, statements: Iterator[tuple[str, tuple]] | list[tuple[str, tuple]]) -> list[int]:
        """Run ``statements`` in one IMMEDIATE transaction; their row counts."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    counts = [self._db.execute(sql, args).rowcount for sql, args in statements]
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return counts
            except sqlite3.Error as exc:
                raise StoreError(f"the conversation store {self.path} cannot be written: {exc}; check free disk "
                                 "space and the data_dir permissions") from exc

    def append(
        self,
        conversation_id: str,
        *,
        kb: str,
        owner: str,
        question: str,
        answer: dict[str, Any],
        settings: dict[str, Any],
        trace: dict[str, Any],
        title: str | None = None,
        created: float | None = None,
    ) -> int:
        """Add one finished turn (creating the conversation if new) in one transaction; returns its number."""
        now = time.time() if created is None else created
        payload = (json.dumps(answer), json.dumps(settings, default=str), json.dumps(trace, default=str))
        self._write([
            ("INSERT OR IGNORE INTO conversations (id, title, kb, owner, created, updated, turns) "
             "VALUES (?, ?, ?, ?, ?, ?, 0)", (conversation_id, title or title_from(question), kb, owner, now, now)),
            ("INSERT INTO turns (conversation_id, n, question, answer, settings, trace, created) "
             "SELECT ?, coalesce(max(n), 0) + 1, ?, ?, ?, ?, ? FROM turns WHERE conversation_id = ?",
             (conversation_id, question, *payload, now, conversation_id)),
            ("UPDATE conversations SET updated = max(updated, ?), turns = turns + 1 WHERE id = ?",
             (now, conversation_id)),
        ])
        info = self.info(conversation_id)
        return info.turns if info else 0

    def insert(self, info: ConversationInfo, turns: list[StoredTurn]) -> None:
        """Add a whole conversation (an import) in one transaction; an existing id is refused."""
        if self.info(info.id) is not None:
            raise StoreError(f"conversation {info.id!r} already exists: delete it first or import under a new id")
        self._write([
            ("INSERT INTO conversations (id, title, kb, owner, created, updated, turns) VALUES (?, ?, ?, ?, ?, ?, ?)",
             (info.id, info.title, info.kb, info.owner, info.created, info.updated, len(turns))),
            *(("INSERT INTO turns (conversation_id, n, question, answer, settings, trace, created) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)",
               (info.id, i, t.question, json.dumps(t.answer), json.dumps(t.settings, default=str),
                json.dumps(t.trace, default=str), t.created)) for i, t in enumerate(turns, 1)),
        ])

    def rename(self, conversation_id: str, title: str) -> None:
        title = " ".join(title.split())[:MAX_TITLE_CHARS]
        if not title:
            raise ConfigError("the new title is empty: type a title")
        if not self._write([("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))])[0]:
            raise StoreError(f"no conversation {conversation_id!r}: list them with hoprag conversations list")

    def delete(self, conversation_id: str) -> None:
        counts = self._write([
            ("DELETE FROM turns WHERE conversation_id = ?", (conversation_id,)),
            ("DELETE FROM conversations WHERE id = ?", (conversation_id,)),
        ])
        if not counts[1]:
            raise StoreError(f"no conversation {conversation_id!r}: list them with hoprag conversations list")

    def count(self, *, owner: str | None = None) -> int:
        if owner is None:
            return self._rows("SELECT count(*) FROM conversations")[0][0]
        return self._rows("SELECT count(*) FROM conversations WHERE owner = ?", (owner,))[0][0]

    def integrity(self) -> str:
        """``ok`` or SQLite's list of problems."""
        return "\n".join(r[0] for r in self._rows("PRAGMA integrity_check"))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "ConversationStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
