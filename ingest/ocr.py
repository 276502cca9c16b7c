"""OCR with Tesseract: page images → text, several tesseract processes at a time, cached by image hash.

Loaders hand over a ``render(index) -> PIL.Image`` function and the indexes of
the pages to read; pages are rendered one by one in the caller's thread (PDFium
is not thread-safe) while up to one tesseract process per core reads the
rendered ones (the ``tesseract`` command, one process per page). Results are cached in SQLite by the SHA-256 of the page image's
pixels, the languages and the Tesseract version, so a re-ingest never OCRs a
page twice.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import shutil
import sqlite3
import subprocess
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Sequence

from rag.errors import IngestError

log = logging.getLogger(__name__)

# Resolution pages are rendered at for OCR; chosen by measurement (scripts/bench_ocr.py, README "OCR").
OCR_DPI = 200
# A page image larger than this is refused (decompression-bomb guard; a 600-dpi A3 scan is 70 Mpx).
MAX_PIXELS = 100_000_000
# Seconds one page may take in Tesseract before the file fails.
PAGE_TIMEOUT_S = 180
# The Tesseract command (Debian: tesseract-ocr). It is run directly rather than through pytesseract,
# whose import pulls in pandas, and importing pandas hangs in a parser process forked from a busy one.
TESSERACT = "tesseract"
INSTALL_HINT = "run 'apt-get install tesseract-ocr' as root (or 'make install')"


@dataclass(frozen=True)
class OcrOptions:
    languages: str = "eng"
    cache: str | None = None  # SQLite file; None: no cache
    workers: int = 0  # tesseract processes at a time; 0: one per core


def _run(args: list[str], data: bytes | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    # One OpenMP thread per tesseract: one process per core runs at once, and their default threads fight
    # each other (measured: 4 pages in 26.5 s with the default, 15.6 s with one thread each).
    env = {**os.environ, "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT", "1")}
    return subprocess.run([TESSERACT, *args], input=data, capture_output=True, timeout=timeout, env=env, check=False)


@functools.lru_cache(maxsize=None)
def tesseract_info() -> tuple[str, frozenset[str]]:
    """Tesseract's version and languages (looked up once per process; a failure is not cached)."""
    if shutil.which(TESSERACT) is None:
        raise IngestError(f"this file needs OCR but Tesseract is not installed: {INSTALL_HINT}")
    try:
        version = _run(["--version"]).stdout.decode(errors="replace").split("\n")[0].strip()
        listed = _run(["--list-langs"]).stdout.decode(errors="replace").splitlines()[1:]
    except (OSError, subprocess.SubprocessError) as exc:
        raise IngestError(f"Tesseract does not run ({str(exc)[:80]}): reinstall it: {INSTALL_HINT}") from exc
    return version, frozenset(line.strip() for line in listed if line.strip())


def check_available(languages: str) -> str:
    """Tesseract's version, or :class:`IngestError` saying what to install."""
    version, have = tesseract_info()
    missing = [lang for lang in languages.split("+") if lang not in have]
    if missing:
        packages = " ".join(f"tesseract-ocr-{m.replace('_', '-').lower()}" for m in missing)
        raise IngestError(
            f"Tesseract has no data for OCR language(s) {', '.join(missing)} (setting ocr_languages): "
            f"run 'apt-get install {packages}' as root"
        )
    return version


def image_key(image, languages: str, version: str) -> str:
    digest = hashlib.sha256(f"{image.mode}:{image.size}:{languages}:{version}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


class OcrCache:
    """Page text by image key, in one SQLite file (shared by every knowledge base of a data dir)."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS pages (key TEXT PRIMARY KEY, text TEXT NOT NULL) WITHOUT ROWID")

    def get(self, key: str) -> str | None:
        row = self.conn.execute("SELECT text FROM pages WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, text: str) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO pages VALUES (?, ?)", (key, text))

    def close(self) -> None:
        self.conn.close()


def _workers(options: OcrOptions) -> int:
    if options.workers > 0:
        return options.workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def read_page(image, languages: str) -> str:
    """One page image through Tesseract (a process of its own), sent as a PGM/PPM on its stdin."""
    buf = io.BytesIO()
    image.save(buf, "PPM")
    try:
        done = _run(["stdin", "stdout", "-l", languages], buf.getvalue(), timeout=PAGE_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise IngestError(f"OCR of a page took over {PAGE_TIMEOUT_S} s; refused") from exc
    if done.returncode != 0:
        detail = " ".join(done.stderr.decode(errors="replace").split())[:80]
        raise IngestError(f"Tesseract failed on a page ({detail})")
    return done.stdout.decode("utf-8", errors="replace")


def ocr_pages(
    render: Callable[[int], object],
    indexes: Sequence[int],
    options: OcrOptions = OcrOptions(),
    progress: Callable[[int, int], None] | None = None,
) -> dict[int, str]:
    """OCR text of each page in ``indexes`` (``render(i)`` gives its PIL image)."""
    version = check_available(options.languages)
    cache = OcrCache(options.cache) if options.cache else None
    texts: dict[int, str] = {}
    total = len(indexes)
    pending: dict[Future, tuple[int, str]] = {}
    workers = _workers(options)

    def finish(done: set[Future]) -> None:
        for future in done:
            index, key = pending.pop(future)
            texts[index] = future.result()
            if cache is not None:
                cache.put(key, texts[index])
            if progress:
                progress(len(texts), total)

    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="ocr") as pool:
            try:
                for index in indexes:
                    image = render(index)
                    key = image_key(image, options.languages, version)
                    hit = cache.get(key) if cache is not None else None
                    if hit is not None:
                        texts[index] = hit
                        if progress:
                            progress(len(texts), total)
                        continue
                    # At most two rendered pages wait per tesseract process (page images are large).
                    while len(pending) >= 2 * workers:
                        done, _ = wait(pending, return_when=FIRST_COMPLETED)
                        finish(done)
                    pending[pool.submit(read_page, image, options.languages)] = (index, key)
                    del image
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    finish(done)
            finally:
                for future in pending:
                    future.cancel()
    finally:
        if cache is not None:
            cache.close()
    return texts
