"""``hybrid``: a logistic model over cheap sentence features (similarity, answer type, bridges, position).

The score is a calibrated probability (0-1) that the sentence holds the answer,
so one threshold (``abstain_threshold``) means the same for every question.
Whether the documents answer at all is also read from the knowledge base (a
name the question asks about that no passage mentions): see
:mod:`rag.answer.abstain`.
The features are in :mod:`rag.evidence.features`; ``scripts/fit_evidence.py``
caches their ingredients for the two development sets (MuSiQue and the Octave
manual), fits and prints both halves' figures; see the README's "Evidence
scorers" section.

Cost: embedding the sentences is what takes time (it grows with the text
embedded), so the cheap cues rank the sentences first and only about
:data:`EMBED_CHARS` characters of them are embedded (:func:`embed_choice`: each
passage's best sentence, then the best others), together with the question and
its residual question in one model run; the rest score 0. On the development
sets this embeds a third (MuSiQue: 547 -> 170 tokens p50) to a half (Octave
manual: 464 -> 217) of the tokens that embedding the 16 best did, with top-2
0.34 -> 0.36 and 0.475 -> 0.475 (each half of each set within one question).
Vectors are cached per text, so sentences seen again in a chat cost nothing.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rag.evidence.base import SCORERS, ScorerContext, Sentence
from rag.evidence.embedding import VectorCache, similarities
from rag.evidence.features import FEATURES, lexical_features, residual_question, with_similarity
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
EMBED_CHARS = 600  # characters of sentence text embedded per question (see embed_choice)
EMBED_AT_LEAST = 2


def linear(X: np.ndarray, weights: dict[str, float], bias: float) -> np.ndarray:
    w = np.array([weights.get(name, 0.0) for name in FEATURES], dtype=np.float64)
    return X.astype(np.float64) @ w + bias


def logistic(X: np.ndarray, weights: dict[str, float], bias: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-linear(X, weights, bias)))


def embed_choice(cheap: np.ndarray, sentences: Sequence[Sentence], budget: int) -> list[int]:
    """The sentences worth embedding (indices, ascending) within ``budget`` characters.

    Each passage's best sentence by the ``cheap`` score comes first (best passage
    first): the cheap cues are lexical, so they cannot tell which passage matches a
    paraphrased question, and one candidate per passage leaves that to the
    embedding. Those are embedded whatever their length (one per passage: a long
    sentence of one passage must not leave another passage's only candidate
    unembedded, scoring 0). Then the best remaining sentences, while they fit in
    ``budget`` with them. At least :data:`EMBED_AT_LEAST` are embedded.
    """
    order = np.argsort(-cheap, kind="stable").tolist()
    firsts: dict[int, int] = {}
    for i in order:
        firsts.setdefault(sentences[i].hit, i)
    lead = list(firsts.values())
    taken = set(lead)
    keep: list[int] = []
    used = 0
    for i in [*lead, *(i for i in order if i not in taken)]:
        size = len(sentences[i].text)
        if i not in taken and len(keep) >= EMBED_AT_LEAST and used + size > budget:
            continue
        keep.append(i)
        used += size
    return sorted(keep)


@SCORERS.register("hybrid")
class HybridScorer:
    """Lexical + embedding similarity, answer-type cues, multi-hop bridge names and position, combined."""

    name = "hybrid"

    def __init__(self, ctx: ScorerContext, settings=None, weights: dict[str, float] | None = None,
                 bias: float | None = None, embed_chars: int | None = None) -> None:
        self.vectors = VectorCache(ctx.embedder)
        self.weights = dict(WEIGHTS if weights is None else weights)
        self.bias = BIAS if bias is None else bias
        self.embed_chars = EMBED_CHARS if embed_chars is None else embed_chars

    def features(self, question: str, sentences: Sequence[Sentence], hits: Sequence[Hit]) -> np.ndarray:
        """The feature matrix of the sentences (for fitting and inspection; every sentence embedded)."""
        return self._features(question, sentences, hits, range(len(sentences)), self._lexical(question, sentences, hits))

    @staticmethod
    def _lexical(question: str, sentences: Sequence[Sentence], hits: Sequence[Hit]) -> np.ndarray:
        return lexical_features(question, sentences, hits, bm25_scores(question, [s.text for s in sentences]))

    def _features(self, question: str, sentences: Sequence[Sentence], hits: Sequence[Hit], embed,
                  lexical: np.ndarray) -> np.ndarray:
        """``lexical`` (:func:`lexical_features`) with the cosines of the sentences ``embed`` indexes (the others
        get the lowest of those) in its similarity columns, overwritten in place.

        The question, its residual and the chosen sentences are embedded in one call.
        """
        keep = list(embed)
        cos = np.zeros(len(sentences), dtype=np.float32)
        cos_resid = np.zeros(len(sentences), dtype=np.float32)
        if keep:
            residual = residual_question(question, hits)
            queries = [question] if residual == question else [question, residual]
            sims = similarities(self.vectors, queries, [sentences[i] for i in keep], hits)
            cos[keep], cos_resid[keep] = sims[0], sims[-1]
            rest = np.setdiff1d(np.arange(len(sentences)), keep)
            cos[rest], cos_resid[rest] = cos[keep].min(), cos_resid[keep].min()
        return with_similarity(lexical, question, sentences, cos, cos_resid)

    def score(self, question: str, sentences: Sequence[Sentence], hits: Sequence[Hit]) -> list[float]:
        if not sentences:
            return []
        # Embedding is the cost (its time grows with the text embedded): only the sentences
        # embed_choice picks by the cheap cues are embedded, the rest score 0.
        lexical = self._lexical(question, sentences, hits)  # computed once, for both passes
        cheap = dict(self.weights, cos=0.0, cos_resid=0.0)
        first = linear(self._features(question, sentences, hits, (), lexical), cheap, self.bias)
        keep = embed_choice(first, sentences, self.embed_chars)
        scores = np.zeros(len(sentences), dtype=np.float64)
        scores[keep] = logistic(self._features(question, sentences, hits, keep, lexical), self.weights, self.bias)[keep]
        return [float(x) for x in scores]
