"""``hybrid``: a logistic model over cheap sentence features (similarity, answer type, bridges, position).

The score is a calibrated probability (0-1) that the sentence holds the answer,
so one threshold (``abstain_threshold``) means the same for every question.
The features are in :mod:`rag.evidence.features`; ``scripts/fit_evidence.py``
caches their ingredients for the two development sets (MuSiQue and the Octave
manual), fits and prints both halves' figures; see the README's "Evidence
scorers" section.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rag.evidence.base import SCORERS, ScorerContext, Sentence
from rag.evidence.embedding import VectorCache, cosines
from rag.evidence.features import FEATURES, residual_question, sentence_features
from rag.evidence.lexical import bm25_scores
from rag.types import Hit

# A few weights on the general cues, chosen on the tuning halves of MuSiQue and the Octave manual (a full
# 27-feature fit overfitted the 20-question manual half: 0.55 -> 0.20 on its check half), then scaled
# by the temperature that calibrates the score as P(sentence holds the answer) (logistic fit).
WEIGHTS: dict[str, float] = {
    "cos": 2.491,  # the question
    "cos_resid": 2.491,  # the question without its first hop's title (multi-hop: what is asked about the bridge)
    "bm25": 0.997,
    "type_match": 0.997,  # holds what the question asks for: a date, a number, a name, an option/function
    "new_names": 0.249,
    "beyond_hop1": 0.498,  # not in the passage the question names
    "defines_bridge": 0.249,  # first sentence of a passage another one names
    "first_sentence": 0.149,
    "code_like": 0.249,
}
BIAS = -6.294


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
        residual = residual_question(question, hits)
        cos_resid = cos if residual == question else cosines(self.vectors, residual, sentences, hits)
        bm25 = bm25_scores(question, [s.text for s in sentences])
        return sentence_features(question, sentences, hits, cos, bm25, cos_resid)

    def score(self, question: str, sentences: Sequence[Sentence], hits: Sequence[Hit]) -> list[float]:
        if not sentences:
            return []
        return [float(x) for x in logistic(self.features(question, sentences, hits), self.weights, self.bias)]
