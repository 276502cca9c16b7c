"""One writer at a time per index, across threads and processes, and fresh reads after another process wrote.

Why: the embedded Chroma (``PersistentClient``) keeps its vector index in
memory; two processes that both write to one data directory silently overwrite
each other's index files (queries then fail with "Error finding id"), even when
their writes do not overlap in time. The manifest and the BM25 files are
read-modify-write too. So every write holds an exclusive ``fcntl.flock`` on
``write.lock`` (a second writer waits up to ``timeout_s``, then gets a
:class:`StoreError`), and bumps a generation token (``write.gen``). A process
that sees a token it did not write reloads its embedded client before reading
or writing, so it never writes from a stale in-memory index.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from rag.errors import StoreError

log = logging.getLogger(__name__)

_GUARDS: dict[str, "IndexGuard"] = {}
_GUARDS_LOCK = threading.Lock()


class IndexGuard:
    """The write lock and generation token of one lock directory, shared by every Store of this process."""

    def __init__(self, lock_dir: Path) -> None:
        self.lock_dir = lock_dir
        self.lock_path = lock_dir / "write.lock"
        self.gen_path = lock_dir / "write.gen"
        self._rlock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._seen = self.token()
        self.version = 0  # bumped each time this process notices another process's write
        self._reload: Callable[[], None] | None = None

    @classmethod
    def of(cls, lock_dir: Path) -> "IndexGuard":
        """The guard of ``lock_dir`` (one per directory per process)."""
        lock_dir.mkdir(parents=True, exist_ok=True)
        key = str(lock_dir.resolve())
        with _GUARDS_LOCK:
            guard = _GUARDS.get(key)
            if guard is None:
                guard = _GUARDS[key] = cls(lock_dir)
            return guard

    def on_foreign_write(self, reload: Callable[[], None]) -> None:
        """Call ``reload`` (under the lock) when another process wrote since this one last looked."""
        self._reload = reload

    # ---- generation --------------------------------------------------------------
    def token(self) -> str:
        try:
            return self.gen_path.read_text(encoding="ascii")
        except OSError:
            return ""

    def _bump(self) -> None:
        token = f"{os.getpid()}-{time.time_ns()}-{os.urandom(4).hex()}"
        tmp = self.gen_path.with_name(f"write.gen.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(token, encoding="ascii")
        os.replace(tmp, self.gen_path)  # readers see the old or the new token, never half of one
        self._seen = token

    def refresh(self, timeout_s: float) -> None:
        """Reload if another process wrote since this process last read or wrote (cheap when nothing changed)."""
        if self._reload is None or self.token() == self._seen:
            return  # nothing to reload (a Chroma server is always current), or nothing changed
        with self.hold(timeout_s):
            pass  # hold() reloads under the lock

    def _reload_if_stale(self) -> None:
        current = self.token()
        if current != self._seen:
            if self._reload is not None:
                log.info("index %s was written by another process: reloading", self.lock_dir)
                self._reload()
            self.version += 1  # readers of other files (BM25) compare this to reload too
            self._seen = current

    # ---- the lock ------------------------------------------------------------------
    @contextmanager
    def hold(self, timeout_s: float, write: bool = False) -> Iterator[None]:
        """Hold the lock (re-entrant within a thread); with ``write`` bump the generation on exit."""
        if not self._rlock.acquire(timeout=timeout_s):
            raise StoreError(
                f"another writer in this process held {self.lock_path} for over {timeout_s:g}s; try again later"
            )
        try:
            if self._depth == 0:
                self._fd = _flock(self.lock_path, timeout_s)
                self._reload_if_stale()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if write:
                    self._bump()
                if self._depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                    os.close(self._fd)
                    self._fd = None
        finally:
            self._rlock.release()


def _flock(path: Path, timeout_s: float) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _read_holder(fd)
                os.close(fd)
                raise StoreError(
                    f"the index is locked by another process{holder} for over {timeout_s:g}s ({path}). "
                    "Wait for it to finish, or, to write from several processes at once, run a Chroma server "
                    "(chroma run --host 127.0.0.1 --port 8000 --path DIR) and set HOPRAG_CHROMA_URL in every process"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
