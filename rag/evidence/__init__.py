"""Evidence: which sentences of the retrieved passages answer the question.

>>> scorer = make_scorer("hybrid", ScorerContext(embedder=lambda: emb, engine=lambda: eng), settings)  # doctest: +SKIP
>>> best = select_evidence(question, hits, scorer)                                                  # doctest: +SKIP

:func:`rank_sentences` scores every sentence of every hit (ranked across all
passages, best first); :func:`select_evidence` keeps the best few within a
sentence and character budget (whether to quote them at all is
:mod:`rag.answer.abstain`'s call). Everything here is deterministic: ties are
broken by passage rank, then position in the passage.
"""

from __future__ import annotations

from typing import Sequence

from rag.evidence.base import SCORERS, Evidence, EvidenceScorer, ScorerContext, Sentence
from rag.evidence.sentences import candidate_sentences, split_sentences, split_spans
from rag.types import Hit

__all__ = [
    "SCORERS",
    "Evidence",
    "EvidenceScorer",
    "ScorerContext",
    "Sentence",
    "candidate_sentences",
    "make_scorer",
    "rank_sentences",
    "select_evidence",
    "split_sentences",
    "split_spans",
]


def make_scorer(name: str, ctx: ScorerContext, settings) -> EvidenceScorer:
    """Build the evidence scorer ``name`` (see :data:`SCORERS`; unknown names list the allowed ones)."""
    return SCORERS.create(name, ctx, settings)


def scorer_names() -> tuple[str, ...]:
    """The registered evidence scorer names."""
    return SCORERS.names()


def rank_sentences(question: str, hits: Sequence[Hit], scorer: EvidenceScorer) -> list[Evidence]:
    """Every sentence of ``hits`` with its score, best first (ties: earlier passage, then earlier sentence)."""
    sentences = candidate_sentences(hits)
    if not sentences:
        return []
    scores = scorer.score(question, sentences, hits)
    if len(scores) != len(sentences):
        raise ValueError(f"scorer {scorer.name!r} gave {len(scores)} scores for {len(sentences)} sentences")
    order = sorted(range(len(sentences)), key=lambda i: (-float(scores[i]), sentences[i].hit, sentences[i].start))
    return [Evidence(sentences[i], float(scores[i])) for i in order]


def pick(ranked: Sequence[Evidence], max_sentences: int = 2, max_chars: int = 400) -> list[Evidence]:
    """The best of ``ranked`` within ``max_sentences`` and ``max_chars`` (a sentence that does not fit is skipped;
    a first sentence longer than the budget is kept alone, the caller may cut it)."""
    chosen: list[Evidence] = []
    used = 0
    for ev in ranked:
        if len(chosen) >= max_sentences:
            break
        size = len(ev.sentence.text)
        if chosen and used + size > max_chars:
            continue
        chosen.append(ev)
        used += size
        if used >= max_chars:
            break
    return chosen


def select_evidence(
    question: str, hits: Sequence[Hit], scorer: EvidenceScorer, max_sentences: int = 2, max_chars: int = 400
) -> list[Evidence]:
    """The best evidence sentences for ``question`` across all ``hits`` (best first), within the budget."""
    return pick(rank_sentences(question, hits, scorer), max_sentences, max_chars)
