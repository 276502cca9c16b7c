"""Where an index keeps its files: every file and folder name of the data layout, in one place.

::

    <index_dir>/chroma/              the embedded Chroma (shared by every knowledge base)
    <index_dir>/write.lock           the index lock, embedded Chroma (rag.store.locking)
    <index_dir>/write.gen            the token of the last write, embedded Chroma
    <index_dir>/embed-cache.sqlite   vectors by chunk text hash, shared by knowledge bases (ingest)
    <index_dir>/<kb>/manifest.sqlite the documents of one knowledge base (rag.store.manifest; with a Chroma
                                     server they live there instead: rag.store.registry)
    <index_dir>/<kb>/lexical.sqlite  its chunks' tokens and names, per document (rag.store.lexical, rag.store.names)
    <index_dir>/<kb>/bm25/base-R.npz its BM25 base segment up to row R (rag.store.lexical)
    <index_dir>/<kb>/ingest.lock     held by a batch writer (ingest, reindex) for its whole run
    <index_dir>/<kb>/write.lock      the index lock and token when Chroma is a server
    <index_dir>/<kb>/write.gen
    <index_dir>/<kb>/originals/      a copy of each ingested PDF, <doc_id>.pdf (for the page view)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MANIFEST_FILE = "manifest.sqlite"
BM25_DIR = "bm25"
LEXICAL_FILE = "lexical.sqlite"
CHROMA_DIR = "chroma"
EMBED_CACHE_FILE = "embed-cache.sqlite"
WRITE_LOCK_FILE = "write.lock"
GENERATION_FILE = "write.gen"
WRITER_LOCK_FILE = "ingest.lock"
ORIGINALS_DIR = "originals"


def knowledge_bases(index_dir: Path) -> list[str]:
    """The names of the knowledge bases under ``index_dir`` (each has a manifest), sorted."""
    index = Path(index_dir)
    return sorted(p.parent.name for p in index.glob(f"*/{MANIFEST_FILE}")) if index.is_dir() else []


@dataclass(frozen=True)
class Layout:
    """The paths of knowledge base ``kb`` under ``index_dir``."""

    index_dir: Path
    kb: str

    @property
    def kb_dir(self) -> Path:
        return Path(self.index_dir) / self.kb

    @property
    def manifest(self) -> Path:
        return self.kb_dir / MANIFEST_FILE

    @property
    def bm25_dir(self) -> Path:
        return self.kb_dir / BM25_DIR

    @property
    def lexical(self) -> Path:
        return self.kb_dir / LEXICAL_FILE

    @property
    def chroma_dir(self) -> Path:
        return Path(self.index_dir) / CHROMA_DIR

    @property
    def embed_cache(self) -> Path:
        return Path(self.index_dir) / EMBED_CACHE_FILE

    @property
    def originals_dir(self) -> Path:
        return self.kb_dir / ORIGINALS_DIR

    @property
    def writer_lock(self) -> Path:
        return self.kb_dir / WRITER_LOCK_FILE

    def lock_dir(self, shared_embedded: bool) -> Path:
        """Where the index lock lives: the embedded Chroma is one per index, so its lock is too."""
        return Path(self.index_dir) if shared_embedded else self.kb_dir

