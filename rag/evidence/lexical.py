"""``lexical``: BM25 of the question over the candidate sentences (bm25s, the store's stemmed tokenizer).

The candidate sentences are the collection, so a question word that every
sentence shares (the passages' common subject) weighs little and a rarer one,
e.g. the relation asked about, weighs more.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from rag.evidence.base import SCORERS, ScorerContext, Sentence
from rag.store.lexical import tokenize
from rag.types import Hit


def bm25_scores(question: str, texts: Sequence[str]) -> np.ndarray:
    """BM25 score of ``question`` for each of ``texts`` (the texts are the whole collection)."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    if not texts:
        return np.zeros(0, dtype=np.float32)
    tokens = tokenize([question, *texts])
    query, docs = tokens[0], tokens[1:]
    if not query or not any(docs):
        return np.zeros(len(texts), dtype=np.float32)
    index = bm25s.BM25()
    index.index([d or [""] for d in docs], show_progress=False)
    known = [t for t in query if t in index.vocab_dict]
    if not known:
        return np.zeros(len(texts), dtype=np.float32)
    return np.asarray(index.get_scores(known), dtype=np.float32)


@SCORERS.register("lexical")
class LexicalScorer:
    """BM25 over sentences: the words of the question, weighted by how rare they are among the candidates."""

    name = "lexical"

    def __init__(self, ctx: ScorerContext | None = None, settings=None) -> None:
        pass

    def score(self, question: str, sentences: Sequence[Sentence], hits: Sequence[Hit]) -> list[float]:
        return [float(x) for x in bm25_scores(question, [s.text for s in sentences])]
