"""``none``: keep the first-stage order."""

from __future__ import annotations

import time

from rag.config import Settings
from rag.rerank.base import RERANKERS, finish
from rag.types import Hit, TraceStep


@RERANKERS.register("none")
class NoReranker:
    """Returns the first ``k`` hits unchanged (the baseline the others are measured against)."""

    name = "none"
    needs: tuple[type, ...] = ()

    def __init__(self, engine: object = None, settings: Settings | None = None) -> None:
        pass

    def rerank(self, query: str, hits: list[Hit], k: int) -> tuple[list[Hit], TraceStep]:
        t0 = time.perf_counter()
        return finish(self.name, query, hits, list(range(len(hits))), [h.score for h in hits], k, t0)
