"""The knowledge-base store: the manifest, the vector store and the lexical index of one knowledge base, under one lock.

A document's chunks are written to the vector store while its manifest row is
``pending``; one manifest transaction then makes it ``committed`` (and retires
the document it replaces), so a query never sees half a document or a mix of old
and new. Queries only return chunks of committed documents. Each part lives in
its own module: :mod:`rag.store.manifest`, :mod:`rag.store.vectors`,
:mod:`rag.store.lexical`, :mod:`rag.store.locking`; file names in
:mod:`rag.store.layout`. With a Chroma server the manifest is the document
registry in the server (:mod:`rag.store.registry`), shared by every process
that uses the server; the lexical index stays local and follows its generation.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from rag.errors import ConfigError, StoreError
from rag.models import same_vector_space
from rag.store.layout import Layout
from rag.store.lexical import BM25Index, LexicalIndex, matches
from rag.store.locking import FileMutex, IndexGuard
from rag.store.manifest import DocumentManifest, Manifest
from rag.store.registry import ChromaManifest, is_server_client
from rag.store.names import NameView, sync_names
from rag.store.vectors import VectorStore, reload_embedded
from rag.types import Chunk, Document, Hit

log = logging.getLogger(__name__)


class Store:
    """One knowledge base: its documents (:attr:`manifest`), chunks and vectors (:attr:`vectors`) and BM25 index
    (:attr:`lexical`). Hold :meth:`locked` to use the parts directly."""

    def __init__(
        self,
        index_dir: Path,
        kb: str,
        chroma_url: str = "",
        client: Any = None,
        lock_timeout_s: float = 120.0,
        hnsw: Mapping[str, int] | None = None,
    ) -> None:
        self.kb = kb
        self.layout = Layout(Path(index_dir), kb)
        self.kb_dir = self.layout.kb_dir
        self.kb_dir.mkdir(parents=True, exist_ok=True)
        self.chroma_url = chroma_url
        self.lock_timeout_s = lock_timeout_s
        self._embedded = not chroma_url and client is None
        # Writes (and, with the embedded Chroma, reads) hold the guard's lock: see rag.store.locking.
        # The embedded Chroma is shared by every knowledge base of the data dir, so its lock is too.
        self.guard = IndexGuard.of(self.layout.lock_dir(shared_embedded=self._embedded))
        self._writer = FileMutex(self.layout.writer_lock)
        if self._embedded:
            self.guard.on_foreign_write(partial(reload_embedded, self.layout.chroma_dir))
        # Creating the embedded database is a write too (two first openers race on its tables).
        with self.guard.hold(lock_timeout_s) if self._embedded else contextlib.nullcontext():
            self.vectors = VectorStore(kb, self.layout.chroma_dir, chroma_url, client, hnsw)
            self._version = self.guard.version
        self.manifest: DocumentManifest
        if chroma_url or (client is not None and is_server_client(client)):
            site = f"{socket.gethostname()}:{self.kb_dir.resolve()}"
            self.manifest = ChromaManifest(self.vectors.client, kb, self.vectors.where, site, self.layout.manifest)
        else:
            self.manifest = Manifest(self.layout.manifest, kb)
        if not self.manifest.existed and self.vectors.count():
            log.warning(
                "knowledge base %r has chunks in Chroma but its manifest %s was missing, so no document is "
                "visible: run  hoprag reindex --kb %s",
                kb, self.manifest.where, kb,
            )
        self.lexical = LexicalIndex(
            self.layout.lexical, self.layout.bm25_dir, kb, self.manifest.snapshot, self._fetch_chunks
        )
        self._warned_embedder = False

    @classmethod
    def from_settings(cls, settings: Any) -> "Store":
        """The store of ``settings.kb`` under ``settings.index_dir`` (or its Chroma server), with the
        settings' lock timeout and HNSW graph."""
        from rag.store.vectors import hnsw_configuration

        return cls(settings.index_dir, settings.kb, settings.chroma_url, lock_timeout_s=settings.lock_timeout_s,
                   hnsw=hnsw_configuration(settings))

    @property
    def client(self) -> Any:
        """The Chroma client (pass it to another Store to share it)."""
        return self.vectors.client

    @property
    def collection(self) -> Any:
        """The Chroma collection, reopened first if another process wrote to the embedded index."""
        self._current()
        return self.vectors.collection

    def _current(self) -> None:
        self.guard.refresh(self.lock_timeout_s)
        if self._version != self.guard.version:
            self._reopen()

    def _reopen(self) -> None:
        self.vectors.reopen()
        self._version = self.guard.version

    @contextmanager
    def locked(self, write: bool = False) -> Iterator[None]:
        """Hold the index lock: always for writes, for reads only with the embedded Chroma (see rag.store.locking)."""
        if not (write or self._embedded):
            yield
            return
        with self.guard.hold(self.lock_timeout_s, write=write):
            if self._version != self.guard.version:
                self._reopen()
            yield

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """Exclusive across threads and processes for batch writers (ingest, reindex) of this knowledge base.

        Held while a writer runs, so :meth:`recover` never mistakes another live
        writer's pending document for a crashed one; the OS drops it when a writer dies.
        """
        with self._writer.hold():
            self.manifest.refresh()  # decide from the current documents (a registry may have changed elsewhere)
            yield

    # ---- manifest ------------------------------------------------------------
    def documents(self, include_pending: bool = False) -> list[Document]:
        """Documents visible to queries (committed), oldest first."""
        return self.manifest.documents(include_pending)

    def committed_ids(self) -> list[str]:
        return self.manifest.committed_ids()

    def status(self, doc_id: str) -> str | None:
        return self.manifest.status(doc_id)

    def by_source(self, source: str) -> list[Document]:
        return self.manifest.by_source(source)

    def generation(self) -> int:
        """A counter bumped by every commit and delete (the BM25 index records the one it saw)."""
        return self.manifest.generation()

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
        return self.manifest.embed_model()

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
                self.manifest.record_embed_model(model_id)
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
        original: tuple[str, bytes | Path] | None = None,
    ) -> None:
        """Write ``chunks`` then make ``doc`` visible (and ``replaces`` invisible) atomically.

        ``original`` is ``(suffix, bytes or path)``: a copy of the document's file kept
        under the knowledge base (PDFs, for the page view), written before the commit.
        """
        with self.locked(write=True), self.manifest.writing():
            self.manifest.add_pending(doc, replaces)
            self.vectors.upsert(chunks, vectors)
            if original is not None:
                self._keep_original(doc.doc_id, *original)
            before = self.generation()
            self.manifest.commit(doc.doc_id, replaces)
            self.lexical.apply(self.generation(), chunks, [doc.doc_id, *replaces], previous=before)
            for old in replaces:
                if old != doc.doc_id:
                    self._purge(old)

    def add_documents(self, batch: Sequence[tuple[Document, Sequence[Chunk], np.ndarray]]) -> None:
        """Add new documents in one commit (bulk loads, benchmarks): one upsert, one manifest transaction."""
        if not batch:
            return
        with self.locked(write=True), self.manifest.writing():
            self.manifest.add_pending_many([doc for doc, _, _ in batch])
            chunks = [c for _, doc_chunks, _ in batch for c in doc_chunks]
            self.vectors.upsert(chunks, np.concatenate([v for _, _, v in batch]))
            before = self.generation()
            self.manifest.commit_many([doc.doc_id for doc, _, _ in batch])
            self.lexical.apply(self.generation(), chunks, [doc.doc_id for doc, _, _ in batch], previous=before)

    def delete(self, doc_id: str) -> None:
        """Hide ``doc_id`` at once, then remove its chunks."""
        with self.locked(write=True), self.manifest.writing():
            before = self.generation()
            if not self.manifest.mark_deleting(doc_id):
                raise StoreError(f"no document {doc_id!r} in knowledge base {self.kb!r}")
            self.lexical.apply(self.generation(), remove_docs=[doc_id], previous=before)
            self._purge(doc_id)

    def drop(self) -> None:
        """Delete the whole knowledge base: its Chroma collection, manifest (or registry), BM25 index and originals.

        Waits for a running batch writer (ingest) to finish first. The store is closed afterwards.
        """
        import shutil

        with self.write_lock(), self.locked(write=True):
            self.vectors.drop()
            self.manifest.drop()
            self.lexical.close()
        # After the locks are released: with a Chroma server their files are in this folder.
        shutil.rmtree(self.kb_dir, ignore_errors=True)

    def recover(self) -> list[str]:
        """Finish what a crash interrupted: drop pending and deleting documents' chunks."""
        with self.locked(write=True), self.manifest.writing():
            in_flight = self.manifest.in_flight_ids()
            for doc_id in in_flight:
                self._purge(doc_id)
            return in_flight

    def _purge(self, doc_id: str) -> None:
        self.vectors.delete_document(doc_id)
        for path in self.originals(doc_id):
            path.unlink(missing_ok=True)
        self.manifest.remove(doc_id)

    def _keep_original(self, doc_id: str, suffix: str, data: bytes | Path) -> None:
        """Copy the document's file to ``originals/<doc_id><suffix>`` (a temporary file, then an atomic rename)."""
        import os
        import shutil
        import tempfile

        folder = self.layout.originals_dir
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(data, Path):
                    with open(data, "rb") as src:
                        shutil.copyfileobj(src, out)
                else:
                    out.write(data)
            os.replace(tmp, folder / f"{doc_id}{suffix}")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def originals(self, doc_id: str) -> list[Path]:
        """The kept copies of document ``doc_id``'s file (at most one)."""
        folder = self.layout.originals_dir
        return sorted(folder.glob(f"{doc_id}.*")) if folder.is_dir() else []

    # ---- reads -------------------------------------------------------------------
    def query(self, vector: np.ndarray, k: int, where: dict[str, Any] | None = None) -> list[Hit]:
        """Top-``k`` chunks of committed documents by cosine similarity.

        Chroma is asked for ``k`` plus the chunks of documents in flight (pending or
        being deleted) and the hits of invisible documents are dropped afterwards: a
        filter listing every committed document would make Chroma scan its metadata
        (seconds at a million chunks).
        """
        with self.locked(write=False):
            hidden = self.manifest.in_flight_chunks()
            self._current()
            hits = self.vectors.query(vector, k + hidden, where or None)
            status = self.manifest.statuses({h.chunk.doc_id for h in hits})
            kept = [h for h in hits if status.get(h.chunk.doc_id) == "committed"][:k]
            return [Hit(h.chunk, h.score, rank) for rank, h in enumerate(kept)]

    def chunks(self, doc_id: str | None = None) -> list[Chunk]:
        """All chunks (of one document, or of every committed document)."""
        with self.locked(write=False):
            where = {"doc_id": doc_id} if doc_id else {"doc_id": {"$in": self.committed_ids() or ["-"]}}
            self._current()
            return sorted(self.vectors.chunks(where), key=lambda c: (c.doc_id, c.index))

    def count(self) -> int:
        """Chunks in the vector store, whatever their document's status."""
        with self.locked(write=False):
            self._current()
            return self.vectors.count()

    # ---- BM25 ----------------------------------------------------------------------
    @property
    def bm25_dir(self) -> Path:
        return self.layout.bm25_dir

    def _fetch_chunks(self, doc_ids: list[str]) -> list[Chunk]:
        """The chunks of ``doc_ids`` from the vector store (what the lexical index catches up with)."""
        try:
            with self.locked(write=False):
                self._current()
                out: list[Chunk] = []
                for start in range(0, len(doc_ids), 500):
                    out += self.vectors.chunks({"doc_id": {"$in": doc_ids[start : start + 500]}})
                return sorted(out, key=lambda c: (c.doc_id, c.index))
        except Exception as exc:  # chromadb raises several unrelated types
            raise StoreError(
                f"cannot rebuild the BM25 index of knowledge base {self.kb!r}: Chroma failed ({exc}); "
                f"check the Chroma store, then run 'hoprag reindex --kb {self.kb}'"
            ) from exc

    def rebuild_bm25(self) -> int:
        """Rebuild the BM25 index from the committed chunks in Chroma; returns the chunk count.

        The rows are numbered anew, so the generation is bumped first: every cached view
        of the old rows (a BM25 index, a name index) is stale from then on.
        """
        self.manifest.bump()
        return self.lexical.rebuild().segments.live

    def bm25_index(self) -> BM25Index:
        """The BM25 index at the current generation: cached, loaded from disk, or rebuilt."""
        return self.lexical.current(self.generation())

    def name_index(self, extract: Callable[[str], set[str]], head: Callable[[str], str], version: int) -> NameView:
        """The ``hops`` name index at the current generation (names of new rows extracted by ``extract`` first)."""
        self.bm25_index()  # the rows caught up with the manifest
        sync_names(self.lexical.table, extract, head, version)
        return NameView(self.lexical.table)

    def bm25_search(self, query: str, k: int, where: dict[str, Any] | None = None) -> list[Hit]:
        """Top-``k`` chunks of committed documents by BM25 score (``origin='bm25'``).

        ``where`` is a Chroma-style metadata clause (as built by ``Filters.where()``).
        """
        index = self.bm25_index()
        status: dict[str, str | None] = {}

        def visible(chunk: Chunk) -> bool:
            if chunk.doc_id not in status:
                status[chunk.doc_id] = self.manifest.status(chunk.doc_id)
            return status[chunk.doc_id] == "committed"

        try:
            found = index.search(query, k, lambda c: visible(c) and matches(where, c.metadata()))
        except ValueError as exc:
            raise StoreError(f"bad BM25 filter {where!r}: {exc}") from exc
        return [Hit(chunk, score=score, rank=rank, origin="bm25") for rank, (chunk, score) in enumerate(found)]

    def close(self) -> None:
        self.manifest.close()
        self.lexical.close()
