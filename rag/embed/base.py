"""The embedder interface."""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np

from rag.registry import Registry


class Embedder(Protocol):
    """Maps texts to L2-normalised float32 vectors of a fixed dimension."""

    model_id: str

    def embed(self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Embed ``texts`` (documents or queries) → array of shape (len(texts), dim)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this embedder's tokenizer (for chunk budgets)."""
        ...


EMBEDDERS: Registry[Embedder] = Registry("embedder")


def normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def embed_length_sorted(
    texts: Sequence[str],
    batch_size: int,
    dim: int,
    embed_batch: Callable[[list[str]], np.ndarray],
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Embed ``texts`` in batches of similar length (less padding) → L2-normalised rows in input order.

    ``embed_batch`` maps one batch of texts to their vectors.
    """
    texts = list(texts)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        out[idx] = embed_batch([texts[i] for i in idx])
        if progress:
            progress(start + len(idx), len(texts))
    return normalize(out)
