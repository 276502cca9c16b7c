"""One writer at a time per index, across threads and processes, and fresh reads after another process wrote.

Why: the embedded Chroma keeps its vector index in memory; two processes that
both write to one data directory silently overwrite each other's index files
(queries then fail with "Error finding id"), even when their writes do not
overlap in time. The manifest and the BM25 files are read-modify-write too. So
every write holds the index lock (``write.lock``; a second writer waits up to
``timeout_s``, then gets a :class:`StoreError` naming the holder's pid), and
replaces a generation token (``write.gen``). A process that sees a token it did
not write reloads its embedded client before reading or writing, so it never
writes from a stale in-memory index.

Every lock here is a :class:`FileMutex`: a ``filelock`` file lock (``flock``
on POSIX, ``msvcrt`` on Windows; the OS drops it when its holder dies, even by
kill -9) behind a re-entrant thread lock.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from filelock import FileLock, Timeout

from rag.errors import StoreError
from rag.store.layout import GENERATION_FILE, WRITE_LOCK_FILE

log = logging.getLogger(__name__)

_GUARDS: dict[str, "IndexGuard"] = {}
_GUARDS_LOCK = threading.Lock()

# The advice of the index lock's timeout message.
SERVER_ADVICE = (
    "Wait for it to finish, or, to write from several processes at once, run a Chroma server "
    "(chroma run --host 127.0.0.1 --port 8000 --path DIR) and set HOPRAG_CHROMA_URL in every process"
)


def _write_pid(fd: int) -> None:
    """Record the holder in the lock file (read back by a waiter that times out)."""
    os.lseek(fd, 0, os.SEEK_SET)
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode("ascii"))


class FileMutex:
    """Exclusive across the threads of this process and across processes; re-entrant within a thread."""

    def __init__(self, path: Path, advice: str = "Wait for it to finish") -> None:
        self.path = path
        self.advice = advice
        self._rlock = threading.RLock()
        self._depth = 0
        self._file = FileLock(path, thread_local=False, on_acquired=_write_pid)

    @contextmanager
    def hold(self, timeout_s: float | None = None) -> Iterator[bool]:
        """Hold the lock (waiting up to ``timeout_s``, forever if None); yields whether this is the outermost hold."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        if not self._rlock.acquire(timeout=-1 if timeout_s is None else timeout_s):
            raise StoreError(f"another writer in this process held {self.path} for over {timeout_s:g}s; try again later")
        try:
            if self._depth == 0:
                left = -1 if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    self._file.acquire(timeout=left, poll_interval=0.02)
                except Timeout:
                    raise StoreError(
                        f"the index is locked by another process{self._holder()} for over {timeout_s:g}s "
                        f"({self.path}). {self.advice}"
                    ) from None
            self._depth += 1
            try:
                yield self._depth == 1
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._file.release()
        finally:
            self._rlock.release()

    def _holder(self) -> str:
        try:
            pid = self.path.read_text(encoding="ascii").strip()
        except (OSError, ValueError):
            return ""
        return f" (pid {pid})" if pid.isdigit() else ""


class IndexGuard:
    """The index lock and generation token of one lock directory, shared by every Store of this process."""

    def __init__(self, lock_dir: Path) -> None:
        self.lock_dir = lock_dir
        self.lock_path = lock_dir / WRITE_LOCK_FILE
        self.gen_path = lock_dir / GENERATION_FILE
        self._mutex = FileMutex(self.lock_path, SERVER_ADVICE)
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

    def _mark_written(self) -> None:
        token = f"{os.getpid()}-{time.time_ns()}-{os.urandom(4).hex()}"
        tmp = self.gen_path.with_name(f"{GENERATION_FILE}.{os.getpid()}.{threading.get_ident()}")
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
        """Hold the lock (re-entrant within a thread); with ``write`` replace the generation token on exit."""
        with self._mutex.hold(timeout_s) as outermost:
            if outermost:
                self._reload_if_stale()
            try:
                yield
            finally:
                if write:
                    self._mark_written()
