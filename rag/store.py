"""The knowledge-base store: chunks and vectors in Chroma, documents in a manifest.

The manifest (SQLite, one per knowledge base) is the source of truth for which
documents are visible. A document's chunks are written to Chroma while its
manifest row is ``pending``; one SQLite transaction then makes it ``committed``
(and retires the document it replaces), so a query never sees half a document
or a mix of old and new. Queries only return chunks of committed documents.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlparse

import numpy as np

from rag.bm25 import BM25Index, matches
from rag.errors import ConfigError, HopragError, StoreError
from rag.locking import IndexGuard
from rag.models import same_vector_space
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
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL         -- 'generation': bumped whenever the committed set changes
);
INSERT OR IGNORE INTO meta VALUES ('generation', 0);
CREATE TABLE IF NOT EXISTS info (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL            -- 'embed_model': the embedder whose vectors Chroma holds
);
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
    # One resolved path: Chroma caches one client per path string, and two clients on one
    # directory in one process would overwrite each other's index like two processes do.
    return chromadb.PersistentClient(path=str(persist_dir.resolve()), settings=chroma_settings)


def _forget_embedded(persist_dir: Path) -> None:
    """Drop this process's cached embedded client of ``persist_dir`` (its in-memory index is stale)."""
    from chromadb.api.shared_system_client import SharedSystemClient

    # Not stopped: a read in another thread may still use it; it is garbage once no Store holds it.
    SharedSystemClient._identifier_to_system.pop(str(persist_dir.resolve()), None)


class _ChromaErrors:
    """Wraps a Chroma collection so any failure is a StoreError naming the server URL or local path."""

    def __init__(self, inner: Any, where: str) -> None:
        self._inner = inner
        self._where = where

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except HopragError:
                raise
            except Exception as exc:  # chromadb and httpx raise many unrelated types
                hint = "is it running?" if self._where.startswith("Chroma server") else "run  hoprag reindex --check"
                raise StoreError(f"{self._where} failed ({name}: {type(exc).__name__}: {exc}); {hint}") from exc

        return call


class Store:
    """One knowledge base: a Chroma collection plus its document manifest."""

    def __init__(
        self, index_dir: Path, kb: str, chroma_url: str = "", client: Any = None, lock_timeout_s: float = 120.0
    ) -> None:
        self.kb = kb
        self.kb_dir = Path(index_dir) / kb
        self.kb_dir.mkdir(parents=True, exist_ok=True)
        self.chroma_url = chroma_url
        self.lock_timeout_s = lock_timeout_s
        self._persist_dir = Path(index_dir) / "chroma"
        self._embedded = not chroma_url and client is None
        # Writes (and, with the embedded Chroma, reads) hold the guard's lock: see rag.locking.
        # The embedded Chroma is shared by every knowledge base of the data dir, so its lock is too.
        self.guard = IndexGuard.of(Path(index_dir) if self._embedded else self.kb_dir)
        if self._embedded:
            self.guard.on_foreign_write(lambda: _forget_embedded(self._persist_dir))
        # Creating the embedded database is a write too (two first openers race on its tables).
        with self.guard.hold(lock_timeout_s) if self._embedded else contextlib.nullcontext():
            self.client = client or chroma_client(self._persist_dir, chroma_url)
            self._version = self.guard.version
            self._open_collection()
        self._db_path = self.kb_dir / "manifest.sqlite"
        self._local = threading.local()
        manifest_existed = self._db_path.exists()
        try:
            self._db().executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"the manifest {self._db_path} is unreadable ({exc}): rebuild it from the vector store with  "
                f"hoprag reindex --kb {kb}"
            ) from exc
        if not manifest_existed and self._collection.count():
            log.warning(
                "knowledge base %r has chunks in Chroma but its manifest %s was missing, so no document is "
                "visible: run  hoprag reindex --kb %s",
                kb, self._db_path, kb,
            )
        self._bm25: BM25Index | None = None
        self._bm25_lock = threading.Lock()
        self._warned_embedder = False

    def _open_collection(self) -> None:
        where = f"Chroma server {self.chroma_url}" if self.chroma_url else f"embedded Chroma at {self._persist_dir}"
        try:
            # embedding_function=None: hoprag always passes its own vectors, and
            # Chroma's default function would try to download a model.
            inner = self.client.get_or_create_collection(
                name=f"hoprag-{self.kb}", embedding_function=None, metadata={"hnsw:space": "cosine"}
            )
        except Exception as exc:
            raise StoreError(f"cannot open the Chroma collection of knowledge base {self.kb!r} ({where}): {exc}") from exc
        self._collection = _ChromaErrors(inner, where)

    @property
    def collection(self) -> Any:
        """The Chroma collection, reopened first if another process wrote to the embedded index."""
        self.guard.refresh(self.lock_timeout_s)
        if self._version != self.guard.version:
            self._reopen()
        return self._collection

    def _reopen(self) -> None:
        if self._embedded:
            self.client = chroma_client(self._persist_dir)
            self._open_collection()
        self._version = self.guard.version

    @contextmanager
    def locked(self, write: bool = False) -> Iterator[None]:
        """Hold the index lock: always for writes, for reads only with the embedded Chroma (see rag.locking)."""
        if not (write or self._embedded):
            yield
            return
        with self.guard.hold(self.lock_timeout_s, write=write):
            if self._version != self.guard.version:
                self._reopen()
            yield

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

    def embed_model(self) -> str | None:
        """The embedder id whose vectors this knowledge base holds (None before the first ingest)."""
        row = self._db().execute("SELECT value FROM info WHERE key='embed_model'").fetchone()
        return row[0] if row else None

    def check_embedder(self, model_id: str, record: bool = False) -> None:
        """Refuse an embedder whose vectors cannot be compared with the stored ones.

        ``record`` (ingest) writes ``model_id`` down when the knowledge base has none
        or holds no document. The same model on another runtime (float32 vs int8)
        only warns: its vectors are close (cosine about 0.99), not identical.
        """
        stored = self.embed_model()
        if stored == model_id:
            return
        if stored is None or not self.committed_ids():
            if record:
                with self._tx() as db:
                    db.execute("INSERT OR REPLACE INTO info VALUES ('embed_model', ?)", (model_id,))
            return
        if same_vector_space(stored, model_id):
            if not self._warned_embedder:
                self._warned_embedder = True
                log.warning(
                    "knowledge base %r was embedded with %s and is used with %s: the same model on another "
                    "runtime, so retrieval is close but not identical (set HOPRAG_EMBED_BACKEND to match)",
                    self.kb, stored, model_id,
                )
            return
        raise ConfigError(
            f"knowledge base {self.kb!r} holds vectors from embedder {stored!r}, but the configured embedder is "
            f"{model_id!r}: their vectors cannot be compared. Configure the embedder that built it, or ingest "
            f"into a new knowledge base (--kb NAME)"
        )

    # ---- writes ----------------------------------------------------------------
    def add_document(
        self,
        doc: Document,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        replaces: Sequence[str] = (),
    ) -> None:
        """Write ``chunks`` then make ``doc`` visible (and ``replaces`` invisible) atomically."""
        with self.locked(write=True):
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
                _bump(db)
            for old in replaces:
                if old != doc.doc_id:
                    self._purge(old)

    def delete(self, doc_id: str) -> None:
        """Hide ``doc_id`` at once, then remove its chunks."""
        with self.locked(write=True):
            with self._tx() as db:
                if db.execute("UPDATE documents SET status='deleting' WHERE doc_id=?", (doc_id,)).rowcount == 0:
                    raise StoreError(f"no document {doc_id!r} in knowledge base {self.kb!r}")
                _bump(db)
            self._purge(doc_id)

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """Exclusive across processes for batch writers (ingest, reindex) of this knowledge base.

        Held while a writer runs, so :meth:`recover` never mistakes another live
        writer's pending document for a crashed one; the OS drops it when a writer dies.
        """
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; run one writer at a time
            yield
            return
        # Not write.lock: rag.locking's per-write guard may use that file in this same directory.
        with open(self.kb_dir / "ingest.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def recover(self) -> list[str]:
        """Finish what a crash interrupted: drop pending and deleting documents' chunks."""
        with self.locked(write=True):
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
        with self.locked(write=False):
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
        with self.locked(write=False):
            where = {"doc_id": doc_id} if doc_id else {"doc_id": {"$in": self.committed_ids() or ["-"]}}
            res = self.collection.get(where=where, include=["documents", "metadatas"])
            out = [Chunk.from_metadata(i, t or "", m or {}) for i, t, m in zip(res["ids"], res["documents"], res["metadatas"])]
            return sorted(out, key=lambda c: (c.doc_id, c.index))

    # ---- BM25 ----------------------------------------------------------------------
    def generation(self) -> int:
        """A counter bumped by every commit and delete (the BM25 index records the one it saw)."""
        row = self._db().execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    @property
    def bm25_dir(self) -> Path:
        return self.kb_dir / "bm25"

    def rebuild_bm25(self) -> int:
        """Rebuild the BM25 index from the committed chunks in Chroma; returns the chunk count."""
        with self._bm25_lock:
            return len(self._rebuild_bm25().chunks)

    def _rebuild_bm25(self) -> BM25Index:
        db = self._db()
        # One read transaction: the generation and the committed set it stands for.
        db.execute("BEGIN")
        try:
            generation = self.generation()
            visible = self.committed_ids()
        finally:
            db.execute("COMMIT")
        chunks: list[Chunk] = []
        if visible:
            try:
                with self.locked(write=False):
                    res = self.collection.get(where={"doc_id": {"$in": visible}}, include=["documents", "metadatas"])
            except Exception as exc:  # chromadb raises several unrelated types
                raise StoreError(
                    f"cannot rebuild the BM25 index of knowledge base {self.kb!r}: Chroma failed ({exc}); "
                    f"check the Chroma store, then run 'hoprag reindex --kb {self.kb}'"
                ) from exc
            chunks = [
                Chunk.from_metadata(i, t or "", m or {}) for i, t, m in zip(res["ids"], res["documents"], res["metadatas"])
            ]
        index = BM25Index.build(chunks, generation)
        try:
            index.save(self.bm25_dir)
        except OSError as exc:
            log.warning("could not save the BM25 index under %s (%s); it stays in memory", self.bm25_dir, exc)
        log.info("rebuilt BM25 index of %r: %d chunks at generation %d", self.kb, len(chunks), generation)
        self._bm25 = index
        return index

    def bm25_index(self) -> BM25Index:
        """The BM25 index at the current generation: cached, loaded from disk, or rebuilt."""
        generation = self.generation()
        with self._bm25_lock:
            if self._bm25 is not None and self._bm25.generation == generation:
                return self._bm25
            try:
                index = BM25Index.load(self.bm25_dir, generation)
            except Exception as exc:  # a corrupt file: any parse error from json, numpy or bm25s
                log.warning("BM25 index of %r is unreadable (%s: %s); rebuilding it", self.kb, type(exc).__name__, exc)
                index = None
            if index is None:
                return self._rebuild_bm25()
            self._bm25 = index
            return index

    def bm25_search(self, query: str, k: int, where: dict[str, Any] | None = None) -> list[Hit]:
        """Top-``k`` chunks of committed documents by BM25 score (``origin='bm25'``).

        ``where`` is a Chroma-style metadata clause (as built by ``Filters.where()``).
        """
        index = self.bm25_index()
        visible = set(self.committed_ids())
        try:
            found = index.search(query, k, lambda c: c.doc_id in visible and matches(where, c.metadata()))
        except ValueError as exc:
            raise StoreError(f"bad BM25 filter {where!r}: {exc}") from exc
        return [Hit(chunk, score=score, rank=rank, origin="bm25") for rank, (chunk, score) in enumerate(found)]

    def count(self) -> int:
        return int(self.collection.count())

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _bump(db: sqlite3.Connection) -> None:
    db.execute("UPDATE meta SET value = value + 1 WHERE key='generation'")


def now() -> float:
    return time.time()
