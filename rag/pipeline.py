"""The public entry point: :class:`RAG` ties store, embedder, retrieval and engine together."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from rag.config import Settings
from rag.conversation import Conversations
from rag.embed import make_embedder
from rag.embed.base import Embedder
from rag.engines import make_engine
from rag.engines.base import Engine
from rag.errors import ConfigError, EngineError
from rag.answer import AnswerJob, Draft, make_mode
from rag.answer.abstain import IndexMentions
from rag.answer.base import evidence_step
from rag.evidence.base import Evidence, ScorerContext
from rag.retrieve import Filters, RetrievalContext, make_retriever
from rag.store import Store
from rag.types import Answer, Citation, Document, Hit, IngestReport, Trace, TraceStep

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
        # How a missing embedder/engine is loaded (a sibling borrows its parent's, see sibling()).
        self._load_embedder: Callable[[], Embedder] = lambda: make_embedder(self.settings)
        self._load_engine: Callable[[], Engine] = lambda: make_engine(self.settings)
        self._lock = threading.Lock()
        self._conversations = Conversations()  # session id -> passages in context
        self._scorers: dict[str, object] = {}  # evidence scorers by name, built on first use
        self._chats: Any = None  # saved conversations (rag.chats), opened on first use
        self.store = Store.from_settings(settings)

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
                self._embedder = self._load_embedder()
            if not self._embedder_checked:
                self.store.check_embedder(self._embedder.model_id)
                self._embedder_checked = True
            return self._embedder

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self._load_engine()
            return self._engine

    def sibling(self, kb: str) -> "RAG":
        """Knowledge base ``kb`` of the same data dir, sharing this one's embedder and engine.

        Nothing loads now: each model loads once, on first use by either of them
        (the server opens every knowledge base this way). Closing the sibling
        leaves the shared engine open.
        """
        other = RAG(self.settings.replace(kb=kb), embedder=self._embedder, engine=self._engine)
        other._owns_engine = False
        other._load_embedder = lambda: self.embedder
        other._load_engine = lambda: self.engine
        return other

    def _context(self) -> RetrievalContext:
        return RetrievalContext(self.store, self.embedder, engine=lambda: self.engine)

    # ---- write side ------------------------------------------------------------
    def ingest(
        self,
        paths_or_bytes: Iterable[str | Path | tuple[str, bytes]],
        progress: Progress | None = None,
        *,
        password: str | None = None,
        crawl_depth: int = 0,
        max_pages: int = 50,
        ray: str | None = None,
    ) -> IngestReport:
        """Ingest files, folders, http(s) URLs or ``(name, bytes)`` pairs; see :class:`IngestReport`.

        Never raises for a bad file: its :class:`FileResult` says ``failed`` with a
        reason. ``progress(source, stage, fraction)`` is called as work advances.
        ``password`` opens encrypted PDFs (never logged or stored); a URL also brings
        same-site pages up to ``crawl_depth`` links away (at most ``max_pages``).
        ``ray`` parses and embeds on a Ray cluster (its address; "" attaches to a local
        cluster or starts one) while this process writes each whole document to the store.
        """
        from ingest.pipeline import IngestOptions, Ingestor

        s = self.settings
        options = IngestOptions(
            s.segmenter, s.chunk_tokens, s.chunk_overlap, s.max_file_mb, password=password,
            ocr_languages=s.ocr_languages, allow_private_urls=s.allow_private_urls, crawl_depth=crawl_depth,
            max_pages=max_pages,
        )
        if ray is None:
            return Ingestor(self.store, self.embedder, options).ingest(paths_or_bytes, progress=progress)
        from ingest.distributed import RayRunner

        runner = RayRunner(s, ray or None)
        try:
            return Ingestor(self.store, None, options, runner=runner).ingest(paths_or_bytes, progress=progress)
        finally:
            runner.close()

    def documents(self) -> list[Document]:
        """The documents in this knowledge base."""
        return self.store.documents()

    def original(self, doc_id: str) -> Path | None:
        """The stored copy of document ``doc_id``'s file (PDFs are kept for the page view), if there is one."""
        found = self.store.originals(doc_id)
        return found[0] if found else None

    def delete(self, doc_id: str) -> Document:
        """Remove a document (id, id prefix or source) from every index."""
        doc = self.store.resolve(doc_id)
        self.store.delete(doc.doc_id)
        return doc

    # ---- read side -------------------------------------------------------------
    def retrieve(
        self, query: str, k: int | None = None, filters: Filters | dict | None = None, *,
        alternatives: Sequence[tuple[str, float]] = (), **overrides: Any
    ) -> list[Hit]:
        """The top-``k`` passages for ``query`` (default ``settings.top_k``) with the configured strategy.

        ``filters`` is a :class:`Filters` or a dict with ``doc_id``, ``source``,
        ``page_min``, ``page_max``; ``alternatives`` further weighted queries whose rankings are fused
        with ``query``'s (a follow-up's :attr:`rag.followup.Rewrite.alternatives`); ``overrides`` are
        :class:`Settings` fields for this call only (e.g. ``strategy="hybrid"``).
        """
        hits, _ = self._retrieve(query, k, Filters.of(filters), self._settings(overrides), alternatives)
        return hits

    def _settings(self, overrides: dict[str, Any]) -> Settings:
        return self.settings.replace(**overrides) if overrides else self.settings

    def _retrieve(
        self, query: str, k: int | None, filters: Filters | None, settings: Settings,
        alternatives: Sequence[tuple[str, float]] = (),
    ) -> tuple[list[Hit], list[TraceStep]]:
        query = _check_question(query)
        retriever = make_retriever(settings.strategy, self._context(), settings)
        k = k or settings.top_k

        def first_stage(n: int) -> tuple[list[Hit], list[TraceStep]]:
            if alternatives:  # a follow-up unsure of its referent: its searches' rankings fused
                from rag.followup import retrieve_fused

                return retrieve_fused(retriever.retrieve, query, alternatives, n, filters)
            return retriever.retrieve(query, n, filters)

        if settings.reranker == "none":
            return first_stage(k)
        # Rerank: the first stage fetches rerank_candidates, the reranker keeps the best k.
        hits, steps = first_stage(max(k, settings.rerank_candidates))
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

    def rewrite(self, question: str, history: History | None = None, *, session: str | None = None,
                **overrides: Any):
        """``question`` as retrieval searches it in this conversation (:class:`rag.followup.Rewrite`): a
        follow-up made standalone by the ``followup_rewrite`` rewriter, other questions as typed."""
        return self._rewrite(_check_question(question), history or (), session, self._settings(overrides))

    def _rewrite(self, question: str, history: History, session: str | None, settings: Settings):
        from rag.followup import FollowupContext, resolve_mode, rewrite
        from rag.strategies.hops import name_index

        passages = self._conversations.get(session, 2 * settings.top_k).passages if session and history else ()
        ctx = FollowupContext(question, history, passages, lambda: name_index(self.store), lambda: self.engine)
        return rewrite(resolve_mode(settings.followup_rewrite), ctx, settings)

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
        conversation: str | None = None,
        owner: str = "local",
        **overrides: Any,
    ) -> Iterator[str | Answer]:
        """Yield answer text pieces as they are generated, then the final :class:`Answer`.

        If the LLM cannot be reached or fails, no text is yielded and the Answer
        is retrieval-only: ``error`` says what to check, ``citations`` list the
        passages found. ``conversation`` (an id) answers inside that saved conversation of ``owner``
        (see :meth:`conversations`): its stored turns are the history and the finished turn is saved.
        """
        if conversation is not None:
            if history:
                raise ConfigError("pass history or conversation=, not both: a saved conversation has its own history")
            yield from self.conversations().stream(
                self.stream, question, conversation, owner=owner, settings=self._settings(overrides),
                session=session, filters=filters, **overrides)
            return
        settings = self._settings(overrides)
        t0 = time.perf_counter()
        # Retrieval searches the follow-up made standalone; the prompt keeps the user's own words.
        rewritten = self._rewrite(question, history or (), session, settings)
        hits, steps = self._retrieve(rewritten.query, settings.top_k, Filters.of(filters), settings,
                                     rewritten.alternatives)
        steps = [rewritten.step(), *steps] if history else steps
        t_retrieve = time.perf_counter() - t0
        if not hits:
            msg = (
                "The knowledge base is empty: add documents first (hoprag ingest PATH or the upload panel)."
                if not self.store.documents()
                else "No passage in the knowledge base matches this question."
            )
            yield Answer(question, msg, (), (), Trace(tuple(steps)), timings={"retrieve_s": t_retrieve})
            return
        retrieved = {h.chunk.id for h in hits}
        if settings.order == "stable":
            # Earlier passages keep their positions so the prompt prefix (and its KV cache) is reused.
            hits = self._conversations.arrange(session, hits, max_passages=2 * max(settings.top_k, len(hits)))
        mode = make_mode(settings)
        timings = {"retrieve_s": t_retrieve}

        def rank_evidence() -> list[Evidence]:
            t = time.perf_counter()
            ranked = self._rank_evidence(rewritten.query, hits, retrieved, settings)  # a standalone question
            timings["evidence_s"] = time.perf_counter() - t
            steps.append(evidence_step(ranked, hits, timings["evidence_s"], settings.evidence_scorer))
            return ranked

        job = AnswerJob(question, hits, history or (), settings, session, lambda: self.engine, rank_evidence,
                        mentions=IndexMentions(self.store.bm25_index))
        draft: Draft | None = None
        for item in mode.stream(job):
            if isinstance(item, Draft):
                draft = item
            else:
                yield item
        assert draft is not None
        job.evidence()  # highlights need it even when the mode did not
        steps.extend(draft.steps)
        total = time.perf_counter() - t0
        timings["ttft_s"] = t_retrieve + draft.usage.ttft_s if mode.uses_llm else timings.get("evidence_s", 0.0) + t_retrieve
        timings["total_s"] = total
        yield Answer(
            question,
            draft.text,
            self._locate(draft.citations, hits),
            tuple(hits),
            Trace(tuple(steps)),
            draft.usage,
            timings=timings,
            error=draft.error,
            mode=mode.name,
            sentences=draft.sentences,
            abstained=draft.abstained,
            unsupported=draft.unsupported,
        )

    def rank_evidence(self, question: str, hits: Sequence[Hit], settings: Settings | None = None) -> list[Evidence]:
        """Every sentence of ``hits``, best evidence for ``question`` first, by the ``evidence_scorer`` of
        ``settings`` (default: this knowledge base's); scorers are built once and share the loaded models."""
        from rag.evidence import make_scorer, rank_sentences

        settings = settings or self.settings
        scorer = self._scorers.get(settings.evidence_scorer)
        if scorer is None:
            context = ScorerContext(embedder=lambda: self.embedder, engine=lambda: self.engine)
            scorer = self._scorers[settings.evidence_scorer] = make_scorer(settings.evidence_scorer, context, settings)
        return rank_sentences(question, hits, scorer)

    def _rank_evidence(self, question: str, hits: Sequence[Hit], retrieved: set[str], settings: Settings) -> list[Evidence]:
        """This turn's passages' sentences, best evidence first (earlier turns' passages are not evidence)."""
        return [e for e in self.rank_evidence(question, hits, settings) if hits[e.sentence.hit].chunk.id in retrieved]

    def _locate(self, citations: Sequence[Citation], hits: Sequence[Hit]) -> tuple[Citation, ...]:
        """PDF citations' highlights with the page and the position of each sentence on it (for the page view)."""
        chunks = {h.chunk.id: h.chunk for h in hits}
        out = []
        for c in citations:
            chunk = chunks.get(c.chunk_id)
            path = self.original(c.doc_id) if c.highlights and chunk is not None and chunk.page is not None else None
            if path is None or path.suffix.lower() != ".pdf":
                out.append(c)
                continue
            from rag.pdfview import locate

            pages = range(chunk.page, (chunk.page_end or chunk.page) + 1)
            located = []
            for h in c.highlights:
                page, boxes = locate(path, pages, c.text[h.start : h.end])
                located.append(replace(h, page=page if page is not None else chunk.page, boxes=boxes))
            out.append(replace(c, highlights=tuple(located)))
        return tuple(out)

    def conversations(self):
        """The saved conversations of this data dir (:class:`rag.chats.Chats`): list, get, rename, delete,
        export, import; ``ask(..., conversation=ID)`` answers inside one."""
        from rag.chats import Chats, ConversationStore

        with self._lock:
            if self._chats is None:
                self._chats = Chats(ConversationStore.in_data_dir(self.settings.data_dir), self.settings.kb,
                                    self._documents_of)
            return self._chats

    def _documents_of(self, kb: str) -> list[Document]:
        if kb == self.settings.kb:
            return self.documents()
        with self.sibling(kb) as other:
            return other.documents()

    # ---- lifecycle -------------------------------------------------------------
    def close(self) -> None:
        """Release the store and any engine this instance created."""
        self.store.close()
        if self._chats is not None:
            self._chats.close()
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
