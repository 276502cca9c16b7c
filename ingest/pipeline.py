"""The ingest pipeline: files or bytes → loaded → segmented → embedded → stored.

A document's id is the hash of its bytes, so re-ingesting an unchanged file is
a no-op and a changed file replaces its predecessor (same source) atomically.
One bad file never stops a batch: it gets a one-line reason in the report.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Union

from rag.embed.base import Embedder
from rag.errors import HopragError, IngestError
from rag.store import Store
from rag.types import Document, FileResult, IngestReport

from ingest.loaders import load
from ingest.segment import segment

log = logging.getLogger(__name__)

# (source, stage, fraction done) — stage is parse | chunk | embed | store | done | failed
Progress = Callable[[str, str, float], None]
Input = Union[str, Path, tuple[str, bytes]]


@dataclass(frozen=True)
class IngestOptions:
    mode: str = "structure"
    chunk_tokens: int = 200
    chunk_overlap: int = 30
    max_file_mb: float = 50.0


def doc_id_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:20]


def expand(inputs: Iterable[Input]) -> list[Input]:
    """Directories become the files under them (hidden files skipped)."""
    out: list[Input] = []
    for item in inputs:
        if isinstance(item, (str, Path)) and Path(item).is_dir():
            out.extend(
                p for p in sorted(Path(item).rglob("*")) if p.is_file() and not any(s.startswith(".") for s in p.parts)
            )
        else:
            out.append(item)
    return out


class Ingestor:
    """Ingests into one :class:`~rag.store.Store` with one :class:`Embedder`."""

    def __init__(self, store: Store, embedder: Embedder, options: IngestOptions = IngestOptions()) -> None:
        self.store = store
        self.embedder = embedder
        self.options = options

    def ingest(self, inputs: Iterable[Input], progress: Progress | None = None) -> IngestReport:
        """Ingest every input; never raises for a bad file (see the report)."""
        t0 = time.perf_counter()
        results = [self._one(item, progress) for item in expand(inputs)]
        return IngestReport(tuple(results), time.perf_counter() - t0)

    def _read(self, item: Input) -> tuple[str, bytes]:
        limit = int(self.options.max_file_mb * 1024 * 1024)
        if isinstance(item, tuple):
            name, data = item
            if len(data) > limit:
                raise IngestError(f"file is {len(data) / 2**20:.0f} MB, over the {self.options.max_file_mb:g} MB limit")
            return name, data
        path = Path(item)
        try:
            size = path.stat().st_size
            if size > limit:
                raise IngestError(f"file is {size / 2**20:.0f} MB, over the {self.options.max_file_mb:g} MB limit")
            return str(path.resolve()), path.read_bytes()
        except OSError as exc:
            raise IngestError(f"cannot read file ({exc.strerror or exc})") from exc

    def _one(self, item: Input, progress: Progress | None) -> FileResult:
        t0 = time.perf_counter()
        source = item[0] if isinstance(item, tuple) else str(item)
        note = progress or (lambda *_: None)
        try:
            source, data = self._read(item)
            doc_id = doc_id_of(data)
            if self.store.status(doc_id) == "committed":
                old = [d for d in self.store.documents() if d.doc_id == doc_id][0]
                note(source, "done", 1.0)
                return FileResult(source, "unchanged", doc_id, old.pages, old.chunks, seconds=time.perf_counter() - t0)
            replaces = [d.doc_id for d in self.store.by_source(source)]
            note(source, "parse", 0.0)
            loaded = load(data, source)
            note(source, "chunk", 0.2)
            chunks = segment(
                loaded,
                doc_id,
                source,
                mode=self.options.mode,
                chunk_tokens=self.options.chunk_tokens,
                chunk_overlap=self.options.chunk_overlap,
                count_tokens=self.embedder.count_tokens,
            )
            if not chunks:
                raise IngestError("no text to index after segmentation")
            note(source, "embed", 0.3)
            vectors = self.embedder.embed(
                [c.embed_text for c in chunks], progress=lambda d, n: note(source, "embed", 0.3 + 0.6 * d / n)
            )
            note(source, "store", 0.9)
            pages = sum(1 for p in loaded.pages if p.number is not None) or 1
            doc = Document(doc_id, source, loaded.title, pages, len(chunks), time.time())
            self.store.add_document(doc, chunks, vectors, replaces=replaces)
            note(source, "done", 1.0)
            log.info("ingested %s: %d pages, %d chunks", source, pages, len(chunks))
            return FileResult(
                source, "replaced" if replaces else "added", doc_id, pages, len(chunks), seconds=time.perf_counter() - t0
            )
        except HopragError as exc:
            note(source, "failed", 1.0)
            log.warning("skipped %s: %s", source, exc)
            return FileResult(source, "failed", reason=str(exc), seconds=time.perf_counter() - t0)
