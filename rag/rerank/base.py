"""The reranker interface, its registry, and what all rerankers share.

A reranker reorders first-stage hits with the LLM. Each one declares the
engine capabilities it needs as Protocols of :mod:`rag.engines.base`
(``Streams``, ``ScoresNextTokens``, ``ExposesAttention``);
:func:`make_reranker` checks them with ``isinstance``, refuses a reranker the
engine cannot serve and names the registered engines that can.
"""

from __future__ import annotations

import time
from typing import Any, Protocol, Sequence

from rag.config import Settings
from rag.engines.base import CAPABILITY_NAMES, engine_name, engines_with
from rag.errors import CapabilityError
from rag.generate import passage_line
from rag.prompts import load_prompt
from rag.registry import Registry
from rag.types import Hit, TraceStep


class Reranker(Protocol):
    """Reorders hits for a query; returns the best ``k`` and a trace step."""

    name: str
    needs: tuple[type, ...]  # engine capability Protocols

    def rerank(self, query: str, hits: list[Hit], k: int) -> tuple[list[Hit], TraceStep]:
        """The ``k`` most relevant of ``hits`` (best first) and a step with the before/after order and scores."""
        ...


RERANKERS: Registry[Reranker] = Registry("reranker", package="rag.rerank")

def make_reranker(name: str, engine: Any, settings: Settings) -> Reranker:
    """Build reranker ``name`` on ``engine``.

    Raises :class:`~rag.errors.CapabilityError` when the engine lacks what the
    reranker needs, naming the engines that have it.
    """
    factory = RERANKERS.get(name)
    needs: tuple[type, ...] = getattr(factory, "needs", ())
    missing = [cap for cap in needs if not isinstance(engine, cap)]
    if missing:
        able = [n for n in engines_with(missing[0]) if all(n in engines_with(cap) for cap in needs)]
        raise CapabilityError(
            f"reranker {name!r} needs {', '.join(CAPABILITY_NAMES.get(c, c.__name__) for c in missing)} from the "
            f"LLM engine, which engine {engine_name(engine)!r} cannot provide; use engine "
            f"{' or '.join(repr(a) for a in able) or '(none available)'} or another reranker "
            f"({', '.join(n for n in RERANKERS.names() if n != name)})"
        )
    return factory(engine, settings)


def windows(n: int, window: int, step: int) -> list[tuple[int, int]]:
    """RankGPT's sliding windows over ``n`` candidates, from the back of the list to the front.

    Each window is ``(start, end)``; the last one starts at 0, so the best
    passages found lower down can bubble up to the top.
    """
    if n <= window:
        return [(0, n)]
    spans: list[tuple[int, int]] = []
    end = n
    while True:
        start = max(end - window, 0)
        spans.append((start, end))
        if start == 0:
            return spans
        end -= step


def finish(
    name: str, query: str, hits: Sequence[Hit], order: Sequence[int], scores: Sequence[float], k: int, t0: float,
    **detail: Any,
) -> tuple[list[Hit], TraceStep]:
    """Build the reranked top ``k`` (``order`` indexes ``hits``; ``scores`` align with ``hits``) and its trace step."""
    out = [
        Hit(hits[i].chunk, float(scores[i]), rank=r, origin=hits[i].origin) for r, i in enumerate(order[:k], 1)
    ]
    step = TraceStep(
        name=f"rerank:{name}",
        query=query,
        hits=tuple((h.chunk.id, round(h.score, 4)) for h in out),
        seconds=time.perf_counter() - t0,
        detail={
            "reranker": name,
            "before": [h.chunk.id for h in hits],
            "after": [hits[i].chunk.id for i in order],
            "scores": {hits[i].chunk.id: round(float(scores[i]), 4) for i in range(len(hits))},
            **detail,
        },
    )
    return out, step


def first_stage_note(hit: Hit) -> str:
    """InsertRank: the first-stage score written next to a passage."""
    return f"(retrieval score {hit.score:.2f}) "


class WindowedReranker:
    """What the sliding-window rerankers (listwise, FIRST) share: settings, passage lines, rank scores."""

    template_name = ""
    reads = frozenset({"rerank_window", "rerank_step", "rerank_with_scores", "rerank_passage_chars"})

    def __init__(self, engine: Any, settings: Settings) -> None:
        self.engine = engine
        self.window = settings.rerank_window
        self.step = settings.rerank_step
        self.with_scores = settings.rerank_with_scores
        self.max_chars = settings.rerank_passage_chars
        self.template = load_prompt(self.template_name).rstrip("\n")

    def passage_lines(self, labels: Sequence[str], hits: Sequence[Hit]) -> str:
        """``[label] (first-stage score) text`` per passage, one per line."""
        return "".join(
            f"[{label}] {first_stage_note(h) if self.with_scores else ''}{passage_line(h, self.max_chars)}\n"
            for label, h in zip(labels, hits)
        )


def rank_scores(order: Sequence[int]) -> list[float]:
    """Scores in (0, 1] that decrease with the position in ``order`` (index → score)."""
    n = len(order)
    scores = [0.0] * n
    for pos, i in enumerate(order):
        scores[i] = (n - pos) / n
    return scores
