"""The vector store of a knowledge base: one Chroma collection, embedded or on a Chroma server.

The embedded Chroma keeps its index in memory, so a process must reopen it after
another process wrote (rag.store.locking tells when). This module keeps one
embedded client per directory for the whole process (two clients on one
directory would overwrite each other's index like two processes do) and, to
reload, closes it (Chroma stops a client's system when its last user closes it)
and opens a new one that reads the files again.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlparse

import numpy as np

from rag.errors import HopragError, StoreError
from rag.types import Chunk, Hit

log = logging.getLogger(__name__)
_EMBEDDED: dict[str, Any] = {}  # resolved directory -> the process's one embedded client of it
_EMBEDDED_LOCK = threading.Lock()


def _chroma_settings() -> Any:
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def embedded_client(persist_dir: Path, fresh: bool = False) -> Any:
    """This process's client of the embedded Chroma in ``persist_dir``; ``fresh`` closes it and reads the files again.

    A client closed by ``fresh`` is not used again: every Store reopens its
    collection when the index guard's version changes, before its next read.
    """
    import chromadb

    persist_dir.mkdir(parents=True, exist_ok=True)
    key = str(persist_dir.resolve())
    with _EMBEDDED_LOCK:
        client = _EMBEDDED.get(key)
        if client is not None and fresh:
            client.close()
            client = None
        if client is None:
            client = _EMBEDDED[key] = chromadb.PersistentClient(path=key, settings=_chroma_settings())
        return client


def reload_embedded(persist_dir: Path) -> None:
    """Another process wrote to the embedded Chroma in ``persist_dir``: read its files again."""
    embedded_client(persist_dir, fresh=True)


def server_client(url: str) -> Any:
    """A client of the Chroma server at ``url`` (checked with a heartbeat)."""
    import chromadb

    parsed = urlparse(url if "://" in url else f"http://{url}")
    try:
        client = chromadb.HttpClient(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or (443 if parsed.scheme == "https" else 8000),
            ssl=parsed.scheme == "https",
            settings=_chroma_settings(),
        )
        client.heartbeat()
    except Exception as exc:  # chromadb raises several unrelated types here
        raise StoreError(
            f"Chroma server {url} is unreachable: start it (chroma run --host 127.0.0.1) "
            f"or unset HOPRAG_CHROMA_URL ({type(exc).__name__}: {exc})"
        ) from exc
    return client


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


def hnsw_configuration(settings: Any) -> dict[str, int]:
    """The Chroma HNSW configuration of ``settings`` (``hnsw_*``) for :class:`VectorStore`."""
    return {
        "max_neighbors": settings.hnsw_max_neighbors,
        "ef_construction": settings.hnsw_ef_construction,
        "ef_search": settings.hnsw_ef_search,
    }


def upsert_batched(client: Any, upsert: Callable[..., Any], most: int = 0, **columns: Sequence[Any]) -> None:
    """Call ``upsert`` (a collection's of ``client``) with ``columns`` (``ids=``, ``metadatas=``, ...) in requests
    of at most the client's maximum batch size, and of at most ``most`` records when ``most`` is set."""
    size = int(getattr(client, "get_max_batch_size", lambda: most or 1000)())
    size = max(1, min(most, size) if most else size)
    for start in range(0, len(columns["ids"]), size):
        upsert(**{name: values[start : start + size] for name, values in columns.items()})


def _chunks(res: dict[str, Any]) -> list[Chunk]:
    return [Chunk.from_metadata(i, t or "", m or {}) for i, t, m in zip(res["ids"], res["documents"], res["metadatas"])]


class VectorStore:
    """The Chroma collection of knowledge base ``kb``: chunks, their vectors and metadata.

    ``client`` given: use it as is (never reloaded). Else a server client when
    ``url`` is set, or this process's embedded client of ``persist_dir``.
    """

    def __init__(
        self, kb: str, persist_dir: Path, url: str = "", client: Any = None, hnsw: Mapping[str, int] | None = None
    ) -> None:
        self.kb = kb
        self.hnsw = dict(hnsw or {})
        self.persist_dir = persist_dir
        self.url = url
        self.embedded = not url and client is None
        self.where = f"Chroma server {url}" if url else f"embedded Chroma at {persist_dir}"
        if client is not None:
            self.client = client
        else:
            self.client = server_client(url) if url else embedded_client(persist_dir)
        self.collection = self._open()

    def _open(self) -> Any:
        try:
            # embedding_function=None: hoprag always passes its own vectors, and
            # Chroma's default function would try to download a model.
            # The HNSW graph's parameters apply when the collection is created (an existing one keeps its
            # graph); its ef_search can change at any time.
            inner = self.client.get_or_create_collection(
                name=f"hoprag-{self.kb}", embedding_function=None,
                configuration={"hnsw": {"space": "cosine", **self.hnsw}},
            )
        except Exception as exc:
            raise StoreError(
                f"cannot open the Chroma collection of knowledge base {self.kb!r} ({self.where}): {exc}"
            ) from exc
        self._set_ef_search(inner)
        return _ChromaErrors(inner, self.where)

    def _set_ef_search(self, inner: Any) -> None:
        """Give an existing collection the configured ef_search (a failure only costs recall: a warning)."""
        ef_search = self.hnsw.get("ef_search")
        try:
            if ef_search and (inner.configuration.get("hnsw") or {}).get("ef_search") != ef_search:
                inner.modify(configuration={"hnsw": {"ef_search": ef_search}})
        except Exception as exc:  # chromadb raises several unrelated types
            log.warning("could not set hnsw_ef_search=%s on the Chroma collection of %r (%s): %s; its previous "
                        "value stays", ef_search, self.kb, self.where, exc)

    def reopen(self) -> None:
        """Reopen the collection (on the embedded client renewed by :func:`reload_embedded`)."""
        if self.embedded:
            self.client = embedded_client(self.persist_dir)
            self.collection = self._open()

    # ---- writes --------------------------------------------------------------------
    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        upsert_batched(
            self.client, self.collection.upsert, most=1000,
            ids=[c.id for c in chunks],
            documents=[c.text for c in chunks],
            metadatas=[c.metadata() for c in chunks],
            embeddings=np.asarray(vectors, dtype=np.float32),
        )

    def delete_document(self, doc_id: str) -> None:
        """Remove every chunk of ``doc_id``."""
        self.collection.delete(where={"doc_id": doc_id})

    def drop(self) -> None:
        """Delete this knowledge base's whole collection."""
        try:
            self.client.delete_collection(f"hoprag-{self.kb}")
        except Exception as exc:  # chromadb raises several unrelated types
            raise StoreError(f"cannot delete the Chroma collection of knowledge base {self.kb!r} ({self.where}): {exc}") from exc

    # ---- reads ---------------------------------------------------------------------
    def query(self, vector: np.ndarray, k: int, where: dict[str, Any]) -> list[Hit]:
        """Top-``k`` chunks matching ``where`` by cosine similarity."""
        # Chroma returns fewer than n_results when it holds fewer (counting first costs ms at scale).
        res = self.collection.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=max(k, 1),
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        return [
            Hit(Chunk.from_metadata(cid, text or "", meta or {}), score=1.0 - float(dist), rank=rank)
            for rank, (cid, text, meta, dist) in enumerate(
                zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0])
            )
        ]

    def chunks(self, where: dict[str, Any]) -> list[Chunk]:
        """Every chunk matching ``where``, in no particular order."""
        return _chunks(self.collection.get(where=where, include=["documents", "metadatas"]))

    def metadata(self) -> list[tuple[str, dict[str, Any]]]:
        """``(chunk id, metadata)`` of every chunk in the collection, whatever its document's status."""
        res = self.collection.get(include=["metadatas"])
        return [(cid, meta or {}) for cid, meta in zip(res["ids"], res["metadatas"])]

    def count(self) -> int:
        return int(self.collection.count())
