"""Frozen dataclasses that cross module boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Chunk:
    """A stored piece of a document.

    ``text`` is the clean text shown to users; ``embed_text`` (title and section
    path prepended) is what was embedded.
    """

    id: str
    doc_id: str
    text: str
    source: str
    title: str = ""
    page: int | None = None
    page_end: int | None = None
    section: str = ""
    start: int = 0
    end: int = 0
    index: int = 0

    @property
    def embed_text(self) -> str:
        head = " > ".join(p for p in (self.title, self.section) if p)
        return f"{head}\n{self.text}" if head else self.text

    def metadata(self) -> dict[str, Any]:
        """Chroma-compatible metadata (no None values)."""
        meta: dict[str, Any] = {
            "doc_id": self.doc_id,
            "source": self.source,
            "title": self.title,
            "section": self.section,
            "start": self.start,
            "end": self.end,
            "index": self.index,
        }
        if self.page is not None:
            meta["page"] = self.page
            meta["page_end"] = self.page_end if self.page_end is not None else self.page
        return meta

    @classmethod
    def from_metadata(cls, id: str, text: str, meta: dict[str, Any]) -> "Chunk":
        return cls(
            id=id,
            doc_id=str(meta.get("doc_id", "")),
            text=text,
            source=str(meta.get("source", "")),
            title=str(meta.get("title", "")),
            page=meta.get("page"),
            page_end=meta.get("page_end"),
            section=str(meta.get("section", "")),
            start=int(meta.get("start", 0)),
            end=int(meta.get("end", 0)),
            index=int(meta.get("index", 0)),
        )


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its score (higher is better) and where it came from."""

    chunk: Chunk
    score: float
    rank: int = 0
    origin: str = "dense"


Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Span:
    """A stretch of a citation's text that supports the answer (an evidence sentence).

    ``start``/``end`` are character offsets into :attr:`Citation.text` (the cited
    chunk's text). ``score`` is the evidence scorer's (higher is better). For PDFs,
    ``page`` is the 1-based page the sentence is on and ``boxes`` its position on
    that page in PDF points, origin top-left: ``(left, top, right, bottom)`` per line.
    """

    start: int
    end: int
    score: float = 0.0
    page: int | None = None
    boxes: tuple[Box, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "score": self.score,
            "page": self.page,
            "boxes": [list(b) for b in self.boxes],
        }


@dataclass(frozen=True)
class Citation:
    """A passage the answer cites: ``number`` is the [n] marker in the text.

    ``highlights`` are the evidence sentences inside ``text`` (best first).
    """

    number: int
    chunk_id: str
    doc_id: str
    source: str
    page: int | None
    section: str
    text: str
    inferred: bool = False
    highlights: tuple[Span, ...] = ()

    @property
    def snippet(self) -> str:
        return self.text if len(self.text) <= 240 else self.text[:237] + "..."

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "source": self.source,
            "page": self.page,
            "section": self.section,
            "text": self.text,
            "snippet": self.snippet,
            "inferred": self.inferred,
            "highlights": [h.to_dict() for h in self.highlights],
        }


@dataclass(frozen=True)
class Usage:
    """What one generation cost: prompt tokens, how many came from a cache, time."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float = 0.0
    total_s: float = 0.0


@dataclass(frozen=True)
class TraceStep:
    """One step of how an answer was found (a retrieval hop, a rerank, ...)."""

    name: str
    query: str = ""
    hits: tuple[tuple[str, float], ...] = ()
    seconds: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Trace:
    """The steps behind an answer, in order."""

    steps: tuple[TraceStep, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": [
                {
                    "name": s.name,
                    "query": s.query,
                    "hits": [list(h) for h in s.hits],
                    "seconds": s.seconds,
                    "detail": s.detail,
                }
                for s in self.steps
            ]
        }


@dataclass(frozen=True)
class AnswerSentence:
    """One sentence of the answer text and whether the cited evidence supports it.

    ``start``/``end`` are offsets into :attr:`Answer.text`; ``supported`` is None
    when it was not checked (``generative`` mode); ``citations`` the [n] numbers
    of the passages whose evidence supports it; ``unverified`` the (start, end)
    offsets (into :attr:`Answer.text` too) of the words of a supported sentence
    that its supporting passage does not contain.
    """

    start: int
    end: int
    supported: bool | None = None
    score: float = 0.0
    citations: tuple[int, ...] = ()
    unverified: tuple[tuple[int, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "supported": self.supported,
            "score": self.score,
            "citations": list(self.citations),
            "unverified": [list(span) for span in self.unverified],
        }


@dataclass(frozen=True)
class Answer:
    """The result of a question: text, the passages it cites, and how it was made.

    ``passages`` are all the hits given to the LLM (in prompt order);
    ``citations`` the subset the text cites. ``error`` is set when generation
    failed and the answer is retrieval-only (``text`` is then empty).
    ``mode`` is the answer mode that made it; ``sentences`` the answer's
    sentences with their support check (``grounded``); ``unsupported`` the
    sentences a ``grounded`` answer left out because no passage supports them;
    ``abstained`` is True when no evidence cleared the threshold and the text
    says the documents do not answer.
    """

    question: str
    text: str
    citations: tuple[Citation, ...]
    passages: tuple[Hit, ...] = ()
    trace: Trace = Trace()
    usage: Usage = Usage()
    timings: dict[str, float] = field(default_factory=dict)
    error: str = ""
    mode: str = "generative"
    sentences: tuple[AnswerSentence, ...] = ()
    abstained: bool = False
    unsupported: tuple[str, ...] = ()

    @property
    def retrieval_only(self) -> bool:
        return bool(self.error)

    @property
    def evidence(self) -> tuple[tuple[Citation, Span], ...]:
        """Every highlighted evidence sentence with its citation, best score first."""
        pairs = [(c, h) for c in self.citations for h in c.highlights]
        return tuple(sorted(pairs, key=lambda p: -p[1].score))

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [
                {"chunk_id": h.chunk.id, "source": h.chunk.source, "page": h.chunk.page, "score": h.score}
                for h in self.passages
            ],
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "cached_tokens": self.usage.cached_tokens,
                "completion_tokens": self.usage.completion_tokens,
            },
            "timings": dict(self.timings),
            "trace": self.trace.to_dict(),
            "error": self.error or None,
            "mode": self.mode,
            "sentences": [x.to_dict() for x in self.sentences],
            "abstained": self.abstained,
            "unsupported": list(self.unsupported),
        }


@dataclass(frozen=True)
class Document:
    """A document in a knowledge base."""

    doc_id: str
    source: str
    title: str
    pages: int
    chunks: int
    added: float


@dataclass(frozen=True)
class FileResult:
    """What happened to one input of an ingest run."""

    source: str
    status: str  # "added" | "replaced" | "unchanged" | "failed"
    doc_id: str = ""
    pages: int = 0
    chunks: int = 0
    reason: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class IngestReport:
    """The outcome of an ingest run, one :class:`FileResult` per input."""

    files: tuple[FileResult, ...]
    seconds: float = 0.0

    @property
    def failed(self) -> tuple[FileResult, ...]:
        return tuple(f for f in self.files if f.status == "failed")

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def partial(self) -> bool:
        return bool(self.failed) and len(self.failed) < len(self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [f.__dict__ for f in self.files],
            "seconds": self.seconds,
            "ok": self.ok,
        }


@dataclass(frozen=True)
class Prompt:
    """A completion prompt: its text and where reusable prefixes end (character offsets).

    An engine with a prefix KV cache prefills it segment by segment
    (``boundaries``) and snapshots the cache at ``snapshots`` (a subset), so a
    later prompt sharing that prefix skips it. A frozen value, not a ``str``:
    string operations cannot silently drop the boundaries; ``text`` is the
    plain string.
    """

    text: str
    boundaries: tuple[int, ...] = ()
    snapshots: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"Prompt text must be a str, not {type(self.text).__name__}")
        bounds = tuple(sorted({b for b in self.boundaries if 0 < b < len(self.text)}))
        object.__setattr__(self, "boundaries", bounds)
        object.__setattr__(self, "snapshots", tuple(b for b in sorted(set(self.snapshots)) if b in bounds))

    def __str__(self) -> str:
        return self.text

    def __len__(self) -> int:
        return len(self.text)

    def segments(self) -> list[str]:
        """The text cut at every boundary (joined, they give ``text``)."""
        cuts = (0, *self.boundaries, len(self.text))
        return [self.text[a:b] for a, b in zip(cuts, cuts[1:])]

    def prefix(self, end: int) -> str:
        return self.text[:end]


@dataclass(frozen=True)
class Message:
    """One chat message: ``role`` is system, user or assistant."""

    role: str
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class ChatPrompt:
    """A prompt for a chat model: messages, oldest first (system rules, passages and question, history)."""

    messages: tuple[Message, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", tuple(self.messages))
        roles = {"system", "user", "assistant"}
        bad = [m.role for m in self.messages if m.role not in roles]
        if bad or not self.messages:
            raise ValueError(f"chat prompt needs messages with roles {sorted(roles)}; got {bad or 'none'}")

    def to_list(self) -> list[dict[str, str]]:
        return [m.to_dict() for m in self.messages]

    def __str__(self) -> str:
        return "\n\n".join(f"{m.role}: {m.content}" for m in self.messages)
