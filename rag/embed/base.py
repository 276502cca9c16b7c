"""The embedder interface."""

from __future__ import annotations

from typing import Callable, Protocol, Sequence, runtime_checkable

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


@runtime_checkable
class BatchDependent(Protocol):
    """An embedder whose vectors depend a little on which texts share a batch (int8 activation scales).

    ``batches(texts)`` are the groups of indices ``embed(texts)`` runs together, in run order: work
    split at their boundaries (each part in this order) gives the vectors of one ``embed(texts)`` call.
    """

    def batches(self, texts: Sequence[str]) -> list[list[int]]:
        ...


EMBEDDERS: Registry[Embedder] = Registry("embedder", package="rag.embed")


def normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def length_sorted_batches(lengths: Sequence[int], max_items: int, max_tokens: int = 0) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding), shortest first.

    A batch holds at most ``max_items`` texts and, when ``max_tokens`` is set, at most
    that many padded tokens (rows x longest row); a text longer than the budget gets
    a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    for i in order:
        batch = batches[-1] if batches else None
        if batch and len(batch) < max_items and (not max_tokens or (len(batch) + 1) * lengths[i] <= max_tokens):
            batch.append(i)
        else:
            batches.append([i])
    return batches


def embed_batches(
    count: int,
    dim: int,
    batches: list[list[int]],
    embed_batch: Callable[[list[int]], np.ndarray],
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Run ``embed_batch`` (indices → vectors) over ``batches`` → L2-normalised rows in input order."""
    out = np.zeros((count, dim), dtype=np.float32)
    done = 0
    for idx in batches:
        out[idx] = embed_batch(idx)
        done += len(idx)
        if progress:
            progress(done, count)
    return normalize(out)
