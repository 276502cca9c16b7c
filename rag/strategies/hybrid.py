"""Hybrid first stage: dense (Chroma) and BM25 rankings fused with reciprocal rank fusion."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Sequence

from rag.config import Settings
from rag.retrieve import RETRIEVERS, Filters, RetrievalContext, trace_step
from rag.types import Hit, TraceStep


def rrf(rankings: Sequence[Sequence[Hit]], weights: Sequence[float], k: int) -> list[Hit]:
    """Fuse rankings: a chunk scores sum(w / (k + rank)) over the rankings it is in (rank from 1).

    Ties keep first-seen order (the first ranking wins), so the result is deterministic.
    The returned hits carry the fused score and ``origin`` "hybrid" when both
    rankings found them.
    """
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    origins: dict[str, set[str]] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, hit in enumerate(ranking, 1):
            cid = hit.chunk.id
            scores[cid] = scores.get(cid, 0.0) + weight / (k + rank)
            first.setdefault(cid, hit)
            origins.setdefault(cid, set()).add(hit.origin)
    order = sorted(scores, key=lambda cid: -scores[cid])  # stable: ties keep first-seen order
    return [
        replace(first[cid], score=scores[cid], rank=i, origin="hybrid" if len(origins[cid]) > 1 else first[cid].origin)
        for i, cid in enumerate(order)
    ]


@RETRIEVERS.register(
    "hybrid", reads={"fusion_dense_weight", "fusion_bm25_weight", "rrf_k", "fusion_candidates", "min_score"}
)
class HybridRetriever:
    """Dense + BM25 with weighted RRF, metadata filters and an optional cosine cutoff.

    The cutoff (``min_score``) is on dense cosine similarity: a fused hit is kept
    only if the dense ranking found it with at least that similarity, so a weak
    lexical-only match is dropped rather than padding the evidence.
    """

    def __init__(self, ctx: RetrievalContext, settings: Settings) -> None:
        self.ctx = ctx
        self.weights = (settings.fusion_dense_weight, settings.fusion_bm25_weight)
        self.rrf_k = settings.rrf_k
        self.candidates = settings.fusion_candidates
        self.min_score = settings.min_score

    def retrieve(self, query: str, k: int, filters: Filters | None = None) -> tuple[list[Hit], list[TraceStep]]:
        where = filters.where() if filters else None
        n = max(k, self.candidates)
        t0 = time.perf_counter()
        vec = self.ctx.embedder.embed([query])[0]
        dense = self.ctx.store.query(vec, n, where=where) if self.weights[0] > 0 else []
        steps = [trace_step("dense", query, dense[:k], t0)]
        t1 = time.perf_counter()
        lexical = self.ctx.store.bm25_search(query, n, where=where) if self.weights[1] > 0 else []
        steps.append(trace_step("bm25", query, lexical[:k], t1))
        t2 = time.perf_counter()
        fused = rrf([dense, lexical], self.weights, self.rrf_k)
        if self.min_score > 0:
            cosine = {h.chunk.id: h.score for h in dense}
            fused = [h for h in fused if cosine.get(h.chunk.id, float("-inf")) >= self.min_score]
        if filters:
            # Belt and braces: both backends filter, but a hit outside the filter must never reach a prompt.
            fused = [h for h in fused if filters.accepts(h)]
        hits = fused[:k]
        steps.append(trace_step("fuse", query, hits, t2, weights=list(self.weights), rrf_k=self.rrf_k))
        return hits, steps
