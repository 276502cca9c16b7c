"""Background ingest jobs for the HTTP API: an upload returns a job at once, the job reports per-file progress.

A :class:`Jobs` runs one ingest at a time (ingest is CPU-bound and a knowledge
base has one batch writer) on its own worker thread, and keeps the last
``keep`` finished jobs for ``GET /v1/jobs/{id}``. A job's JSON shape::

    {"id", "kb", "status": "queued|running|done|failed", "error",
     "files": [{"source", "status", "chunks", "reason", "stage", "progress", "doc_id", "pages"}]}

A file's ``status`` is ``queued`` or ``running`` while the job runs, then the
ingest result: ``added``, ``replaced``, ``unchanged`` or ``failed`` (with its
``reason``). A job is ``failed`` when it raised or when every file failed.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from rag.errors import HopragError
from rag.types import IngestReport

log = logging.getLogger(__name__)

# (progress callback) -> report: the ingest call a job runs.
IngestCall = Callable[[Callable[[str, str, float], None]], IngestReport]


@dataclass
class FileState:
    source: str
    status: str = "queued"
    chunks: int = 0
    reason: str = ""
    stage: str = ""
    progress: float = 0.0
    doc_id: str = ""
    pages: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Job:
    id: str
    kb: str
    files: list[FileState]
    status: str = "queued"
    error: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "id": self.id,
                "kb": self.kb,
                "status": self.status,
                "error": self.error or None,
                "files": [f.to_dict() for f in self.files],
            }

    # ---- updates from the worker --------------------------------------------------
    def _file(self, source: str) -> FileState:
        for f in self.files:
            if f.source == source:
                return f
        # A URL may bring more pages than were asked for (crawl): each becomes a row.
        f = FileState(source)
        self.files.append(f)
        return f

    def progress(self, source: str, stage: str, fraction: float) -> None:
        with self._lock:
            f = self._file(source)
            if f.status in ("queued", "running"):
                f.status, f.stage, f.progress = "running", stage, round(float(fraction), 3)

    def finish(self, report: IngestReport) -> None:
        with self._lock:
            for r in report.files:
                f = self._file(r.source)
                f.status, f.chunks, f.reason, f.doc_id, f.pages = r.status, r.chunks, r.reason, r.doc_id, r.pages
                f.stage, f.progress = "done" if r.status != "failed" else "failed", 1.0
            for f in self.files:  # an input the report does not name (nothing found at a URL)
                if f.status in ("queued", "running"):
                    f.status, f.reason = "failed", f.reason or "nothing was ingested from it"
            ok = [f for f in self.files if f.status != "failed"]
            self.status = "done" if ok else "failed"
            if not ok:
                self.error = "no input could be ingested (see each file's reason)"

    def fail(self, message: str) -> None:
        with self._lock:
            self.status, self.error = "failed", message
            for f in self.files:
                if f.status in ("queued", "running"):
                    f.status, f.reason = "failed", message


class Jobs:
    """Runs ingest jobs one after another on a worker thread; remembers the last ``keep`` jobs."""

    def __init__(self, keep: int = 200) -> None:
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hoprag-ingest")

    def submit(self, kb: str, sources: list[str], call: IngestCall) -> Job:
        job = Job(f"job-{uuid.uuid4().hex[:16]}", kb, [FileState(s) for s in sources])
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self.keep:
                oldest = next(iter(self._jobs.values()))
                if oldest.status in ("queued", "running"):
                    break
                self._jobs.popitem(last=False)
        self._pool.submit(self._run, job, call)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _run(self, job: Job, call: IngestCall) -> None:
        with job._lock:
            job.status = "running"
        try:
            job.finish(call(job.progress))
        except HopragError as exc:
            log.warning("ingest job %s failed: %s", job.id, exc)
            job.fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - a job must end in a state, whatever broke
            log.exception("ingest job %s crashed", job.id)
            job.fail(f"internal error: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
