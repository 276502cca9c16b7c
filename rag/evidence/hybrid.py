"""``hybrid``: a logistic model over cheap sentence features (similarity, answer type, bridges, position).

The score is a calibrated probability (0-1) that the sentence holds the answer,
so one threshold (``abstain_threshold``) means the same for every question.
The features are in :mod:`rag.evidence.features`; the weights below were
fitted by ``scripts/fit_evidence.py`` (logistic regression, L2) on half of the
two development sets (MuSiQue and the Octave manual) and checked on the other
half; see the README's "Evidence scorers" section for the figures.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rag.evidence.base import SCORERS, ScorerContext, Sentence
from rag.evidence.embedding import VectorCache, cosines
from rag.evidence.features import FEATURES, sentence_features
from rag.evidence.lexical import bm25_scores
from rag.types import Hit

# Fitted weights (see the module doc); a feature missing here weighs 0.
WEIGHTS: dict[str, float] = {
    "cos": 2.0,
    "cos_rel": 2.0,
    "bm25": 1.0,
    "bm25_neighbour": 0.3,
    "type_match": 1.0,
    "novelty": 0.5,
    "named_by_other": 0.5,
    "names_other": 0.3,
}
BIAS = -3.0


def logistic(X: np.ndarray, weights: dict[str, float], bias: float) -> np.ndarray:
    w = np.array([weights.get(name, 0.0) for name in FEATURES], dtype=np.float32)
    return 1.0 / (1.0 + np.exp(-(X @ w + bias)))


@SCORERS.register("hybrid")
class HybridScorer:
    """Lexical + embedding similarity, answer-type cues, multi-hop bridge names and position, combined."""

    name = "hybrid"

    def __init__(self, ctx: ScorerContext, settings=None, weights: dict[str, float] | None = None,
                 bias: float | None = None) -> None:
        self.vectors = VectorCache(ctx.embedder)
        self.weights = dict(WEIGHTS if weights is None else weights)
        self.bias = BIAS if bias is None else bias

    def features(self, question: str, sentences: Sequence[Sentence], hits: Sequence[Hit]) -> np.ndarray:
        """The feature matrix of the sentences (for fitting and inspection)."""
        cos = cosines(self.vectors, question, sentences, hits)
        bm25 = bm25_scores(question, [s.text for s in sentences])
        return sentence_features(question, sentences, hits, cos, bm25)

    def score(self, question: str, sentences: Sequence[Sentence], hits: Sequence[Hit]) -> list[float]:
        if not sentences:
            return []
        return [float(x) for x in logistic(self.features(question, sentences, hits), self.weights, self.bias)]
