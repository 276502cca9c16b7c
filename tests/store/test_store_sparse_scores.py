"""Sparse BM25 scores (what hops and hybrid use at scale) are exactly the dense scores' positive entries."""

from __future__ import annotations

import numpy as np

from rag.store.lexical import Segments, best


def _segments(rows: int, seed: int = 0) -> Segments:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(40)]
    seg = Segments()
    # Two segments (a base and a delta), then tombstones: every path of the scores.
    docs = [(r, [words[int(w)] for w in rng.zipf(1.3, size=12) % 40]) for r in range(1, rows + 1)]
    seg.add(docs[: rows // 2])
    seg.add(docs[rows // 2 :])
    seg.remove(np.arange(3, rows, 7))
    return seg


def test_sparse_scores_are_the_dense_positive_scores() -> None:
    seg = _segments(400)
    # A rare token (the np.unique path), common ones (the dense path), a repeat, an unknown word.
    for tokens in (["w39"], ["w0", "w1"], ["w2", "w2", "w30"], ["nothing"], ["w5", "nothing"]):
        dense = seg.scores(tokens)
        positions, values = seg.sparse_scores(tokens)
        assert np.array_equal(positions, np.flatnonzero(dense)), tokens
        assert np.array_equal(values, dense[positions]), tokens  # bit for bit: same float32 sums
        assert np.all(np.diff(positions) > 0) and np.all(values > 0)
        assert not seg.dead[positions].any()


def test_best_is_exact_with_ties_by_index() -> None:
    scores = np.array([1.0, 3.0, 2.0, 3.0, 2.0, 2.0, 0.5])
    assert best(scores, 3).tolist() == [1, 3, 2]
    assert best(scores, 4).tolist() == [1, 3, 2, 4]
    assert best(scores, 10).tolist() == [1, 3, 2, 4, 5, 0, 6]
    assert best(np.zeros(0), 3).tolist() == []
    rng = np.random.default_rng(1)
    many = rng.integers(0, 20, size=5000).astype(np.float32)
    order = sorted(range(len(many)), key=lambda i: (-many[i], i))
    assert best(many, 50).tolist() == order[:50]
