"""Length-sorted batching shared by the local embedders."""

from __future__ import annotations

import numpy as np

from rag.embed.base import embed_batches, length_sorted_batches


def test_batches_are_length_sorted_and_keep_both_limits():
    lengths = [50, 3, 200, 7, 40, 300, 5]
    batches = length_sorted_batches(lengths, max_items=2)
    assert [[lengths[i] for i in b] for b in batches] == [[3, 5], [7, 40], [50, 200], [300]]
    budgeted = length_sorted_batches(lengths, max_items=8, max_tokens=100)
    assert sorted(i for b in budgeted for i in b) == list(range(len(lengths)))
    for batch in budgeted:
        padded = len(batch) * max(lengths[i] for i in batch)
        assert padded <= 100 or len(batch) == 1  # a text over the budget goes alone
    assert [[lengths[i] for i in b] for b in budgeted] == [[3, 5, 7], [40, 50], [200], [300]]


def test_embed_batches_returns_rows_in_input_order_normalised():
    batches = length_sorted_batches([3, 1, 2], max_items=2)
    calls: list[tuple[int, int]] = []
    out = embed_batches(
        3, 2, batches, lambda idx: np.array([[float(i) + 1, 0.0] for i in idx]), lambda d, t: calls.append((d, t))
    )
    assert np.allclose(out, [[1, 0], [1, 0], [1, 0]]) and calls == [(2, 3), (3, 3)]
    scaled = embed_batches(2, 2, [[1], [0]], lambda idx: np.array([[3.0 * (idx[0] + 1), 4.0 * (idx[0] + 1)]]))
    assert np.allclose(scaled, [[0.6, 0.8], [0.6, 0.8]])
