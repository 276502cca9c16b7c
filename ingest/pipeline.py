"""The ingest pipeline: files or bytes → parsed (loaded + segmented) → embedded → stored.

A document's id is the hash of its bytes, so re-ingesting an unchanged file is
a no-op and a changed file replaces its predecessor (same source) atomically.
One bad file never stops a batch: it gets a one-line reason in the report.

Parsing runs in worker processes for big batches while this process embeds,
in completion order; at most ``workers + 1`` files are parsed or waiting at a time.
URLs are fetched here (ingest.web), then go the way of uploaded bytes.
A :class:`Runner` (ingest.distributed: a Ray cluster) may parse and embed instead;
this process still triages, commits each whole document and reports.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue as queue_module
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol, Sequence, Union

import numpy as np

from rag.embed.base import Embedder
from rag.errors import HopragError, IngestError
from rag.store import Store
from rag.types import Document, FileResult, IngestReport

from ingest.embed_cache import EmbeddingCache, embed_cached
from ingest.parse import (
    ParseJob, Parsed, doc_id_of, parse_in_worker, parse_or_reason, parser_pool, start_method, token_counter, too_big,
)
from ingest.web import Fetched, WebOptions, crawl, is_url

log = logging.getLogger(__name__)

# (source, stage, fraction done) — stage is fetch | parse | ocr | embed | store | done | failed
Progress = Callable[[str, str, float], None]
Input = Union[str, Path, tuple[str, bytes]]
# Below this many bytes to parse, starting a worker process costs more than it saves.
PARALLEL_MIN_BYTES = 512 * 2**10

__all__ = ["IngestOptions", "Ingestor", "Prepared", "Runner", "doc_id_of", "expand"]


@dataclass(frozen=True)
class IngestOptions:
    mode: str = "structure"
    chunk_tokens: int = 200
    chunk_overlap: int = 30
    max_file_mb: float = 50.0
    workers: int = -1  # parser processes: -1 auto (1 for big batches), 0 parse in this process
    embed_cache: bool = True
    password: str | None = field(default=None, repr=False)  # for encrypted PDFs; never logged or stored
    ocr_languages: str = "eng"
    ocr_cache: bool = True  # OCR results cached by page-image hash next to the embedding cache
    allow_private_urls: bool = False
    crawl_depth: int = 0  # URLs: follow same-site links this many levels deep
    max_pages: int = 50  # URLs: at most this many pages per URL given
    web_timeout_s: float = 20.0  # URLs: the longest wait for a connection or for data

    def __post_init__(self) -> None:
        if self.workers < -1 or self.workers > 8:
            raise ValueError(f"workers={self.workers} is not allowed: use -1 (auto), 0 (in-process) or 1-8")
        if self.crawl_depth < 0 or self.max_pages < 1:
            raise ValueError(f"crawl_depth={self.crawl_depth}, max_pages={self.max_pages}: need >= 0 and >= 1")

    @property
    def web(self) -> WebOptions:
        return WebOptions(
            allow_private=self.allow_private_urls,
            max_bytes=int(self.max_file_mb * 2**20),
            connect_timeout_s=self.web_timeout_s,
            read_timeout_s=self.web_timeout_s,
        )


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


@dataclass(frozen=True)
class Prepared:
    """A runner's result for ``jobs[index]``: the parsed file (or why it failed) and its chunks' vectors."""

    index: int
    parsed: Parsed | str
    vectors: np.ndarray | None = None
    cached: int = 0  # vectors that came from the embedding cache


class Runner(Protocol):
    """Parses and embeds files elsewhere (e.g. :class:`ingest.distributed.RayRunner`); the Ingestor commits."""

    @property
    def model_id(self) -> str:
        """The id of the embedder the runner's workers use (checked against the knowledge base's)."""
        ...

    def run(self, jobs: Sequence[ParseJob], cache: EmbeddingCache | None, note: Progress) -> Iterator[Prepared]:
        """One :class:`Prepared` per job, in completion order; a job's vectors come only when all are there."""
        ...


@dataclass
class _Pending:
    """A file waiting to be parsed (or being parsed)."""

    slot: int
    job: ParseJob
    replaces: list[str]
    t0: float
    future: Future | None = None


class Ingestor:
    """Ingests into one :class:`~rag.store.Store` with one :class:`Embedder` (or a :class:`Runner`'s workers)."""

    def __init__(
        self, store: Store, embedder: Embedder | None, options: IngestOptions = IngestOptions(),
        runner: Runner | None = None,
    ) -> None:
        if embedder is None and runner is None:
            raise ValueError("an Ingestor needs an embedder or a runner")
        self.store = store
        self.embedder = embedder
        self.options = options
        self.runner = runner
        self._max_bytes = int(options.max_file_mb * 2**20)

    def ingest(self, inputs: Iterable[Input], progress: Progress | None = None) -> IngestReport:
        """Ingest every input; never raises for a bad file (see the report)."""
        with self.store.write_lock():
            return self._ingest(inputs, progress)

    def _ingest(self, inputs: Iterable[Input], progress: Progress | None) -> IngestReport:
        t0 = time.perf_counter()
        note = progress or (lambda *_: None)
        # A crash may have left a half-written document: drop it before adding more.
        recovered = self.store.recover()
        if recovered:
            log.info("dropped %d unfinished document(s) left by an interrupted run", len(recovered))
        results: list[FileResult | None] = []
        todo: list[_Pending] = []
        for item in self._fetched(expand(inputs), note):
            results.append(None)
            if isinstance(item, FileResult):
                results[-1] = item
                continue
            pending_or_result = self._triage(len(results) - 1, item, note)
            if isinstance(pending_or_result, FileResult):
                results[-1] = pending_or_result
            else:
                todo.append(pending_or_result)
        model_id = (self.runner.model_id if self.runner is not None else self.embedder.model_id) if todo else ""
        if todo:
            self.store.check_embedder(model_id, record=True)
        cache = EmbeddingCache(self.store.layout.embed_cache, model_id) if self.options.embed_cache and todo else None
        try:
            if self.runner is not None:
                for done in self.runner.run([p.job for p in todo], cache, note):
                    pending = todo[done.index]
                    results[pending.slot] = self._commit(pending, done.parsed, done.vectors, done.cached, note)
            else:
                for pending, parsed in self._parsed(todo, note):
                    results[pending.slot] = self._store(pending, parsed, cache, note)
        finally:
            if cache is not None:
                cache.close()
        # The lexical index was updated with each document (Store.add_document): nothing to rebuild.
        return IngestReport(tuple(r for r in results if r is not None), time.perf_counter() - t0)

    # ---- stages ------------------------------------------------------------------------
    def _fetched(self, items: list[Input], note: Progress) -> Iterable[Input | Fetched | FileResult]:
        """Inputs with each URL replaced by its fetched page(s) (a failed fetch: its FileResult)."""
        for item in items:
            if not is_url(item):
                yield item
                continue
            t0 = time.perf_counter()
            for page in crawl(
                str(item), self.options.web, self.options.crawl_depth, self.options.max_pages,
                note=lambda url: note(url, "fetch", 0.0),
            ):
                yield page if isinstance(page, Fetched) else self._failed(page[0], page[1], t0, note)
                t0 = time.perf_counter()

    def _triage(self, slot: int, item: Input | Fetched, note: Progress) -> FileResult | _Pending:
        """Size check and content hash: an unchanged file is done here, without parsing."""
        t0 = time.perf_counter()
        name = None
        try:
            if isinstance(item, Fetched):
                source, data, path, name = item.url, item.data, None, item.name
                doc_id = doc_id_of(data)
            elif isinstance(item, tuple):
                source, data = item
                path = None
                if len(data) > self._max_bytes:
                    raise too_big(len(data), self._max_bytes)
                doc_id = doc_id_of(data)
            else:
                path = Path(item)
                source = str(path.resolve())
                data = None
                try:
                    size = path.stat().st_size
                    if size > self._max_bytes:
                        raise too_big(size, self._max_bytes)
                    doc_id = doc_id_of(path)
                except OSError as exc:
                    raise IngestError(f"cannot read file ({exc.strerror or exc})") from exc
        except IngestError as exc:
            return self._failed(item[0] if isinstance(item, tuple) else str(item), str(exc), t0, note)
        if self.store.status(doc_id) == "committed":
            old = next(d for d in self.store.documents() if d.doc_id == doc_id)
            note(source, "done", 1.0)
            return FileResult(source, "unchanged", doc_id, old.pages, old.chunks, seconds=time.perf_counter() - t0)
        job = ParseJob(
            source,
            path=str(path) if path is not None else None,
            data=data,
            max_bytes=self._max_bytes,
            mode=self.options.mode,
            chunk_tokens=self.options.chunk_tokens,
            chunk_overlap=self.options.chunk_overlap,
            password=self.options.password,
            ocr_languages=self.options.ocr_languages,
            ocr_cache=str(self.store.kb_dir.parent / "ocr-cache.sqlite") if self.options.ocr_cache else None,
            name=name,
        )
        return _Pending(slot, job, [d.doc_id for d in self.store.by_source(source)], t0)

    def _workers(self, todo: list[_Pending]) -> int:
        if self.options.workers >= 0:
            return self.options.workers if token_counter(self.embedder) else 0
        size = sum(len(p.job.data) if p.job.data is not None else _size(p.job.path) for p in todo)
        return 1 if size >= PARALLEL_MIN_BYTES and token_counter(self.embedder) else 0

    def _parsed(self, todo: list[_Pending], note: Progress) -> Iterable[tuple[_Pending, Parsed | str]]:
        """Parse results as they complete; with workers, the next files parse while one is embedded."""
        workers = self._workers(todo)
        if workers == 0:
            for pending in todo:
                note(pending.job.source, "parse", 0.0)
                yield pending, self._parse_here(pending.job, note)
            return
        queue = deque(todo)
        window: list[_Pending] = []
        pages = multiprocessing.get_context(start_method()).Queue()  # OCR page progress from the workers

        def relay() -> None:
            while True:
                try:
                    source, done, total = pages.get_nowait()
                except queue_module.Empty:
                    return
                note(source, "ocr", 0.3 * done / max(total, 1))

        pool = self._pool(workers, pages)
        try:
            while queue or window:
                while queue and len(window) < workers + 1:
                    pending = queue.popleft()
                    note(pending.job.source, "parse", 0.0)
                    try:
                        pending.future = pool.submit(parse_in_worker, pending.job)
                    except BrokenProcessPool:  # a file in the window crashed it; handled below
                        queue.appendleft(pending)
                        break
                    window.append(pending)
                # Completion order: a small file parsed after a big one is embedded first.
                while not wait([p.future for p in window], timeout=0.2, return_when=FIRST_COMPLETED)[0]:
                    relay()
                relay()
                done = next(p for p in window if p.future.done())
                window.remove(done)
                try:
                    result = done.future.result()
                except BrokenProcessPool:
                    # A parser died (e.g. a native library on a hostile file). Re-parse
                    # the files it took down one by one, alone, to blame only the culprit.
                    pool.shutdown(cancel_futures=True)
                    for victim in [done, *window]:
                        yield victim, self._parse_isolated(victim.job)
                    window.clear()
                    pool = self._pool(workers, pages)
                    continue
                yield done, result
        finally:
            pool.shutdown(cancel_futures=True)
            pages.close()

    def _parse_isolated(self, job: ParseJob) -> Parsed | str:
        pool = self._pool(1)
        try:
            return pool.submit(parse_in_worker, job).result()
        except BrokenProcessPool:
            log.warning("parser process crashed on %s", job.source)
            return "the parser process crashed on this file"
        finally:
            pool.shutdown(cancel_futures=True)

    def _pool(self, workers: int, pages=None) -> ProcessPoolExecutor:
        return parser_pool(workers, token_counter(self.embedder), pages)

    def _parse_here(self, job: ParseJob, note: Progress) -> Parsed | str:
        return parse_or_reason(
            job, self.embedder.count_tokens, lambda d, n: note(job.source, "ocr", 0.3 * d / max(n, 1))
        )

    def _store(self, pending: _Pending, parsed: Parsed | str, cache: EmbeddingCache | None, note: Progress) -> FileResult:
        """Embed ``parsed`` here, then :meth:`_commit` it."""
        source = pending.job.source
        if isinstance(parsed, str) or self.store.status(parsed.doc_id) == "committed":
            return self._commit(pending, parsed, None, 0, note)
        try:
            note(source, "embed", 0.3)
            vectors, cached = embed_cached(
                self.embedder,
                cache,
                [c.embed_text for c in parsed.chunks],
                progress=lambda d, n: note(source, "embed", 0.3 + 0.6 * d / max(n, 1)),
            )
        except HopragError as exc:
            return self._failed(source, str(exc), pending.t0, note)
        return self._commit(pending, parsed, vectors, cached, note)

    def _commit(
        self, pending: _Pending, parsed: Parsed | str, vectors: np.ndarray | None, cached: int, note: Progress
    ) -> FileResult:
        """Write one whole parsed and embedded document (or report why it failed)."""
        source = pending.job.source
        if isinstance(parsed, str):
            return self._failed(source, parsed, pending.t0, note)
        try:
            if self.store.status(parsed.doc_id) == "committed":  # the file changed back meanwhile, or a copy came first
                note(source, "done", 1.0)
                return FileResult(source, "unchanged", parsed.doc_id, parsed.pages, len(parsed.chunks),
                                  seconds=time.perf_counter() - pending.t0)
            chunks = parsed.chunks
            note(source, "store", 0.9)
            doc = Document(parsed.doc_id, source, parsed.title, parsed.pages, len(chunks), time.time())
            self.store.add_document(doc, chunks, vectors, replaces=pending.replaces, original=_original(pending.job))
        except HopragError as exc:
            return self._failed(source, str(exc), pending.t0, note)
        note(source, "done", 1.0)
        log.info("ingested %s: %d pages, %d chunks (%d from the embedding cache)", source, parsed.pages, len(chunks), cached)
        return FileResult(
            source,
            "replaced" if pending.replaces else "added",
            parsed.doc_id,
            parsed.pages,
            len(chunks),
            seconds=time.perf_counter() - pending.t0,
        )

    @staticmethod
    def _failed(source: str, reason: str, t0: float, note: Progress) -> FileResult:
        reason = " ".join(reason.split()) or "unknown error"
        note(source, "failed", 1.0)
        log.warning("skipped %s: %s", source, reason)
        return FileResult(source, "failed", reason=reason, seconds=time.perf_counter() - t0)


def _original(job: ParseJob) -> tuple[str, bytes | Path] | None:
    """The file to keep beside the index: a PDF (the UI renders its pages with the evidence highlighted)."""
    if job.data is not None:
        return (".pdf", job.data) if job.data[:5] == b"%PDF-" else None
    if job.path is None:
        return None
    with open(job.path, "rb") as fh:
        return (".pdf", Path(job.path)) if fh.read(5) == b"%PDF-" else None


def _size(path: str | None) -> int:
    try:
        return Path(path).stat().st_size if path else 0
    except OSError:
        return 0
