"""The incremental lexical and name indexes: one document's add or delete touches only its rows, and
retrieval after incremental changes matches a full rebuild."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest

from rag.bench.synthetic import CHUNKS_PER_DOC, Corpus
from rag.config import Settings
from rag.retrieve import RetrievalContext, make_retriever
from rag.store import Store
from rag.strategies.hops import NameIndex, name_index, names, title_head

DIM = 8


def _vectors(doc: int) -> np.ndarray:
    v = np.random.default_rng(doc).normal(size=(CHUNKS_PER_DOC, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _fill(store: Store, corpus: Corpus, docs: range, batch: int = 250) -> None:
    items = [(doc, chunks, _vectors(d)) for d, (doc, chunks) in zip(docs, map(corpus.document, docs))]
    for start in range(0, len(items), batch):
        store.add_documents(items[start : start + batch])


def _snapshot(store: Store) -> tuple[dict[int, str], dict[int, int]]:
    """Row -> chunk id, and row -> how many names it has."""
    db = store.lexical.table.db()
    rows = dict(db.execute("SELECT row, id FROM chunks"))
    named = dict(db.execute("SELECT row, COUNT(*) FROM names GROUP BY row"))
    return rows, named


def _base_files(store: Store) -> dict[str, int]:
    store.lexical.wait_saved()
    return {p.name: p.stat().st_mtime_ns for p in store.bm25_dir.glob("*")}


class _Question:
    model_id = "test"

    def embed(self, texts, progress=None):
        return np.stack([_vectors(len(t))[0] for t in texts])

    def count_tokens(self, text):
        return len(text.split())


@pytest.mark.slow
def test_one_document_in_a_50k_chunk_kb_touches_only_its_rows(tmp_path):
    corpus = Corpus(50_000)
    store = Store(tmp_path / "index", "big")
    t0 = time.perf_counter()
    _fill(store, corpus, range(corpus.documents))
    store.bm25_index()
    name_index(store)
    built_s = time.perf_counter() - t0
    rows, named = _snapshot(store)
    assert len(rows) == 50_000 and len(named) > 49_000
    bases = _base_files(store)
    assert list(bases) == [f"base-{50_000:012d}.npz"]
    db = store.lexical.table.db()

    # Add one 20-chunk document: 20 new rows (and the generation); no other row, no base file rewritten.
    doc, chunks = Corpus(50_000 + CHUNKS_PER_DOC).document(corpus.documents)
    before = db.total_changes
    store.add_document(doc, chunks, _vectors(corpus.documents))
    assert db.total_changes - before == CHUNKS_PER_DOC + 1
    hits = store.bm25_search(chunks[3].text, 1)
    index = name_index(store)
    assert hits[0].chunk.id == chunks[3].id
    after_rows, after_named = _snapshot(store)
    new = {r: cid for r, cid in after_rows.items() if r not in rows}
    assert sorted(new.values()) == [c.id for c in chunks]
    assert {r: after_rows[r] for r in rows} == rows  # every old row kept its number and chunk
    assert {r: n for r, n in after_named.items() if r in rows} == named  # and its names
    assert set(after_named) - set(named) == set(new)
    assert _base_files(store) == bases
    assert index.links(chunks[0].id, set(), 0.05)

    # Delete it again: only its rows (and their names, by trigger) go.
    before = db.total_changes
    store.delete(doc.doc_id)
    touched = db.total_changes - before
    store.bm25_search("anything", 1)
    assert _snapshot(store) == (rows, named)
    assert touched <= CHUNKS_PER_DOC + 3 * sum(after_named[r] for r in new) + 1
    assert _base_files(store) == bases
    assert store.bm25_search(chunks[3].text, 1)[0].chunk.doc_id != doc.doc_id
    store.close()
    print(f"50k-chunk KB built in {built_s:.1f} s")


def test_incremental_changes_match_a_full_rebuild(tmp_path):
    corpus = Corpus(3000)
    store = Store(tmp_path / "index", "kb")
    _fill(store, corpus, range(100), batch=40)
    store.bm25_index()
    name_index(store)
    # Incremental: documents one by one, a replacement and deletes, with queries in between (deltas, tombstones).
    for d in range(100, corpus.documents):
        doc, chunks = corpus.document(d)
        store.add_document(doc, chunks, _vectors(d))
        if d % 10 == 0:
            store.bm25_search("query in between", 3)
    store.delete("syn0000003")
    store.delete("syn0000120")
    doc, chunks = corpus.document(7)
    store.add_document(doc, [replace(c, text=c.text + " Zanzibar") for c in chunks],
                       _vectors(7), replaces=[doc.doc_id])
    questions = corpus.queries(30) + ["Zanzibar"]
    settings = Settings()
    ctx = RetrievalContext(store, _Question())

    def results():
        lexical = [[(h.chunk.id, round(h.score, 4)) for h in store.bm25_search(q, 10)] for q in questions]
        hops = [[h.chunk.id for h in make_retriever("hops", ctx, settings).retrieve(q, 5)[0]] for q in questions]
        return lexical, hops

    incremental = results()
    view = name_index(store)
    full = NameIndex.build(store.chunks())
    for cid in [f"syn{d:07d}:00002" for d in (0, 7, 50, 140)]:
        assert view.rare(cid, set(), 0.05) == full.rare(cid, set(), 0.05)
        assert view.links(cid, set(), 0.05, 1.0) == pytest.approx(full.links(cid, set(), 0.05, 1.0))
    assert view.idf["zanzibar"] == pytest.approx(full.idf["zanzibar"])
    zanzibar = store.bm25_search("Zanzibar", 30)
    assert zanzibar and {h.chunk.doc_id for h in zanzibar} == {doc.doc_id}

    assert store.rebuild_bm25() == (corpus.documents - 2) * CHUNKS_PER_DOC
    assert results() == incremental
    store.close()


def test_names_follow_the_extractor_version(tmp_path):
    corpus = Corpus(100)
    store = Store(tmp_path / "index", "kb")
    _fill(store, corpus, range(corpus.documents))
    title = corpus.document(3)[0].title.lower()
    first = store.name_index(names, title_head, 1)
    assert first.df(title) >= CHUNKS_PER_DOC and len(first.idf) > corpus.documents
    assert len(first.titled[title]) == CHUNKS_PER_DOC
    # Another extractor (a new version of hops' names): every row's names are extracted again.
    only_titles = store.name_index(lambda text: {text.split("\n")[0].lower()}, title_head, 2)
    assert set(only_titles.idf) == {doc.title.lower() for doc, _ in corpus}
    assert only_titles.df(title) == CHUNKS_PER_DOC
    store.close()
