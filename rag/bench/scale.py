"""``hoprag bench scale``: how the store's costs grow with its size, on the synthetic corpus.

Each size runs in a child process (``python -m rag.bench.scale N ...``, so its
peak RSS is its own) on a fresh knowledge base: the corpus is ingested in
batches straight into the store (:meth:`Store.add_documents`: chunks, vectors,
manifest and the lexical index), then 200 seeded questions are timed with the
``single``, ``hybrid`` and ``hops`` retrievers, Chroma's top 10 is compared with
an exact search over every stored vector, and one more 20-chunk document is
added to the full knowledge base (:meth:`Store.add_document`, the path ingest
takes) until every index answers with it.

``--vectors random`` stores seeded random unit vectors with a topic and document
structure (:func:`random_vectors`; a question's vector is a chunk's plus noise);
``model`` embeds with the configured embedder.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rag.bench.synthetic import CHUNKS_PER_DOC, Corpus

DIM = 384
TOPIC_DOCS = 50
BATCH_DOCS = 100
QUESTIONS = 200
STRATEGIES = ("single", "hybrid", "hops")


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def random_vectors(seed: int, doc: int) -> np.ndarray:
    """The stored vectors of document ``doc`` (seeded: regenerated for the exact search).

    Shaped like text embeddings rather than uniform noise: a chunk is its topic's
    direction (50 documents a topic) plus its document's plus its own, so a chunk's
    cosine is about 0.74 to its document's chunks, 0.37 to its topic's and 0 to the
    rest. (Uniform random vectors have no neighbourhood: their "exact top 10" are
    near-ties that no ANN index finds, which measures nothing.)
    """
    topic = np.random.default_rng([seed, doc // TOPIC_DOCS, 98]).normal(size=DIM)
    rng = np.random.default_rng([seed, doc, 99])
    own = rng.normal(size=(CHUNKS_PER_DOC, DIM))
    return _unit(0.6 * _unit(topic) + 0.6 * _unit(rng.normal(size=DIM)) + 0.5 * _unit(own))


class QuestionVectors:
    """An embedder for ``--vectors random``: a known question maps to its vector, other text to a seeded one."""

    model_id = "random-unit-384"

    def __init__(self, known: dict[str, np.ndarray]) -> None:
        self.known = known

    def embed(self, texts: Sequence[str], progress: Any = None) -> np.ndarray:
        out = []
        for t in texts:
            vec = self.known.get(t)
            if vec is None:
                vec = _unit(np.random.default_rng(zlib.crc32(t.encode())).normal(size=DIM))
            out.append(vec)
        return np.asarray(out, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def _du_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def _exact_top10(corpus: Corpus, seed: int, queries: np.ndarray, stored: np.ndarray | None) -> list[set[str]]:
    """The ids of the exact 10 nearest chunks (cosine) of each query, over every stored vector."""
    best = np.full((len(queries), 10), -2.0, dtype=np.float32)
    ids = np.empty((len(queries), 10), dtype=object)
    step = 500
    for start in range(0, corpus.documents, step):
        docs = range(start, min(start + step, corpus.documents))
        if stored is None:
            block = np.concatenate([random_vectors(seed, d) for d in docs])
        else:
            block = stored[start * CHUNKS_PER_DOC : docs.stop * CHUNKS_PER_DOC]
        names = np.array([f"syn{d:07d}:{i:05d}" for d in docs for i in range(CHUNKS_PER_DOC)], dtype=object)
        sims = queries @ block.T
        both = np.concatenate([best, sims], axis=1)
        both_ids = np.concatenate([ids, np.broadcast_to(names, sims.shape)], axis=1)
        top = np.argpartition(-both, 9, axis=1)[:, :10]
        best = np.take_along_axis(both, top, axis=1)
        ids = np.take_along_axis(both_ids, top, axis=1)
    return [set(row) for row in ids]


def measure(size: int, data_dir: Path, vectors: str = "random", seed: int = 0) -> dict[str, Any]:
    """The figures of one size (run in its own process for a meaningful peak RSS)."""
    from rag.config import Settings
    from rag.retrieve import RetrievalContext, make_retriever
    from rag.store import Store

    corpus = Corpus(size, seed)
    settings = Settings(data_dir=str(data_dir), kb="scale")
    embedder: Any = None
    if vectors == "model":
        from rag.embed import make_embedder

        embedder = make_embedder(settings)
        embedder.embed(["warm up"])
    store = Store.from_settings(settings)
    stored: list[np.ndarray] = []
    t0 = time.perf_counter()
    batch = []
    for doc, chunks in corpus:
        vecs = embedder.embed([c.embed_text for c in chunks]) if embedder else random_vectors(seed, int(doc.doc_id[3:]))
        if embedder:
            stored.append(vecs)
        batch.append((doc, chunks, vecs))
        if len(batch) == BATCH_DOCS:
            store.add_documents(batch)
            batch = []
    store.add_documents(batch)
    ingest_s = time.perf_counter() - t0
    n_chunks = corpus.documents * CHUNKS_PER_DOC

    rng = np.random.default_rng([seed, 5])
    questions = corpus.queries(QUESTIONS)
    if embedder:
        qvecs = embedder.embed(questions)
    else:
        # A question lies near one chunk: its vector plus noise of half its norm.
        targets = rng.integers(corpus.documents, size=QUESTIONS)
        qvecs = _unit(np.stack([random_vectors(seed, int(d))[int(rng.integers(CHUNKS_PER_DOC))] for d in targets])
                      + 0.5 * _unit(rng.normal(size=(QUESTIONS, DIM))))
        embedder = QuestionVectors(dict(zip(questions, qvecs)))
    t1 = time.perf_counter()
    store.bm25_index()
    from rag.strategies.hops import name_index

    name_index(store)
    warm_s = time.perf_counter() - t1

    ctx = RetrievalContext(store, embedder)
    p50, p95 = {}, {}
    for name in STRATEGIES:
        retriever = make_retriever(name, ctx, settings)
        retriever.retrieve(questions[0], settings.top_k)
        times = []
        for q in questions:
            t = time.perf_counter()
            retriever.retrieve(q, settings.top_k)
            times.append((time.perf_counter() - t) * 1000)
        p50[name] = round(statistics.median(times), 2)
        p95[name] = round(float(np.percentile(times, 95)), 2)

    exact = _exact_top10(corpus, seed, np.asarray(qvecs), np.concatenate(stored) if stored else None)
    found = [{h.chunk.id for h in store.query(v, 10)} for v in qvecs]
    recall = float(np.mean([len(f & e) / 10 for f, e in zip(found, exact)]))

    extra = Corpus(size + CHUNKS_PER_DOC, seed)
    doc, chunks = extra.document(corpus.documents)
    if isinstance(embedder, QuestionVectors):
        vecs = random_vectors(seed, corpus.documents)
    else:
        vecs = embedder.embed([c.embed_text for c in chunks])
    t2 = time.perf_counter()
    store.add_document(doc, chunks, vecs)
    store.bm25_index()
    name_index(store)
    add_s = time.perf_counter() - t2
    assert store.bm25_search(chunks[0].text, 1)[0].chunk.doc_id == doc.doc_id
    store.lexical.wait_saved()
    store.close()
    return {
        "chunks": n_chunks,
        "ingest_chunks_per_s": round(n_chunks / ingest_s, 1),
        "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "disk_mb": round(_du_mb(data_dir), 1),
        "p50_ms": p50,
        "p95_ms": p95,
        "recall10_vs_exact": round(recall, 4),
        "add_one_doc_s": round(add_s, 3),
        "index_warm_s": round(warm_s, 2),
        "vectors": vectors,
    }


def plot(sizes: dict[str, dict[str, Any]], path: Path) -> None:
    """Retrieval p50 per strategy and ingest rate against the size (log-log)."""
    from rag.extras import require

    require("matplotlib", "eval")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = sorted(sizes, key=int)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name in STRATEGIES:
        left.plot([int(n) for n in ns], [sizes[n]["p50_ms"][name] for n in ns], marker="o", label=f"{name} p50")
    left.set(xscale="log", yscale="log", xlabel="chunks", ylabel="ms per question", title="retrieval latency")
    left.legend()
    right.plot([int(n) for n in ns], [sizes[n]["add_one_doc_s"] for n in ns], marker="o", label="add one doc (s)")
    right.plot([int(n) for n in ns], [sizes[n]["rss_mb"] / 1000 for n in ns], marker="s", label="peak RSS (GB)")
    right.set(xscale="log", xlabel="chunks", title="write cost and memory")
    right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":  # one size: python -m rag.bench.scale N DATA_DIR VECTORS SEED
    import logging

    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(measure(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))))
