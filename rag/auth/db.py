"""The user store's SQLite file (``<data_dir>/users.sqlite3``): schema, WAL mode, one transaction per change.

A connection per call (the store is used from server worker threads and the
Streamlit process at once); WAL lets readers go on while one writer commits,
and a commit is durable and all-or-nothing (crash-consistent).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Iterator

USERS_FILE = "users.sqlite3"
BUSY_TIMEOUT_MS = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS grants (
    name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    kb TEXT NOT NULL,
    PRIMARY KEY (name, kb)
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    label TEXT NOT NULL DEFAULT '',
    digest BLOB NOT NULL,
    created REAL NOT NULL,
    last_used REAL,
    revoked REAL
);
CREATE INDEX IF NOT EXISTS api_keys_by_user ON api_keys(name);
CREATE TABLE IF NOT EXISTS sign_in_failures (
    name TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS failures_by_name ON sign_in_failures(name, at);
CREATE INDEX IF NOT EXISTS failures_by_source ON sign_in_failures(source, at);
"""


class Db:
    """The store file of one data dir; created (with its schema) on the first write."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / USERS_FILE
        self._ready = False

    def exists(self) -> bool:
        return self.path.is_file()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous = FULL")
        if not self._ready:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(SCHEMA)
            self._ready = True
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): committed when the block ends, rolled back if it raises."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection | None]:
        """A connection to read with, or None while no store file exists (nothing to read)."""
        if not self.exists():
            yield None
            return
        with closing(self._connect()) as conn:
            yield conn
