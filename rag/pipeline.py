"""The public entry point: :class:`RAG` ties store, embedder, retrieval and engine together."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from rag.config import Settings
from rag.conversation import Conversations
from rag.embed import make_embedder
from rag.embed.base import Embedder
from rag.engines import make_engine
from rag.engines.base import Engine
from rag.errors import ConfigError, EngineError, HopragError
from rag.generate import STOP, build_prompt, cite
from rag.retrieve import Filters, RetrievalContext, make_retriever
from rag.store import Store
from rag.types import Answer, Citation, Document, Hit, IngestReport, Trace, TraceStep, Usage

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 4000
History = Sequence[tuple[str, str]]
# (source, stage, fraction done); stage is parse | chunk | embed | store | done | failed
Progress = Callable[[str, str, float], None]


class RAG:
    """A knowledge base you can ingest into and ask questions of.

    >>> with RAG.open("data", settings=Settings(kb="docs")) as rag:   # doctest: +SKIP
    ...     rag.ingest(["README.md"])
    ...     print(rag.ask("How do I run the tests?").text)

    The embedder loads on first use of ingest/retrieve, the LLM on first ask, so
    opening a knowledge base is cheap. Engines and embedders can be injected
    (shared between instances, e.g. in tests or a server).
    """

    def __init__(self, settings: Settings, *, embedder: Embedder | None = None, engine: Engine | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._embedder_checked = False
        self._engine = engine
        self._owns_engine = engine is None  # injected engines are the caller's to close
        self._lock = threading.Lock()
        self._conversations = Conversations()  # session id -> passages in context
        self.store = Store(settings.index_dir, settings.kb, settings.chroma_url, lock_timeout_s=settings.lock_timeout_s)

    @classmethod
    def open(cls, path_or_url: str | Path | None = None, settings: Settings | None = None, **kwargs: Any) -> "RAG":
        """Open the knowledge base under data dir ``path_or_url`` (or a Chroma server URL).

        ``settings`` default to :meth:`Settings.load` (env ``HOPRAG_*`` and
        ``hoprag.toml``); ``embedder=`` / ``engine=`` share already loaded models.
        Use it as a context manager so the store (and any engine it loaded) closes.
        """
        settings = settings or Settings.load()
        if path_or_url is not None:
            text = str(path_or_url)
            if text.startswith(("http://", "https://")):
                settings = settings.replace(chroma_url=text)
            else:
                settings = settings.replace(data_dir=text)
        return cls(settings, **kwargs)

    # ---- components (lazy) -----------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = make_embedder(self.settings)
            if not self._embedder_checked:
                self.store.check_embedder(self._embedder.model_id)
                self._embedder_checked = True
            return self._embedder

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = make_engine(self.settings)
            return self._engine

    def _context(self) -> RetrievalContext:
        return RetrievalContext(self.store, self.embedder, engine=lambda: self.engine)

    # ---- write side ------------------------------------------------------------
    def ingest(
        self, paths_or_bytes: Iterable[str | Path | tuple[str, bytes]], progress: Progress | None = None
    ) -> IngestReport:
        """Ingest files, folders or ``(name, bytes)`` pairs; see :class:`IngestReport`.

        Never raises for a bad file: its :class:`FileResult` says ``failed`` with a
        reason. ``progress(source, stage, fraction)`` is called as work advances.
        """
        from ingest.pipeline import IngestOptions, Ingestor

        s = self.settings
        options = IngestOptions(s.segmenter, s.chunk_tokens, s.chunk_overlap, s.max_file_mb)
        return Ingestor(self.store, self.embedder, options).ingest(paths_or_bytes, progress=progress)

    def documents(self) -> list[Document]:
        """The documents in this knowledge base."""
        return self.store.documents()

    def delete(self, doc_id: str) -> Document:
        """Remove a document (id, id prefix or source) from every index."""
        doc = self.store.resolve(doc_id)
        self.store.delete(doc.doc_id)
        return doc

    # ---- read side -------------------------------------------------------------
    def retrieve(
        self, query: str, k: int | None = None, filters: Filters | dict | None = None, **overrides: Any
    ) -> list[Hit]:
        """The top-``k`` passages for ``query`` (default ``settings.top_k``) with the configured strategy.

        ``filters`` is a :class:`Filters` or a dict with ``doc_id``, ``source``,
        ``page_min``, ``page_max``; ``overrides`` are :class:`Settings` fields for
        this call only (e.g. ``strategy="hybrid"``).
        """
        hits, _ = self._retrieve(query, k, Filters.of(filters), self._settings(overrides))
        return hits

    def _settings(self, overrides: dict[str, Any]) -> Settings:
        return self.settings.replace(**overrides) if overrides else self.settings

    def _retrieve(
        self, query: str, k: int | None, filters: Filters | None, settings: Settings
    ) -> tuple[list[Hit], list[TraceStep]]:
        query = _check_question(query)
        retriever = make_retriever(settings.strategy, self._context(), settings)
        k = k or settings.top_k
        if settings.reranker == "none":
            return retriever.retrieve(query, k, filters)
        # Rerank: the first stage fetches rerank_candidates, the reranker keeps the best k.
        hits, steps = retriever.retrieve(query, max(k, settings.rerank_candidates), filters)
        hits, step = self._rerank(query, hits, k, settings)
        return hits, [*steps, step]

    def _rerank(self, query: str, hits: list[Hit], k: int, settings: Settings) -> tuple[list[Hit], TraceStep]:
        """Rerank with the LLM; if the engine fails, keep the first-stage order (the step records why)."""
        from rag.rerank import make_reranker

        reranker = make_reranker(settings.reranker, self.engine, settings)
        try:
            return reranker.rerank(query, hits, k)
        except EngineError as exc:
            log.warning("reranker %s failed, keeping the first-stage order: %s", settings.reranker, exc)
            return hits[:k], TraceStep(f"rerank:{settings.reranker}", query, detail={"error": str(exc)})

    def ask(self, question: str, history: History | None = None, **overrides: Any) -> Answer:
        """Answer ``question`` from the knowledge base (blocking); see :meth:`stream`.

        ``history`` is the earlier ``(question, answer)`` pairs of the conversation;
        ``overrides`` are :class:`Settings` fields for this call (``top_k=3``,
        ``max_new_tokens=64``, ...) plus ``filters`` and ``session``.
        """
        answer = None
        for item in self.stream(question, history, **overrides):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def stream(
        self,
        question: str,
        history: History | None = None,
        *,
        filters: Filters | dict | None = None,
        session: str | None = None,
        **overrides: Any,
    ) -> Iterator[str | Answer]:
        """Yield answer text pieces as they are generated, then the final :class:`Answer`.

        If the LLM cannot be reached or fails, no text is yielded and the Answer
        is retrieval-only: ``error`` says what to check, ``citations`` list the
        passages found.
        """
        settings = self._settings(overrides)
        t0 = time.perf_counter()
        hits, steps = self._retrieve(question, settings.top_k, Filters.of(filters), settings)
        t_retrieve = time.perf_counter() - t0
        if not hits:
            msg = (
                "The knowledge base is empty: add documents first (hoprag ingest PATH or the upload panel)."
                if not self.store.documents()
                else "No passage in the knowledge base matches this question."
            )
            yield Answer(question, msg, (), (), Trace(tuple(steps)), timings={"retrieve_s": t_retrieve})
            return
        if settings.order == "stable":
            # Earlier passages keep their positions so the prompt prefix (and its KV cache) is reused.
            hits = self._conversations.arrange(session, hits, max_passages=2 * max(settings.top_k, len(hits)))
        prompt = build_prompt(question, hits, history or ())
        parts: list[str] = []
        usage = Usage()
        error = ""
        try:
            for item in self.engine.stream(
                prompt,
                max_tokens=settings.max_new_tokens,
                stop=STOP,
                temperature=settings.temperature,
                session=session,
            ):
                if isinstance(item, Usage):
                    usage = item
                else:
                    parts.append(item)
                    yield item
        except (EngineError, ConfigError, HopragError) as exc:
            if parts:
                raise
            error = str(exc)
            log.warning("generation failed, answering with sources only: %s", exc)
        total = time.perf_counter() - t0
        if error:
            citations = tuple(
                Citation(i, h.chunk.id, h.chunk.doc_id, h.chunk.source, h.chunk.page, h.chunk.section, h.chunk.text, True)
                for i, h in enumerate(hits, 1)
            )
            text = ""
        else:
            text, citations = cite("".join(parts), hits)
        steps.append(
            TraceStep(
                "generate",
                detail={
                    "prompt_tokens": usage.prompt_tokens,
                    "cached_tokens": usage.cached_tokens,
                    "completion_tokens": usage.completion_tokens,
                },
                seconds=usage.total_s,
            )
        )
        yield Answer(
            question,
            text,
            citations,
            tuple(hits),
            Trace(tuple(steps)),
            usage,
            timings={"retrieve_s": t_retrieve, "ttft_s": t_retrieve + usage.ttft_s, "total_s": total},
            error=error,
        )

    # ---- lifecycle -------------------------------------------------------------
    def close(self) -> None:
        """Release the store and any engine this instance created."""
        self.store.close()
        if self._owns_engine and self._engine is not None:
            self._engine.close()

    def __enter__(self) -> "RAG":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise ConfigError("the question is empty: type a question")
    if len(question) > MAX_QUESTION_CHARS:
        raise ConfigError(
            f"the question has {len(question)} characters; the limit is {MAX_QUESTION_CHARS}: shorten it"
        )
    return question.strip()
