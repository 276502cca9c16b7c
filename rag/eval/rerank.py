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
    return evaluate_rerankers(rag, dataset, {reranker.name: reranker}, candidates, progress)[reranker.name]


def evaluate_rerankers(rag, dataset: Dataset, rerankers: dict[str, Any], candidates: int, progress=None) -> dict:
    """:func:`evaluate_rerank` for several rerankers (by label) on the same candidates.

    They take turns on each question, so a change in machine load between
    questions hits all of them alike and their latencies compare fairly.
    """
    before: list[dict[str, float]] = []
    after: dict[str, list[dict[str, float]]] = {label: [] for label in rerankers}
    ms: dict[str, list[float]] = {label: [] for label in rerankers}
    for i, q in enumerate(dataset.questions):
        hits = rag.retrieve(q.question, k=candidates, reranker="none")
        before.append(_metrics(hit_ids(hits), q.gold))
        for label, reranker in rerankers.items():
            t0 = time.perf_counter()
            reranked, _ = reranker.rerank(q.question, hits, len(hits))
            ms[label].append((time.perf_counter() - t0) * 1000)
            after[label].append(_metrics(hit_ids(reranked), q.gold))
        log.info("question %d/%d: %s", i + 1, len(dataset.questions), {k: round(v[-1]) for k, v in ms.items()})
        if progress:
            progress(i + 1, len(dataset.questions))
    keys = ("ndcg@10", "recall@5", "all_found@5")
    return {
        label: {
            "before": {k: round(mean([m[k] for m in before]), 4) for k in keys},
            "after": {k: round(mean([m[k] for m in after[label]]), 4) for k in keys},
            "p50_ms": round(percentile(ms[label], 50), 1),
            "mean_ms": round(mean(ms[label]), 1),
            "reranker": reranker.name,
            "candidates": candidates,
            "questions": len(dataset.questions),
        }
        for label, reranker in rerankers.items()
    }
