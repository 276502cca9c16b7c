"""Evidence evaluation: is the gold answer in the best-scored sentences of the top-k retrieved passages?

Works on both dataset styles: MuSiQue-style folders (``corpus.json`` +
``questions.json``, :mod:`rag.eval.dataset`) and document-style folders
(``questions.json`` over files given with ``--documents``,
:mod:`rag.eval.documents`). :func:`eval_items` turns either into
:class:`EvalItem` (question, answers, how an answer is matched, which hits are
gold), and :func:`open_eval_kb` opens either's cached throwaway knowledge base,
so other evaluations (``hoprag eval answers``) can reuse both.

Answer matching: MuSiQue answers with SQuAD normalisation on word boundaries
(:func:`rag.eval.metrics.answer_in`, as ``answer_in_context``); document
answers as their README says (lower-case, whitespace collapsed, punctuation
kept: :func:`rag.eval.documents.text_has_answer`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from rag.answer.abstain import IndexMentions, should_abstain
from rag.eval.dataset import Dataset, eval_kb, hit_ids, load_dataset
from rag.eval.documents import (
    DocDataset,
    answer_in_passages,
    document_kb,
    is_document_dataset,
    is_gold_hit,
    load_document_dataset,
    page_hit,
    text_has_answer,
)
from rag.eval.metrics import answer_in, mean, percentile
from rag.evidence import Evidence, EvidenceScorer, pick, rank_sentences
from rag.evidence.sentences import split_spans
from rag.types import Hit

TOPS = (1, 2, 3)


@dataclass(frozen=True)
class EvalItem:
    """One question in the shape every evidence/answer evaluation needs."""

    id: str
    question: str
    answers: tuple[str, ...]
    has_answer: Callable[[str], bool]  # whether a text holds the gold answer (dataset's normalisation)
    is_gold: Callable[[Hit], bool]  # whether a hit is one of the question's gold passages / pages
    documents: bool  # from a document-style set (page_hit applies)


def load_eval_dataset(path: str | Path, documents: str | Path | None = None, limit: int | None = None):
    """A MuSiQue-style :class:`Dataset` or, for a folder without corpus.json, a :class:`DocDataset`."""
    if is_document_dataset(path):
        return load_document_dataset(path, documents, limit)
    return load_dataset(path, limit=limit)


def open_eval_kb(dataset: Dataset | DocDataset, settings, embedder=None, engine=None):
    """The dataset's cached throwaway knowledge base (a :class:`rag.pipeline.RAG`; use it as a context manager)."""
    if isinstance(dataset, DocDataset):
        return document_kb(dataset, settings, embedder=embedder, engine=engine)
    return eval_kb(dataset, settings, embedder=embedder, engine=engine)


def eval_items(dataset: Dataset | DocDataset) -> list[EvalItem]:
    """The dataset's questions as :class:`EvalItem` (answers, matching and gold hits per style)."""
    items = []
    if isinstance(dataset, DocDataset):
        for q in dataset.questions:
            items.append(
                EvalItem(
                    q.id, q.question, q.answers,
                    has_answer=lambda text, a=q.answers: text_has_answer(text, a),
                    is_gold=lambda hit, q=q: is_gold_hit(hit, q),
                    documents=True,
                )
            )
        return items
    for q in dataset.questions:
        gold = frozenset(q.gold)
        items.append(
            EvalItem(
                q.id, q.question, q.answers,
                has_answer=lambda text, a=q.answers: answer_in(text, a),
                is_gold=lambda hit, gold=gold: hit_ids([hit])[0] in gold,
                documents=False,
            )
        )
    return items


def retrieve_for(rag, item: EvalItem, k: int, strategy: str | None = None, without_gold: bool = False) -> list[Hit]:
    """The top-``k`` hits for ``item``; with ``without_gold``, as if its gold passages were not in the knowledge base.

    Removing the gold passages is simulated by retrieving deeper and dropping
    them (for the single and hybrid strategies this is exactly the ranking the
    smaller knowledge base gives).
    """
    overrides = {"strategy": strategy} if strategy else {}
    if not without_gold:
        return rag.retrieve(item.question, k, **overrides)
    depth = k + 10
    while True:
        hits = rag.retrieve(item.question, depth, **overrides)
        kept = [h for h in hits if not item.is_gold(h)]
        if len(kept) >= k or len(hits) < depth:
            return kept[:k]
        depth *= 2


def evidence_record(item: EvalItem, ranked: Sequence[Evidence], max_sentences: int, max_chars: int) -> dict:
    """Per question: answer in the top 1/2/3 sentences, in the capped evidence, and the best score."""
    rec: dict = {}
    for k in TOPS:
        rec[f"answer_in_top{k}"] = float(item.has_answer(" ".join(e.sentence.text for e in ranked[:k])))
    chosen = pick(ranked, max_sentences, max_chars)
    rec["answer_in_evidence"] = float(item.has_answer(" ".join(e.sentence.text for e in chosen)))
    rec["evidence_chars"] = sum(len(e.sentence.text) for e in chosen)
    rec["best_score"] = ranked[0].score if ranked else float("-inf")
    rec["sentences"] = len(ranked)
    return rec


def evaluate_evidence(
    rag,
    items: Sequence[EvalItem],
    scorers: dict[str, EvidenceScorer],
    strategy: str | None = None,
    k: int = 5,
    max_sentences: int = 2,
    max_chars: int = 400,
    without_gold: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    abstain_threshold: float | None = None,
) -> tuple[dict[str, dict], list[dict]]:
    """Score every scorer on the same top-``k`` hits per question → (row per scorer, per-question records).

    A row has ``answer_in_top1/2/3`` (the gold answer in the concatenation of
    the k best sentences), ``answer_in_evidence`` (in :func:`pick`'s capped
    evidence), ``evidence_chars``, ``p50_ms``/``p95_ms`` (sentence splitting
    and scoring, the splitter's cache cleared per question; ``p50_cpu_ms`` the
    CPU time it took), plus
    ``answer_in_passages@k`` and, for document sets, ``page_hit@k``. With
    ``abstain_threshold``, ``abstain_rate`` is the share of questions the answer
    would abstain on (:func:`rag.answer.abstain.should_abstain`: best evidence
    below the threshold, or a name of the question nowhere in the knowledge
    base, its gold passages left out when ``without_gold``): run ``without_gold``
    it is the share of unanswerable questions caught, otherwise the share of
    answerable ones wrongly given up.
    """
    per_scorer: dict[str, list[dict]] = {name: [] for name in scorers}
    base: list[dict] = []
    if items:  # the first retrieval builds per-knowledge-base caches (BM25, name index): not a question's cost
        rag.retrieve(items[0].question, k, **({"strategy": strategy} if strategy else {}))
    for i, item in enumerate(items):
        hits = retrieve_for(rag, item, k, strategy, without_gold)
        gold = (lambda chunk, item=item: item.is_gold(Hit(chunk, 0.0))) if without_gold else None
        mentions = IndexMentions(rag.store.bm25_index, exclude=gold)
        row = {
            "id": item.id,
            f"answer_in_passages@{k}": float(any(item.has_answer(h.chunk.text) for h in hits)),
            f"gold_in_top{k}": float(any(item.is_gold(h) for h in hits)),
        }
        if item.documents:
            row[f"page_hit@{k}"] = row[f"gold_in_top{k}"]
        base.append(row)
        for name, scorer in scorers.items():
            split_spans.cache_clear()
            t0, c0 = time.perf_counter(), time.process_time()
            ranked = rank_sentences(item.question, hits, scorer)
            ms = (time.perf_counter() - t0) * 1000
            cpu_ms = (time.process_time() - c0) * 1000
            rec = evidence_record(item, ranked, max_sentences, max_chars)
            rec["abstain"] = (should_abstain(item.question, ranked, abstain_threshold, mentions)
                              if abstain_threshold is not None else None)
            rec.update(id=item.id, ms=ms, cpu_ms=cpu_ms, evidence=[e.sentence.text for e in pick(ranked, max_sentences, max_chars)])
            per_scorer[name].append(rec)
        if progress:
            progress("evidence", i + 1, len(items))
    shared = {key: mean([r[key] for r in base]) for key in base[0] if key != "id"} if base else {}
    out: dict[str, dict] = {}
    for name, recs in per_scorer.items():
        row = {f"answer_in_top{t}": mean([r[f"answer_in_top{t}"] for r in recs]) for t in TOPS}
        row["answer_in_evidence"] = mean([r["answer_in_evidence"] for r in recs])
        row["evidence_chars"] = mean([r["evidence_chars"] for r in recs])
        row["p50_ms"] = percentile([r["ms"] for r in recs], 50)
        row["p95_ms"] = percentile([r["ms"] for r in recs], 95)
        # CPU time of this process (all its threads): on a busy shared machine wall time mostly measures waiting.
        row["p50_cpu_ms"] = percentile([r["cpu_ms"] for r in recs], 50)
        row["best_score_p50"] = percentile([r["best_score"] for r in recs if r["sentences"]], 50)
        if abstain_threshold is not None:
            row["abstain_threshold"] = abstain_threshold
            row["abstain_rate"] = mean([float(r["abstain"]) for r in recs])
        row["questions"] = len(recs)
        row.update(shared)
        out[name] = row
    records = [dict(b, scorers={name: per_scorer[name][i] for name in scorers}) for i, b in enumerate(base)]
    return out, records


__all__ = [
    "EvalItem",
    "eval_items",
    "evaluate_evidence",
    "evidence_record",
    "load_eval_dataset",
    "open_eval_kb",
    "page_hit",
    "answer_in_passages",
    "retrieve_for",
]
