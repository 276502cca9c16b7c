"""A persistent embedding cache keyed by (model id, SHA-256 of the embedded text).

Unchanged chunks of a changed file, or the same text in another knowledge base,
are never embedded twice. Vectors are float32 blobs in one SQLite file.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from rag.embed.base import Embedder
from rag.errors import IngestError

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL,
    key TEXT NOT NULL,
    vec BLOB NOT NULL,
    PRIMARY KEY (model, key)
) WITHOUT ROWID;
"""


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Vectors of one embedder model, looked up by text hash."""

    def __init__(self, path: Path, model_id: str) -> None:
        self.path = Path(path)
        self.model_id = model_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._db().executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            # A lost cache write only costs a re-embedding, so skip the fsync per commit.
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def get(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        db = self._db()
        for start in range(0, len(keys), 500):
            part = list(keys[start : start + 500])
            marks = ",".join("?" * len(part))
            rows = db.execute(
                f"SELECT key, vec FROM vectors WHERE model=? AND key IN ({marks})", [self.model_id, *part]
            ).fetchall()
            out.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        return out

    def put(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        with self._db() as db:
            db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?,?,?)",
                [(self.model_id, k, v.tobytes()) for k, v in zip(keys, vectors)],
            )

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class CacheLookup:
    """One document's texts split into vectors the cache has and texts still to embed (each distinct text once)."""

    def __init__(self, cache: EmbeddingCache | None, texts: Sequence[str]) -> None:
        self.cache = cache
        self.keys = [text_key(t) for t in texts]
        self.known = cache.get(self.keys) if cache is not None else {}
        self.missing: dict[str, str] = {}
        for key, text in zip(self.keys, texts):
            if key not in self.known and key not in self.missing:
                self.missing[key] = text
        self.hits = sum(1 for k in self.keys if k in self.known)

    @property
    def to_embed(self) -> list[str]:
        return list(self.missing.values())

    def complete(self, new: np.ndarray | None) -> np.ndarray:
        """All vectors in input order, given the vectors of :attr:`to_embed` (cached for next time)."""
        if self.missing:
            new = np.asarray(new, dtype=np.float32)
            if len(new) != len(self.missing):
                raise IngestError(f"the embedder returned {len(new)} vectors for {len(self.missing)} texts")
            if self.cache is not None:
                self.cache.put(list(self.missing), new)
            self.known.update(zip(self.missing, new))
        return np.stack([self.known[k] for k in self.keys]).astype(np.float32, copy=False)


def embed_cached(
    embedder: Embedder,
    cache: EmbeddingCache | None,
    texts: Sequence[str],
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Vectors for ``texts`` and how many came from the cache (duplicates are embedded once)."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32), 0
    lookup = CacheLookup(cache, texts)
    new = None
    if lookup.missing:
        new = embedder.embed(lookup.to_embed, progress=progress)
    elif progress:
        progress(len(texts), len(texts))
    return lookup.complete(new), lookup.hits
