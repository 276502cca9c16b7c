"""Parsing one file (read → load → segment), in the ingest process or a worker process.

This module imports nothing heavy (no Chroma, no torch) so worker processes
start fast; the embedder's tokenizer reaches them once, via the pool initializer.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rag.errors import HopragError, IngestError
from rag.types import Chunk

from ingest.loaders import LoadOptions, PageProgress, load
from ingest.segment import segment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParseJob:
    """One input: a file path, or a name with its bytes."""

    source: str
    path: str | None = None
    data: bytes | None = None
    max_bytes: int = 50 * 2**20
    mode: str = "structure"
    chunk_tokens: int = 200
    chunk_overlap: int = 30
    password: str | None = field(default=None, repr=False)  # never shown, logged or stored
    ocr_languages: str = "eng"
    ocr_cache: str | None = None
    name: str | None = None  # file name that tells the kind when the source does not (a URL's content type)

    @property
    def load_options(self) -> LoadOptions:
        return LoadOptions(self.password, self.ocr_languages, self.ocr_cache)


@dataclass(frozen=True)
class Parsed:
    doc_id: str
    title: str
    pages: int
    chunks: tuple[Chunk, ...]


def doc_id_of(data: bytes | Path) -> str:
    """A document's id: the hash of its bytes (unchanged file → same id); a path is hashed as it is read."""
    if isinstance(data, Path):
        with open(data, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()[:20]
    return hashlib.sha256(data).hexdigest()[:20]


def too_big(size: int, max_bytes: int) -> IngestError:
    return IngestError(f"file is {size / 2**20:.1f} MB, over the {max_bytes / 2**20:g} MB limit (max_file_mb)")


def read(job: ParseJob) -> bytes:
    if job.data is not None:
        data = job.data
    else:
        try:
            with open(job.path or job.source, "rb") as fh:
                data = fh.read(job.max_bytes + 1)
        except OSError as exc:
            raise IngestError(f"cannot read file ({exc.strerror or exc})") from exc
    if len(data) > job.max_bytes:
        raise too_big(len(data) if job.data is not None else Path(job.path or job.source).stat().st_size, job.max_bytes)
    return data


def parse(job: ParseJob, count_tokens: Callable[[str], int], progress: PageProgress | None = None) -> Parsed:
    """Read, load and segment one input; raises :class:`IngestError` with a one-line reason."""
    data = read(job)
    doc_id = doc_id_of(data)
    loaded = load(data, job.name or job.source, job.load_options, progress)
    del data  # the pages' text is all we keep of a big file
    chunks = segment(
        loaded,
        doc_id,
        job.source,
        mode=job.mode,
        chunk_tokens=job.chunk_tokens,
        chunk_overlap=job.chunk_overlap,
        count_tokens=count_tokens,
    )
    if not chunks:
        raise IngestError("no text to index after segmentation")
    pages = sum(1 for p in loaded.pages if p.number is not None) or 1
    return Parsed(doc_id, loaded.title, pages, tuple(chunks))


class TokenCounter:
    """A picklable token counter around a Hugging Face ``tokenizers.Tokenizer``."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def __call__(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)


def parse_or_reason(
    job: ParseJob, count_tokens: Callable[[str], int], progress: PageProgress | None = None
) -> Parsed | str:
    """:func:`parse`, or the one-line reason it failed: one bad file must not end a batch."""
    try:
        return parse(job, count_tokens, progress)
    except HopragError as exc:
        return str(exc)
    except Exception as exc:  # a parser bug on a strange file
        log.debug("parser failed on %s", job.source, exc_info=True)
        return f"cannot parse ({type(exc).__name__}: {str(exc)[:80]})"


def token_counter(embedder: Any) -> TokenCounter | None:
    """A counter worker processes can use, or None if the embedder's cannot be shipped."""
    backend = getattr(getattr(embedder, "tokenizer", None), "backend_tokenizer", None)
    if backend is None:
        return None
    from tokenizers import Tokenizer

    # A copy without the padding and truncation sentence-transformers configures
    # (every text would otherwise count as exactly max_length tokens).
    counter = Tokenizer.from_str(backend.to_str())
    counter.no_padding()
    counter.no_truncation()
    return TokenCounter(counter)


# ---- worker process side ------------------------------------------------------------
_counter: Callable[[str], int] | None = None
_progress_queue: Any = None  # multiprocessing queue of (source, done, total) back to the ingest process


def start_method() -> str:
    """How parser processes start: fork where the OS has it.

    The workers only run PDFium, Tesseract and the tokenizer, never the torch or Chroma threads of this
    process, and fork needs no ``__main__`` guard in the caller's script (spawn re-imports it) and no
    re-import of modules.
    """
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def parser_pool(workers: int, counter: Callable[[str], int], progress_queue: Any = None) -> ProcessPoolExecutor:
    """A pool of ``workers`` parser processes (:func:`parse_in_worker`), forked now.

    A forked worker must never free an object it inherits. An embedder of a knowledge base closed
    earlier can still wait in a reference cycle for the garbage collector; if the worker's collector
    frees its onnxruntime session, the session waits for its thread pool's threads, which do not exist
    in the child, and the worker hangs for ever (pthread_cond_destroy), and with it the ingest. So
    this process collects its garbage first, where those threads exist, and freezes its objects while
    the workers fork: a frozen object is never collected in the child (:func:`init_worker` freezes
    again for a worker started later).
    """
    method = start_method()
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(method),
        initializer=init_worker,
        initargs=(counter, progress_queue),
    )
    if method == "fork":
        gc.collect()
        gc.freeze()
        try:
            pool.submit(int).result()  # with fork, the first task starts every worker
        finally:
            gc.unfreeze()
    return pool


def init_worker(counter: Callable[[str], int], progress_queue: Any = None) -> None:
    gc.freeze()  # what this process inherited is never collected here (see parser_pool)
    global _counter, _progress_queue
    _counter = counter
    _progress_queue = progress_queue
    # A forked worker shares its pipes with the parent, so it never sees EOF if the
    # parent is killed (kill -9): watch the parent and leave with it.
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def parse_in_worker(job: ParseJob) -> Parsed | str:
    """:func:`parse` for a worker process: a failure comes back as its one-line reason."""
    assert _counter is not None, "init_worker was not called"
    queue = _progress_queue
    report = (lambda done, total: queue.put((job.source, done, total))) if queue is not None else None
    return parse_or_reason(job, _counter, report)
