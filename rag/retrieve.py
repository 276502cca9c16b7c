"""First-stage retrieval strategies behind one interface, chosen by name.

Each strategy returns at most ``k`` hits (the evidence budget is the same for
all strategies) and the trace steps that produced them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from rag.embed.base import Embedder
from rag.errors import ConfigError
from rag.registry import Registry
from rag.store import Store
from rag.types import Hit, TraceStep


@dataclass(frozen=True)
class Filters:
    """Metadata filters: one document, one source, and/or a page range (inclusive)."""

    doc_id: str | None = None
    source: str | None = None
    page_min: int | None = None
    page_max: int | None = None

    def __post_init__(self) -> None:
        if self.page_min is not None and self.page_max is not None and self.page_min > self.page_max:
            raise ConfigError(f"page range {self.page_min}-{self.page_max} is empty: page_min must be <= page_max")

    @classmethod
    def of(cls, value: "Filters | dict[str, Any] | None") -> "Filters | None":
        if value is None or isinstance(value, Filters):
            return value
        allowed = {"doc_id", "source", "page_min", "page_max"}
        unknown = set(value) - allowed
        if unknown:
            raise ConfigError(f"unknown filter(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        return cls(**value)

    def where(self) -> dict[str, Any] | None:
        """The Chroma ``where`` clause."""
        parts: list[dict[str, Any]] = []
        if self.doc_id:
            parts.append({"doc_id": self.doc_id})
        if self.source:
            parts.append({"source": self.source})
        if self.page_min is not None:
            parts.append({"page": {"$gte": self.page_min}})
        if self.page_max is not None:
            parts.append({"page": {"$lte": self.page_max}})
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {"$and": parts}

    def accepts(self, hit: Hit) -> bool:
        c = hit.chunk
        if self.doc_id and c.doc_id != self.doc_id:
            return False
        if self.source and c.source != self.source:
            return False
        if self.page_min is not None and (c.page is None or c.page < self.page_min):
            return False
        if self.page_max is not None and (c.page is None or c.page > self.page_max):
            return False
        return True


@dataclass(frozen=True)
class RetrievalContext:
    """What strategies may use; ``engine`` is a thunk so the LLM loads only when needed."""

    store: Store
    embedder: Embedder
    engine: Callable[[], Any] | None = None


class Retriever(Protocol):
    """A first-stage strategy."""

    def retrieve(self, query: str, k: int, filters: Filters | None = None) -> tuple[list[Hit], list[TraceStep]]:
        """At most ``k`` hits for ``query``, best first, and the trace steps."""
        ...


RETRIEVERS: Registry[Retriever] = Registry("retrieval strategy", package="rag.strategies")


def trace_step(name: str, query: str, hits: list[Hit], t0: float, **detail: Any) -> TraceStep:
    return TraceStep(
        name=name,
        query=query,
        hits=tuple((h.chunk.id, round(h.score, 4)) for h in hits),
        seconds=time.perf_counter() - t0,
        detail=detail,
    )


class DenseRetriever:
    """Single-shot dense retrieval from Chroma."""

    def __init__(self, ctx: RetrievalContext, min_score: float = 0.0) -> None:
        self.ctx = ctx
        self.min_score = min_score

    def retrieve(self, query: str, k: int, filters: Filters | None = None) -> tuple[list[Hit], list[TraceStep]]:
        t0 = time.perf_counter()
        vec = self.ctx.embedder.embed([query])[0]
        hits = self.ctx.store.query(vec, k, where=filters.where() if filters else None)
        hits = [h for h in hits if h.score >= self.min_score]
        return hits, [trace_step("dense", query, hits, t0)]


@RETRIEVERS.register("single", reads={"min_score"})
def _single(ctx: RetrievalContext, settings) -> DenseRetriever:
    return DenseRetriever(ctx, min_score=settings.min_score)


def make_retriever(name: str, ctx: RetrievalContext, settings) -> Retriever:
    """Build the strategy ``name`` (the registry imports the modules of rag.strategies: they register)."""
    return RETRIEVERS.create(name, ctx, settings)
