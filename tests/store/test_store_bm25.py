"""The BM25 index of a knowledge base: committed documents only, filters, persistence, staleness, corruption."""

from __future__ import annotations

import numpy as np
import pytest

from rag.store.lexical import matches
from rag.errors import StoreError
from rag.retrieve import Filters
from rag.store import Store
from rag.types import Chunk, Document

TEXTS = {
    "alpaca": ["Alpacas graze on the Altiplano in herds.", "Alpaca fibre is spun into yarn.", "The shearing season starts in spring."],
    "loom": ["A backstrap loom is tied to the weaver.", "Cochineal gives a red dye for alpaca yarn."],
}


def chunks_of(doc_id: str, texts: list[str], source: str) -> list[Chunk]:
    return [
        Chunk(f"{doc_id}:{i:05d}", doc_id, t, source, page=i + 1, page_end=i + 1, index=i)
        for i, t in enumerate(texts)
    ]


def vectors(n: int) -> np.ndarray:
    v = np.random.default_rng(n).normal(size=(n, 8)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def add(store: Store, doc_id: str, texts: list[str], source: str | None = None, replaces=()) -> None:
    source = source or f"{doc_id}.pdf"
    chunks = chunks_of(doc_id, texts, source)
    store.add_document(Document(doc_id, source, doc_id, len(texts), len(chunks), 0.0), chunks, vectors(len(chunks)), replaces)


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "index", "kb")
    for doc_id, texts in TEXTS.items():
        add(s, doc_id, texts)
    yield s
    s.close()


def test_search_scores_and_origin(store):
    hits = store.bm25_search("alpaca yarn", 5)
    assert [h.chunk.id for h in hits][:1] in (["alpaca:00001"], ["loom:00001"])
    assert {h.chunk.id for h in hits} == {"alpaca:00000", "alpaca:00001", "loom:00001"}
    assert all(h.origin == "bm25" and h.score > 0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert [h.rank for h in hits] == list(range(len(hits)))
    assert hits[0].chunk.text and hits[0].chunk.page is not None
    assert store.bm25_search("alpaca", 1)[0].chunk.doc_id in TEXTS
    assert store.bm25_search("zebra quantum", 5) == [] and store.bm25_search("the", 5) == []


def test_where_filters_match_retrieve_filters(store):
    by_doc = store.bm25_search("alpaca", 5, where=Filters(doc_id="loom").where())
    assert [h.chunk.id for h in by_doc] == ["loom:00001"]
    pages = store.bm25_search("alpaca spring yarn", 5, where=Filters(page_min=2, page_max=3).where())
    assert {h.chunk.page for h in pages} <= {2, 3} and pages
    assert store.bm25_search("alpaca", 5, where=Filters(source="nowhere.pdf").where()) == []


def test_matches_chroma_semantics():
    meta = {"doc_id": "a", "page": 3, "source": "x"}
    assert matches({"$and": [{"doc_id": "a"}, {"page": {"$gte": 2}}]}, meta)
    assert not matches({"$and": [{"doc_id": "a"}, {"page": {"$lt": 3}}]}, meta)
    assert matches({"$or": [{"doc_id": "b"}, {"source": {"$in": ["x", "y"]}}]}, meta)
    assert not matches({"page": {"$gte": 1}}, {"doc_id": "a"})  # a text chunk has no page
    with pytest.raises(ValueError, match=r"\$regex"):
        matches({"page": {"$regex": "1"}}, meta)


def test_generation_counts_commits_and_deletes(store):
    g = store.generation()
    add(store, "extra", ["Vicunas live wild."])
    assert store.generation() == g + 1
    store.delete("extra")
    assert store.generation() == g + 2


def test_index_follows_add_replace_delete(store):
    add(store, "llama", ["Llamas carry packs over the mountains."])
    assert [h.chunk.doc_id for h in store.bm25_search("llamas packs", 3)] == ["llama"]
    add(store, "llama2", ["Llamas now pull carts."], source="llama.pdf", replaces=["llama"])
    assert [h.chunk.doc_id for h in store.bm25_search("llamas", 3)] == ["llama2"]
    store.delete("llama2")
    assert store.bm25_search("llamas", 3) == []
    assert set(store.bm25_index().ids) == {c.id for c in store.chunks()}


def test_pending_document_is_invisible(store):
    # A write interrupted between the Chroma upsert and the commit.
    chunks = chunks_of("half", ["Guanacos are wild camelids."], "half.pdf")
    store.manifest.add_pending(Document("half", "half.pdf", "half", 1, 1, 0.0))
    store.vectors.upsert(chunks, vectors(1))
    assert store.rebuild_bm25() == 5
    assert store.bm25_search("guanacos", 3) == []
    assert store.recover() == ["half"]
    assert "half:00000" not in store.collection.get()["ids"]


def test_index_persists_and_reloads_without_rebuild(store, tmp_path, monkeypatch):
    store.bm25_search("alpaca", 1)
    store.lexical.wait_saved()
    other = Store(tmp_path / "index", "kb", client=store.client)
    monkeypatch.setattr(other.lexical, "rebuild", lambda: pytest.fail("rebuilt although the saved index is current"))
    monkeypatch.setattr(other.lexical, "catch_up", lambda **k: pytest.fail("caught up although the index is current"))
    assert other.bm25_search("loom", 1)[0].chunk.id == "loom:00000"
    assert other.lexical.table.generation() == other.generation()
    assert [p.name for p in other.bm25_dir.iterdir()] == [f"base-{5:012d}.npz"]


def test_stale_index_catches_up_lazily(store, tmp_path):
    store.bm25_search("alpaca", 1)
    other = Store(tmp_path / "index", "kb", client=store.client)
    add(other, "llama", ["Llamas carry packs."])  # another process commits
    assert [h.chunk.doc_id for h in store.bm25_search("llamas", 2)] == ["llama"]


def test_index_behind_the_manifest_catches_up_from_chroma(store, tmp_path):
    # A crash between the manifest commit and the lexical write: the index is one generation behind.
    store.lexical.table.apply(store.generation() - 1, remove_docs=["loom"])
    other = Store(tmp_path / "index", "kb", client=store.client)
    assert other.bm25_search("backstrap loom", 1)[0].chunk.id == "loom:00000"
    assert other.lexical.table.generation() == other.generation()


def test_corrupt_base_is_rebuilt(store, tmp_path, caplog):
    store.bm25_search("alpaca", 1)
    store.lexical.wait_saved()
    for f in store.bm25_dir.iterdir():
        f.write_bytes(b"\x00garbage")
    other = Store(tmp_path / "index", "kb", client=store.client)
    assert other.bm25_search("loom", 1)[0].chunk.id == "loom:00000"
    assert "unreadable" in caplog.text
    other.lexical.wait_saved()  # the rebuilt base replaces the unreadable one: the next reader loads it silently
    caplog.clear()
    third = Store(tmp_path / "index", "kb", client=store.client)
    assert third.bm25_search("loom", 1)[0].chunk.id == "loom:00000"
    assert "unreadable" not in caplog.text


def test_unrebuildable_index_names_the_recovery_command(store, tmp_path, monkeypatch):
    store.lexical.table.apply(-1, clear=True)  # lost: the next reader must read Chroma
    other = Store(tmp_path / "index", "kb", client=store.client)

    def broken_get(*a, **k):
        raise RuntimeError("disk I/O error")

    monkeypatch.setattr(other.collection, "get", broken_get)
    with pytest.raises(StoreError, match="hoprag reindex --kb kb"):
        other.bm25_search("loom", 1)


def test_explicit_rebuild_replaces_a_corrupt_copy(store, tmp_path, monkeypatch):
    store.bm25_search("alpaca", 1)
    store.lexical.wait_saved()
    for f in store.bm25_dir.iterdir():
        f.write_bytes(b"\x00garbage")
    assert store.rebuild_bm25() == 5
    store.lexical.wait_saved()
    other = Store(tmp_path / "index", "kb", client=store.client)
    monkeypatch.setattr(other.lexical, "rebuild", lambda: pytest.fail("the saved index is still corrupt"))
    assert len(other.bm25_index().ids) == 5
