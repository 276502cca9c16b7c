"""Evidence selection: which sentences of the retrieved passages answer the question.

A scorer gives every candidate sentence a score (higher = more likely to hold
the answer); :func:`select_evidence` keeps the best few within a size budget.
Scorers are registered by name in :data:`SCORERS`; a new one is one file plus
its ``@SCORERS.register`` line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence, runtime_checkable

from rag.registry import Registry
from rag.types import Hit


@dataclass(frozen=True)
class Sentence:
    """One sentence of a retrieved passage: ``hits[hit]``'s chunk text ``[start:end]``."""

    hit: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Evidence:
    """A selected evidence sentence with its score (higher is better)."""

    sentence: Sentence
    score: float


@runtime_checkable
class EvidenceScorer(Protocol):
    """Scores candidate sentences for a question.

    ``hits`` are the retrieved passages the sentences come from (a scorer may
    use the other passages, e.g. a multi-hop question's bridge names).
    """

    name: str

    def score(self, question: str, sentences: Sequence[Sentence], hits: Sequence[Hit]) -> list[float]: ...


@dataclass(frozen=True)
class ScorerContext:
    """What a scorer factory may use: the query embedder and the LLM engine, both built lazily."""

    embedder: Callable[[], object]
    engine: Callable[[], object]


SCORERS: Registry[EvidenceScorer] = Registry("evidence scorer", package="rag.evidence")
