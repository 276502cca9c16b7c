"""Reranking evaluation: nDCG@10, recall@5 and all-found@5 of the candidates before and after a reranker."""

from __future__ import annotations

import logging
import time
from typing import Any

from rag.eval.dataset import Dataset, hit_ids
from rag.eval.metrics import all_found_at, mean, ndcg_at, percentile, recall_at

log = logging.getLogger(__name__)


def _metrics(ranked: list[str], gold: tuple[str, ...]) -> dict[str, float]:
    return {"ndcg@10": ndcg_at(ranked, gold, 10), "recall@5": recall_at(ranked, gold, 5), "all_found@5": all_found_at(ranked, gold, 5)}


def evaluate_rerank(rag, dataset: Dataset, reranker, candidates: int, progress=None) -> dict[str, Any]:
    """Rerank each question's first-stage ``candidates`` with ``reranker`` and score both orders.

    ``rag`` is the dataset's knowledge base (first stage = its settings'
    strategy); latency is the reranker's own time per question.
    """
    before: list[dict[str, float]] = []
    after: list[dict[str, float]] = []
    ms: list[float] = []
    for i, q in enumerate(dataset.questions):
        hits = rag.retrieve(q.question, k=candidates, reranker="none")
        t0 = time.perf_counter()
        reranked, _ = reranker.rerank(q.question, hits, len(hits))
        ms.append((time.perf_counter() - t0) * 1000)
        before.append(_metrics(hit_ids(hits), q.gold))
        after.append(_metrics(hit_ids(reranked), q.gold))
        log.info("question %d/%d: %.0f ms", i + 1, len(dataset.questions), ms[-1])
        if progress:
            progress(i + 1, len(dataset.questions))
    keys = ("ndcg@10", "recall@5", "all_found@5")
    return {
        "before": {k: round(mean([m[k] for m in before]), 4) for k in keys},
        "after": {k: round(mean([m[k] for m in after]), 4) for k in keys},
        "p50_ms": round(percentile(ms, 50), 1),
        "mean_ms": round(mean(ms), 1),
        "reranker": reranker.name,
        "candidates": candidates,
        "questions": len(dataset.questions),
    }
