"""Retrieval evaluation: recall@k, all-found@k, nDCG@10 and latency per strategy."""

from __future__ import annotations

import logging
import time
from typing import Callable, Sequence

from rag.eval.dataset import Dataset, hit_ids
from rag.eval.metrics import all_found_at, mean, ndcg_at, percentile, recall_at
from rag.types import Hit

log = logging.getLogger(__name__)

NDCG_K = 10


def evaluate_retrieval(
    rag,
    dataset: Dataset,
    strategies: Sequence[str],
    ks: Sequence[int],
    progress: Callable[[str, int, int], None] | None = None,
    to_passages: Callable[[list[Hit]], list[str]] | None = None,
) -> dict[str, dict[str, float]]:
    """Per strategy: ``recall@k``/``all_found@k`` for each k, ``ndcg@10``, latency p50/p95 in ms.

    Each question is retrieved once at the largest k (at least 10, for nDCG@10)
    through the public :meth:`RAG.retrieve`; smaller k read the ranking's head.
    ``curve`` holds all-found@k for every k from 1 to that depth (for plots).

    ``to_passages`` turns retrieved chunks into passage ids (default: one chunk
    is one passage, see :func:`hit_ids`). When chunks and passages differ (a
    packed knowledge base), k counts passages: the retrieval depth doubles
    until the chunks name ``depth`` distinct passages or the store runs out.
    """
    depth = max(max(ks), NDCG_K)
    passages_of = to_passages or hit_ids
    out: dict[str, dict[str, float]] = {}
    for name in strategies:
        if dataset.questions:
            # The first call builds per-knowledge-base caches (BM25, name index); not a per-question cost.
            rag.retrieve(dataset.questions[0].question, depth, strategy=name)
        rankings, seconds = [], []
        for i, q in enumerate(dataset.questions):
            t0 = time.perf_counter()
            ranking = _ranking(rag, q.question, depth, name, passages_of)
            seconds.append(time.perf_counter() - t0)
            rankings.append(ranking)
            if progress:
                progress(name, i + 1, len(dataset.questions))
        golds = [q.gold for q in dataset.questions]
        row: dict[str, float] = {}
        for k in ks:
            row[f"recall@{k}"] = mean([recall_at(r, g, k) for r, g in zip(rankings, golds)])
            row[f"all_found@{k}"] = mean([all_found_at(r, g, k) for r, g in zip(rankings, golds)])
        row[f"ndcg@{NDCG_K}"] = mean([ndcg_at(r, g, NDCG_K) for r, g in zip(rankings, golds)])
        row["p50_ms"] = percentile(seconds, 50) * 1000
        row["p95_ms"] = percentile(seconds, 95) * 1000
        row["questions"] = len(rankings)
        row["curve"] = [mean([all_found_at(r, g, k) for r, g in zip(rankings, golds)]) for k in range(1, depth + 1)]
        out[name] = row
        log.info("%s: %s", name, {k: v for k, v in row.items() if k != "curve"})
    return out


def _ranking(rag, question: str, depth: int, strategy: str, passages_of: Callable[[list[Hit]], list[str]]) -> list[str]:
    chunks = depth
    while True:
        hits = rag.retrieve(question, chunks, strategy=strategy)
        ranking = passages_of(hits)
        if len(ranking) >= depth or len(hits) < chunks:
            return ranking[:depth]
        chunks *= 2


def plot_curves(results: dict[str, dict], path: str) -> None:
    """Save all-found@k curves (one line per strategy) to ``path``."""
    from rag.extras import require

    require("matplotlib", "eval")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, row in results.items():
        curve = row["curve"]
        ax.plot(range(1, len(curve) + 1), curve, marker="o", label=name)
    ax.set_xlabel("k (passages)")
    ax.set_ylabel("all-found@k")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Questions with every gold passage in the top k")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
