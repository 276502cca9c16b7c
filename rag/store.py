"""The knowledge-base store: chunks and vectors in Chroma, documents in a manifest.

The manifest (SQLite, one per knowledge base) is the source of truth for which
documents are visible. A document's chunks are written to Chroma while its
manifest row is ``pending``; one SQLite transaction then makes it ``committed``
(and retires the document it replaces), so a query never sees half a document
or a mix of old and new. Queries only return chunks of committed documents.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlparse

import numpy as np

from rag.errors import StoreError
from rag.types import Chunk, Document, Hit

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    pages INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    added REAL NOT NULL,
    status TEXT NOT NULL,          -- pending | committed | deleting
    replaces TEXT                  -- doc_id this one supersedes on commit
);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
"""


def chroma_client(persist_dir: Path, url: str = ""):
    """A Chroma client: HTTP when ``url`` is set, else embedded under ``persist_dir``."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if url:
        parsed = urlparse(url if "://" in url else f"http://{url}")
        try:
            client = chromadb.HttpClient(
                host=parsed.hostname or "127.0.0.1",
                port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                ssl=parsed.scheme == "https",
                settings=chroma_settings,
            )
            client.heartbeat()
        except Exception as exc:  # chromadb raises several unrelated types here
            raise StoreError(
                f"Chroma server {url} is unreachable: start it (chroma run --host 127.0.0.1) "
                f"or unset HOPRAG_CHROMA_URL ({type(exc).__name__}: {exc})"
            ) from exc
        return client
    persist_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(persist_dir), settings=chroma_settings)


class Store:
    """One knowledge base: a Chroma collection plus its document manifest."""

    def __init__(self, index_dir: Path, kb: str, chroma_url: str = "", client: Any = None) -> None:
        self.kb = kb
        self.kb_dir = Path(index_dir) / kb
        self.kb_dir.mkdir(parents=True, exist_ok=True)
        self.client = client or chroma_client(Path(index_dir) / "chroma", chroma_url)
        self.chroma_url = chroma_url
        try:
            # embedding_function=None: hoprag always passes its own vectors, and
            # Chroma's default function would try to download a model.
            self.collection = self.client.get_or_create_collection(
                name=f"hoprag-{kb}", embedding_function=None, metadata={"hnsw:space": "cosine"}
            )
        except Exception as exc:
            raise StoreError(f"cannot open Chroma collection for knowledge base {kb!r}: {exc}") from exc
        self._db_path = self.kb_dir / "manifest.sqlite"
        self._local = threading.local()
        self._db().executescript(_SCHEMA)

    # ---- manifest ------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._db_path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        else:
            db.execute("COMMIT")

    def documents(self, include_pending: bool = False) -> list[Document]:
        """Documents visible to queries (committed), oldest first."""
        sql = "SELECT doc_id, source, title, pages, chunks, added FROM documents"
        sql += "" if include_pending else " WHERE status = 'committed'"
        rows = self._db().execute(sql + " ORDER BY added, source").fetchall()
        return [Document(*row) for row in rows]

    def committed_ids(self) -> list[str]:
        return [r[0] for r in self._db().execute("SELECT doc_id FROM documents WHERE status='committed'")]

    def status(self, doc_id: str) -> str | None:
        row = self._db().execute("SELECT status FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        return row[0] if row else None

    def by_source(self, source: str) -> list[Document]:
        rows = self._db().execute(
            "SELECT doc_id, source, title, pages, chunks, added FROM documents WHERE source=? AND status='committed'",
            (source,),
        ).fetchall()
        return [Document(*row) for row in rows]

    def resolve(self, ref: str) -> Document:
        """A document by id, id prefix (≥ 6 chars) or source path/name."""
        docs = self.documents()
        exact = [d for d in docs if d.doc_id == ref or d.source == ref]
        matches = exact or [
            d for d in docs if (len(ref) >= 6 and d.doc_id.startswith(ref)) or Path(d.source).name == ref
        ]
        if len(matches) != 1:
            raise StoreError(
                f"no document matches {ref!r} in knowledge base {self.kb!r}; run 'hoprag docs' to list them"
                if not matches
                else f"{ref!r} matches {len(matches)} documents; use the document id"
            )
        return matches[0]

    # ---- writes ----------------------------------------------------------------
    def add_document(
        self,
        doc: Document,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        replaces: Sequence[str] = (),
    ) -> None:
        """Write ``chunks`` then make ``doc`` visible (and ``replaces`` invisible) atomically."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO documents VALUES (?,?,?,?,?,?,'pending',?)",
                (doc.doc_id, doc.source, doc.title, doc.pages, doc.chunks, doc.added, ",".join(replaces)),
            )
        self._upsert(chunks, vectors)
        with self._tx() as db:
            db.execute("UPDATE documents SET status='committed', replaces=NULL WHERE doc_id=?", (doc.doc_id,))
            for old in replaces:
                if old != doc.doc_id:
                    db.execute("UPDATE documents SET status='deleting' WHERE doc_id=?", (old,))
        for old in replaces:
            if old != doc.doc_id:
                self._purge(old)

    def delete(self, doc_id: str) -> None:
        """Hide ``doc_id`` at once, then remove its chunks."""
        with self._tx() as db:
            if db.execute("UPDATE documents SET status='deleting' WHERE doc_id=?", (doc_id,)).rowcount == 0:
                raise StoreError(f"no document {doc_id!r} in knowledge base {self.kb!r}")
        self._purge(doc_id)

    def recover(self) -> list[str]:
        """Finish what a crash interrupted: drop pending and deleting documents' chunks."""
        rows = self._db().execute("SELECT doc_id FROM documents WHERE status IN ('pending','deleting')").fetchall()
        for (doc_id,) in rows:
            self._purge(doc_id)
        return [r[0] for r in rows]

    def _upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        batch = max(1, min(1000, int(getattr(self.client, "get_max_batch_size", lambda: 1000)())))
        for start in range(0, len(chunks), batch):
            part = chunks[start : start + batch]
            self.collection.upsert(
                ids=[c.id for c in part],
                documents=[c.text for c in part],
                metadatas=[c.metadata() for c in part],
                embeddings=np.asarray(vectors[start : start + batch], dtype=np.float32),
            )

    def _purge(self, doc_id: str) -> None:
        self.collection.delete(where={"doc_id": doc_id})
        with self._tx() as db:
            db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))

    # ---- reads -------------------------------------------------------------------
    def query(self, vector: np.ndarray, k: int, where: dict[str, Any] | None = None) -> list[Hit]:
        """Top-``k`` chunks of committed documents by cosine similarity."""
        visible = self.committed_ids()
        if not visible:
            return []
        clause: dict[str, Any] = {"doc_id": {"$in": visible}}
        if where:
            clause = {"$and": [clause, where]}
        n = min(k, max(self.collection.count(), 1))
        res = self.collection.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=n,
            where=clause,
            include=["documents", "metadatas", "distances"],
        )
        hits = []
        for rank, (cid, text, meta, dist) in enumerate(
            zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0])
        ):
            hits.append(Hit(Chunk.from_metadata(cid, text or "", meta or {}), score=1.0 - float(dist), rank=rank))
        return hits

    def chunks(self, doc_id: str | None = None) -> list[Chunk]:
        """All chunks (of one document, or of every committed document)."""
        where = {"doc_id": doc_id} if doc_id else {"doc_id": {"$in": self.committed_ids() or ["-"]}}
        res = self.collection.get(where=where, include=["documents", "metadatas"])
        out = [Chunk.from_metadata(i, t or "", m or {}) for i, t, m in zip(res["ids"], res["documents"], res["metadatas"])]
        return sorted(out, key=lambda c: (c.doc_id, c.index))

    def count(self) -> int:
        return int(self.collection.count())

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def now() -> float:
    return time.time()
