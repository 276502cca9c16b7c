"""``embedding``: cosine similarity between the question and each sentence (the query embedder, MiniLM by default).

A sentence is embedded alone, on one line (with the passage title in front it
did no better on MuSiQue and worse on the Octave manual, where the title is the
document's). Vectors are cached per text, so a passage seen again (a follow-up
question, the next turn) costs nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import numpy as np

from rag.evidence.base import SCORERS, ScorerContext, Sentence
from rag.types import Hit

CACHE_ITEMS = 50_000


def sentence_text(sentence: Sentence, hit: Hit) -> str:
    """What is embedded for a sentence: its text on one line."""
    return " ".join(sentence.text.split())


class VectorCache:
    """Embeds texts through ``embedder()``, keeping the latest :data:`CACHE_ITEMS` vectors."""

    def __init__(self, embedder) -> None:
        self._embedder = embedder
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            vectors = np.asarray(self._embedder().embed(todo), dtype=np.float32)
            for t, v in zip(todo, vectors):
                self._cache[t] = v
        out = []
        for t in texts:
            self._cache.move_to_end(t)
            out.append(self._cache[t])
        while len(self._cache) > CACHE_ITEMS:
            self._cache.popitem(last=False)
        return np.stack(out) if out else np.zeros((0, 0), dtype=np.float32)


def cosines(vectors: VectorCache, question: str, sentences: Sequence[Sentence], hits: Sequence[Hit]) -> np.ndarray:
    """Cosine of the question with each sentence (the vectors are L2-normalised)."""
    return similarities(vectors, [question], sentences, hits)[0]


def similarities(
    vectors: VectorCache, queries: Sequence[str], sentences: Sequence[Sentence], hits: Sequence[Hit]
) -> np.ndarray:
    """Cosines (queries x sentences), all texts embedded in one call: one model run for short inputs."""
    if not sentences:
        return np.zeros((len(queries), 0), dtype=np.float32)
    mat = vectors([*queries, *(sentence_text(s, hits[s.hit]) for s in sentences)])
    return mat[: len(queries)] @ mat[len(queries) :].T


@SCORERS.register("embedding")
class EmbeddingScorer:
    """Question-sentence cosine similarity: similar to the question, not necessarily answering it."""

    name = "embedding"

    def __init__(self, ctx: ScorerContext, settings=None) -> None:
        self.vectors = VectorCache(ctx.embedder)

    def score(self, question: str, sentences: Sequence[Sentence], hits: Sequence[Hit]) -> list[float]:
        return [float(x) for x in cosines(self.vectors, question, sentences, hits)]
