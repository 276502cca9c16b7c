"""Ingest on a Ray cluster: parsing (OCR included) and embedding run as Ray tasks on the cluster's nodes.

The driver (``hoprag ingest --ray``) triages, commits and reports as a local
ingest does (:class:`ingest.pipeline.Ingestor` with this module's
:class:`RayRunner`). Per file, one task reads, loads and segments it from the
bytes the driver sends (so a remote node needs no shared disk); a file with more
than :data:`SHARD_CHUNKS` chunks is then embedded in shards of that size, one
task each, so two big PDFs still spread over every node. The driver looks up the
embedding cache first and sends only what it lacks. A document is committed,
whole, once every one of its tasks returned; a task whose worker dies is retried
by Ray (``max_retries``), and one that still fails fails only its file.

Workers build the embedder from the driver's :class:`~rag.config.Settings`, once
per worker process, with ``embed_threads`` set to the task's CPUs. Every node
needs hoprag installed with the ``local`` extra (the embedding model is a pip
package) and the same version as the driver.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any, Iterator, Sequence

import numpy as np

from rag.config import Settings
from rag.errors import HopragError, IngestError
from rag.extras import require

from ingest.embed_cache import CacheLookup, EmbeddingCache, text_key
from ingest.parse import ParseJob, Parsed, parse, read, token_counter
from ingest.pipeline import Prepared, Progress

log = logging.getLogger(__name__)

# Chunks per embedding task: small enough that a 1,400-chunk PDF keeps two nodes busy to the end,
# big enough that the per-task cost (about 5 ms) stays under 1%.
SHARD_CHUNKS = 64
# Task retries when a worker process or node dies (Ray's system failures; a parser error is not retried).
MAX_RETRIES = 3
# Test hook, read by the workers: a parse task sleeps this many seconds first (a test kills its worker meanwhile).
PAUSE_ENV = "HOPRAG_RAY_PARSE_PAUSE_S"


def _ray() -> Any:
    return require("ray", "ray")


# ---- worker side ------------------------------------------------------------------------------
_worker_embedder: tuple[Settings, Any] | None = None


def _embedder(settings: Settings) -> Any:
    """This worker process's embedder for ``settings``, built once, with the task's CPUs as threads."""
    global _worker_embedder
    if _worker_embedder is None or _worker_embedder[0] != settings:
        from rag.embed import make_embedder

        cpus = max(1, int(_ray().get_runtime_context().get_assigned_resources().get("CPU", 1)))
        os.environ.setdefault("RAYON_NUM_THREADS", str(cpus))  # the Rust tokenizer's pool
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        threads = settings.embed_threads or cpus
        _worker_embedder = (settings, make_embedder(settings.replace(embed_threads=threads)))
    return _worker_embedder[1]


def model_id_task(settings: Settings) -> str:
    """The embedder's id (and a warm worker: the model is loaded)."""
    return _embedder(settings).model_id


def parse_task(job: ParseJob, settings: Settings, embed_up_to: int) -> tuple[Parsed | str, np.ndarray | None]:
    """Parse one file; embed it too when it has at most ``embed_up_to`` chunks (one task instead of two)."""
    pause = float(os.environ.get(PAUSE_ENV) or 0)
    if pause:
        time.sleep(pause)
    embedder = _embedder(settings)
    try:
        parsed = parse(job, token_counter(embedder) or embedder.count_tokens)
    except HopragError as exc:
        return str(exc), None
    except Exception as exc:  # a parser bug on a strange file must not kill the batch
        return f"cannot parse ({type(exc).__name__}: {str(exc)[:80]})", None
    if len(parsed.chunks) > embed_up_to:
        return parsed, None
    return parsed, embedder.embed([c.embed_text for c in parsed.chunks])


def embed_task(texts: Sequence[str], settings: Settings) -> np.ndarray:
    return _embedder(settings).embed(list(texts))


# ---- driver side ------------------------------------------------------------------------------
@dataclasses.dataclass
class _Doc:
    """One file between its parse task and its commit."""

    index: int
    source: str
    parsed: Parsed | None = None
    lookup: CacheLookup | None = None
    shards: list[np.ndarray | None] = dataclasses.field(default_factory=list)
    left: int = 0


class RayRunner:
    """A :class:`ingest.pipeline.Runner` on the Ray cluster at ``address`` (None: ``ray.init()``'s own choice).

    Connects on first use; disconnects in :meth:`close` if it connected.
    """

    def __init__(self, settings: Settings, address: str | None = None, *, window: int = 0) -> None:
        self.settings = settings
        self.address = address
        self.window = window  # files in flight (bytes held by the driver); 0: twice the cluster's CPUs
        self._connected = False
        self._model_id: str | None = None
        self._remote: dict[str, Any] = {}

    # ---- cluster ------------------------------------------------------------
    def connect(self) -> Any:
        ray = _ray()
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # hoprag touches no network it was not told to
            try:
                ray.init(address=self.address, log_to_driver=False, logging_level=logging.WARNING)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise HopragError(
                    f"cannot reach the Ray cluster at {self.address or 'auto'} ({str(exc).splitlines()[0][:120]}): "
                    "start it (ray start --head) or give its address: hoprag ingest PATH --ray HOST:PORT"
                ) from exc
            self._connected = True
        if not self._remote:
            opts = {"num_cpus": 1, "max_retries": MAX_RETRIES}
            self._remote = {
                "model_id": ray.remote(**opts)(model_id_task),
                "parse": ray.remote(**opts)(parse_task),
                "embed": ray.remote(**opts)(embed_task),
            }
        return ray

    def cpus(self) -> int:
        return max(1, int(self.connect().cluster_resources().get("CPU", 1)))

    def warm_up(self) -> None:
        """Load the embedder on every alive node (benchmarks time the ingest without the model load)."""
        ray = self.connect()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU")]
        ids = ray.get([
            self._remote["model_id"].options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False))
            .remote(self.settings)
            for n in nodes
        ])
        self._model_id = ids[0] if ids else self._model_id

    @property
    def model_id(self) -> str:
        if self._model_id is None:
            ray = self.connect()
            self._model_id = ray.get(self._remote["model_id"].remote(self.settings))
        return self._model_id

    def close(self) -> None:
        if self._connected:
            _ray().shutdown()
            self._connected = False

    # ---- the run ------------------------------------------------------------
    def run(self, jobs: Sequence[ParseJob], cache: EmbeddingCache | None, note: Progress) -> Iterator[Prepared]:
        ray = self.connect()
        settings = self.settings
        window = self.window or 2 * self.cpus()
        queue = list(enumerate(jobs))
        queue.reverse()
        in_flight: dict[Any, tuple[_Doc, int]] = {}  # task ref -> (its file, -1 for the parse task or the shard number)
        open_docs: dict[int, _Doc] = {}

        def submit_parse() -> Prepared | None:
            index, job = queue.pop()
            note(job.source, "parse", 0.0)
            try:
                # The bytes go with the task: a remote node needs no shared disk. OCR results are cached
                # on the node that reads the page (the driver's cache path may not exist there).
                remote_job = dataclasses.replace(job, data=read(job), path=None, ocr_cache=None)
            except IngestError as exc:
                return Prepared(index, str(exc))
            doc = open_docs[index] = _Doc(index, job.source)
            in_flight[self._remote["parse"].remote(remote_job, settings, SHARD_CHUNKS)] = (doc, -1)
            return None

        def fail(doc: _Doc, reason: str) -> Prepared:
            for ref, (other, _) in list(in_flight.items()):
                if other is doc:
                    ray.cancel(ref)
                    del in_flight[ref]
            open_docs.pop(doc.index, None)
            return Prepared(doc.index, reason)

        while queue or in_flight:
            while queue and len(open_docs) < window:
                refused = submit_parse()
                if refused is not None:
                    yield refused
            if not in_flight:
                continue
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            ref = ready[0]
            doc, shard = in_flight.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:
                log.warning("Ray task for %s failed: %s", doc.source, str(exc).splitlines()[0][:200])
                yield fail(doc, f"the Ray task failed after {MAX_RETRIES} retries ({type(exc).__name__})")
                continue
            if shard < 0:
                parsed, vectors = result
                if isinstance(parsed, str):
                    yield fail(doc, parsed)
                    continue
                doc.parsed = parsed
                texts = [c.embed_text for c in parsed.chunks]
                if vectors is not None:  # a small file: the parse task embedded it
                    open_docs.pop(doc.index)
                    if cache is not None:
                        cache.put([text_key(t) for t in texts], vectors)
                    yield Prepared(doc.index, parsed, np.asarray(vectors, dtype=np.float32))
                    continue
                doc.lookup = CacheLookup(cache, texts)
                missing = doc.lookup.to_embed
                note(doc.source, "embed", 0.3)
                if not missing:
                    yield _finish(open_docs, doc, None)
                    continue
                parts = [missing[i : i + SHARD_CHUNKS] for i in range(0, len(missing), SHARD_CHUNKS)]
                doc.shards = [None] * len(parts)
                doc.left = len(parts)
                for n, part in enumerate(parts):
                    in_flight[self._remote["embed"].remote(part, settings)] = (doc, n)
                continue
            doc.shards[shard] = result
            doc.left -= 1
            note(doc.source, "embed", 0.3 + 0.6 * (1 - doc.left / len(doc.shards)))
            if doc.left == 0:
                yield _finish(open_docs, doc, np.concatenate(doc.shards))


def _finish(open_docs: dict[int, _Doc], doc: _Doc, new: np.ndarray | None) -> Prepared:
    open_docs.pop(doc.index, None)
    return Prepared(doc.index, doc.parsed, doc.lookup.complete(new), doc.lookup.hits)


__all__ = ["MAX_RETRIES", "PAUSE_ENV", "SHARD_CHUNKS", "RayRunner"]
