"""Writes to Chroma go in requests of at most the client's batch size (rag.store.vectors.upsert_batched), the
chunks' (VectorStore.upsert) and the registry's alike."""

from __future__ import annotations

import numpy as np

from rag.store.vectors import VectorStore, embedded_client, upsert_batched
from rag.types import Chunk


class SmallBatches:
    """A real Chroma client that reports a maximum batch size of ``size``."""

    def __init__(self, inner, size: int) -> None:
        self._inner = inner
        self.size = size

    def get_max_batch_size(self) -> int:
        return self.size

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


def test_every_column_is_cut_alike_within_the_clients_batch_size_and_most():
    calls: list[dict] = []
    ids = [f"c{i}" for i in range(7)]
    vectors = np.arange(14, dtype=np.float32).reshape(7, 2)
    upsert_batched(SmallBatches(None, 3), lambda **kw: calls.append(kw), ids=ids, embeddings=vectors)
    assert [c["ids"] for c in calls] == [ids[0:3], ids[3:6], ids[6:]]
    assert np.array_equal(np.concatenate([c["embeddings"] for c in calls]), vectors)
    calls.clear()
    upsert_batched(SmallBatches(None, 3), lambda **kw: calls.append(kw), most=2, ids=ids, embeddings=vectors)
    assert [len(c["ids"]) for c in calls] == [2, 2, 2, 1]
    calls.clear()
    upsert_batched(object(), lambda **kw: calls.append(kw), ids=ids)  # no size to ask for: 1000 at once
    assert [c["ids"] for c in calls] == [ids]


def test_vector_store_writes_every_chunk_in_small_batches(tmp_path):
    store = VectorStore("batches", tmp_path, client=SmallBatches(embedded_client(tmp_path), 3))
    chunks = [Chunk(f"d:{i}", "d", f"Sentence {i}.", "d.md", index=i) for i in range(7)]
    vectors = np.random.default_rng(0).normal(size=(7, 4))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)  # a cosine collection keeps unit vectors
    store.upsert(chunks, vectors)
    got = store.collection.get(include=["documents", "embeddings"])
    assert store.count() == 7
    by_id = dict(zip(got["ids"], zip(got["documents"], got["embeddings"])))
    for chunk, vector in zip(chunks, vectors):
        text, stored = by_id[chunk.id]
        assert text == chunk.text and np.allclose(stored, vector, atol=1e-6)
