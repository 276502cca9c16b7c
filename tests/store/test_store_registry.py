"""The document registry in a real ``chroma run`` server (rag.store.registry): what replicas on two data dirs share."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest
from servers import chroma_serving
from test_store_vectors import SmallBatches

from rag.consistency import check_consistency
from rag.config import Settings
from rag.store import Store, knowledge_base_names
from rag.ui_support import knowledge_bases as ui_knowledge_bases
from rag.store.manifest import DocumentManifest, Manifest
from rag.store.registry import ChromaManifest, registered_kbs, registry_id
from rag.store.vectors import server_client
from rag.types import Chunk, Document


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    with chroma_serving(tmp_path_factory.mktemp("chroma-registry")) as url:
        yield url


@pytest.fixture(scope="module")
def client(chroma_url):
    return server_client(chroma_url)


_KB = iter(range(10**6))


@pytest.fixture
def kb() -> str:
    return f"reg{next(_KB)}-{time.time_ns() % 10**9}"


def doc(doc_id: str, source: str | None = None, chunks: int = 2) -> Document:
    return Document(doc_id, source or f"{doc_id}.md", doc_id, 1, chunks, time.time())


def registry(client, kb: str, site: str, poll_s: float = 0.0) -> ChromaManifest:
    return ChromaManifest(client, kb, "test server", site, poll_s=poll_s)


def test_both_backends_have_the_manifest_interface(client, kb, tmp_path):
    assert isinstance(registry(client, kb, "a"), DocumentManifest)
    sqlite = Manifest(tmp_path / "manifest.sqlite", kb)
    assert isinstance(sqlite, DocumentManifest)
    sqlite.close()


def test_a_commit_is_seen_by_another_instance_with_the_same_generation(client, kb):
    a, b = registry(client, kb, "host-a:/data"), registry(client, kb, "host-b:/data")
    assert not b.existed and b.documents() == []
    g0 = b.generation()
    a.add_pending(doc("d1"))
    assert b.documents() == [] and b.generation() == g0  # pending: invisible (and no clock tick)
    a.commit("d1")
    assert [d.doc_id for d in b.documents()] == ["d1"] and b.status("d1") == "committed"
    assert b.generation() != g0 and b.generation() == a.generation()
    assert b.snapshot() == (a.generation(), ["d1"])
    # A replacement: the new record committed and the old one deleting in one request.
    a.add_pending(doc("d2", source="d1.md"), replaces=["d1"])
    a.commit("d2", replaces=["d1"])
    assert b.statuses({"d1", "d2", "nope"}) == {"d1": "deleting", "d2": "committed"}
    assert b.in_flight_chunks() == 2 and b.in_flight_ids() == ["d1"]
    assert [d.doc_id for d in b.by_source("d1.md")] == ["d2"]
    g2 = b.generation()
    a.remove("d1")  # the committed set does not change: neither does the generation
    assert b.rows() and {r.doc_id for r in b.rows()} == {"d2"} and b.generation() == g2
    a.bump()  # a derived index rebuilt: same documents, new generation
    assert b.generation() not in (g2,) and b.committed_ids() == ["d2"]
    a.record_embed_model("minilm")
    assert b.embed_model() == "minilm"


def test_two_writers_cannot_hide_each_others_changes(client, kb):
    """A writer that has not seen the other's change and then writes must not mask it (one shared counter would)."""
    reader = registry(client, kb, "reader", poll_s=0.0)
    a = registry(client, kb, "host-a", poll_s=3600)  # never polls by itself: its view goes stale
    b = registry(client, kb, "host-b", poll_s=3600)
    seen = reader.generation()
    b.add_pending(doc("from-b"))
    b.commit("from-b")
    assert reader.committed_ids() == ["from-b"] and reader.generation() != seen
    a.add_pending(doc("from-a"))
    a.commit("from-a")  # a's view lacks from-b, and a's write ticks only a's clock
    assert sorted(reader.committed_ids()) == ["from-a", "from-b"]
    assert a.committed_ids() == ["from-a"]  # stale until it polls
    a.refresh()
    assert sorted(a.committed_ids()) == ["from-a", "from-b"] and a.generation() == reader.generation()


def test_a_poll_reloads_only_when_a_clock_changed(client, kb, monkeypatch):
    a, b = registry(client, kb, "a"), registry(client, kb, "b")
    loads = []
    load = b._load
    monkeypatch.setattr(b, "_load", lambda clocks=None: loads.append(1) or load(clocks))
    for _ in range(5):
        assert b.committed_ids() == []
    assert loads == []  # the clocks are re-read, not every record
    a.add_pending(doc("y"))
    a.commit("y")
    assert b.status("y") == "committed" and len(loads) == 1


def test_reads_see_another_writer_within_poll_s(client, kb):
    a, b = registry(client, kb, "a"), registry(client, kb, "b", poll_s=0.5)
    b.committed_ids()
    a.add_pending(doc("x"))
    a.commit("x")
    t0 = time.monotonic()
    while not b.committed_ids():
        assert time.monotonic() - t0 < 2
        time.sleep(0.05)
    assert b.committed_ids() == ["x"]


def test_writing_pins_the_view(client, kb):
    a, b = registry(client, kb, "a"), registry(client, kb, "b")
    with a.writing():
        g = a.generation()
        b.add_pending(doc("foreign"))
        b.commit("foreign")
        assert a.generation() == g and a.committed_ids() == []  # no reload inside a write
    assert a.committed_ids() == ["foreign"]


def test_in_flight_ids_never_offer_another_sites_write_in_progress(client, kb, monkeypatch):
    here, there = registry(client, kb, "host-a:/data"), registry(client, kb, "host-b:/data")
    there.add_pending(doc("theirs"))
    here.add_pending(doc("mine"))
    there.add_pending(doc("gone"))
    there.commit("gone")
    there.mark_deleting("gone")
    assert sorted(here.in_flight_ids()) == ["gone", "mine"]
    import rag.store.registry as reg

    monkeypatch.setattr(reg, "STALE_PENDING_S", -1.0)  # an old pending write of another site: interrupted
    assert sorted(here.in_flight_ids()) == ["gone", "mine", "theirs"]
    assert here.mark_deleting("nope") is False


def _chunks(doc_id: str, texts: list[str]) -> list[Chunk]:
    return [Chunk(f"{doc_id}:{i:05d}", doc_id, t, f"{doc_id}.md", index=i) for i, t in enumerate(texts)]


def _vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_stores_on_two_data_dirs_share_documents_and_indexes(chroma_url, kb, tmp_path):
    a = Store(tmp_path / "a" / "index", kb, chroma_url)
    b = Store(tmp_path / "b" / "index", kb, chroma_url)
    try:
        assert isinstance(a.manifest, ChromaManifest) and not a.layout.manifest.exists()
        assert b.bm25_search("llama", 3) == []
        texts = ["Llamas carry loads across the Andes.", "Alpaca fibre is finer than llama wool."]
        chunks = _chunks("llama", texts)
        vecs = _vectors(2, 1)
        a.add_document(Document("llama", "llama.md", "Llamas", 1, 2, time.time()), chunks, vecs)
        time.sleep(1.1)  # the default poll interval
        assert [d.doc_id for d in b.documents()] == ["llama"]
        assert b.bm25_search("llama wool", 1)[0].chunk.id == "llama:00001"  # b's lexical index caught up
        assert b.query(vecs[0], 1)[0].chunk.id == "llama:00000"
        assert check_consistency(b) == []
        assert kb in registered_kbs(b.client)
        # the UI's and the API's knowledge-base lists on another data dir see it too
        other = Settings(data_dir=str(tmp_path / "c"), chroma_url=chroma_url)
        assert kb in knowledge_base_names(other.index_dir, chroma_url) and kb in ui_knowledge_bases(other)
        assert kb not in knowledge_base_names(other.index_dir)  # without the server: local ones only
        a.delete("llama")
        time.sleep(1.1)
        assert b.documents() == [] and b.bm25_search("llama", 3) == [] and b.query(vecs[0], 1) == []
    finally:
        a.close()
        b.close()


def test_writer_lexical_index_applies_its_own_change_without_refetching(chroma_url, kb, tmp_path):
    a = Store(tmp_path / "a" / "index", kb, chroma_url)
    try:
        fetched: list[list[str]] = []
        fetch = a.lexical._fetch
        a.lexical._fetch = lambda ids: fetched.append(ids) or fetch(ids)
        a.bm25_index()
        a.add_document(doc("one", chunks=1), _chunks("one", ["Vicuñas live wild."]), _vectors(1, 2))
        assert a.lexical.table.generation() == a.generation() and fetched == []
        assert a.bm25_search("vicuñas", 1)[0].chunk.doc_id == "one"
    finally:
        a.close()


def test_drop_removes_the_registry(client, kb, tmp_path):
    a = Store(tmp_path / "a" / "index", kb, client=client)  # a server client given: the registry too
    assert isinstance(a.manifest, ChromaManifest)
    a.add_document(doc("one", chunks=1), _chunks("one", ["Guanacos."]), _vectors(1, 3))
    assert kb in registered_kbs(a.client)
    assert registry_id(client, kb) == a.manifest.collection_id
    a.drop()
    assert kb not in registered_kbs(client)
    assert registry_id(client, kb) is None  # looked up by name: gone, not an error


def test_a_local_manifest_is_migrated_on_first_open(chroma_url, kb, tmp_path, caplog):
    # A knowledge base used in server mode before the registry: its documents are in <kb>/manifest.sqlite.
    index = tmp_path / "index"
    (index / kb).mkdir(parents=True)
    old = Manifest(index / kb / "manifest.sqlite", kb)
    old.record_embed_model("old-model")
    for d in ("m1", "m2"):
        old.add_pending(doc(d, chunks=1))
    old.commit("m1")
    old.close()
    with caplog.at_level(logging.INFO, logger="rag.store.registry"):
        store = Store(index, kb, chroma_url)
    try:
        lines = [r.getMessage() for r in caplog.records if "copied" in r.getMessage()]
        assert len(lines) == 1 and "2 documents" in lines[0], lines
        assert store.manifest.existed and store.status("m1") == "committed" and store.status("m2") == "pending"
        assert store.embed_model() == "old-model"
        assert not (index / kb / "manifest.sqlite").exists() and (index / kb / "manifest.sqlite.migrated").exists()
        assert store.recover() == ["m2"]  # this site's interrupted write
    finally:
        store.close()
    # Another replica with an old manifest of its own: the registry is not empty, so nothing is copied.
    (tmp_path / "other" / "index" / kb).mkdir(parents=True)
    stale = Manifest(tmp_path / "other" / "index" / kb / "manifest.sqlite", kb)
    stale.restore("stale", "stale.md", "stale", 1, 1)
    stale.close()
    other = Store(tmp_path / "other" / "index", kb, chroma_url)
    try:
        assert [d.doc_id for d in other.documents()] == ["m1"]
        assert (tmp_path / "other" / "index" / kb / "manifest.sqlite").exists()
    finally:
        other.close()


def test_old_clock_records_are_pruned_on_open(client, kb, monkeypatch):
    a = registry(client, kb, "a")
    a.add_pending(doc("z"))
    a.record_embed_model("m")
    reader = registry(client, kb, "reader")
    assert f"clock:{a.writer}" in reader._read_clocks()
    import rag.store.registry as reg

    monkeypatch.setattr(reg, "CLOCK_TTL_S", -1.0)
    registry(client, kb, "b")  # opening prunes every clock older than the TTL
    assert reader._read_clocks() == {}
    assert reader.status("z") == "pending"  # the removal reads as a change: nothing lost
    a.commit("z")
    assert reader.committed_ids() == ["z"] and f"clock:{a.writer}" in reader._read_clocks()


def test_a_batch_of_documents_is_one_commit_seen_whole(chroma_url, kb, tmp_path):
    a = Store(tmp_path / "a" / "index", kb, chroma_url)
    b = Store(tmp_path / "b" / "index", kb, chroma_url)
    try:
        g0 = b.generation()
        batch = [(doc(d, chunks=1), _chunks(d, [f"The {d} is a camelid."]), _vectors(1, i))
                 for i, d in enumerate(["vicuna", "guanaco"])]
        a.add_documents(batch)
        b.manifest.refresh()
        assert sorted(b.committed_ids()) == ["guanaco", "vicuna"] and b.generation() == a.generation() != g0
        assert b.bm25_search("guanaco camelid", 1)[0].chunk.doc_id == "guanaco"
        assert a.lexical.table.generation() == a.generation()
    finally:
        a.close()
        b.close()


def test_records_are_written_in_batches_of_the_clients_size(client, kb):
    a = registry(SmallBatches(client, 2), kb, "a")
    a.add_pending_many([doc(f"d{i}") for i in range(5)])
    a.commit_many([f"d{i}" for i in range(5)])
    assert registry(client, kb, "b").committed_ids() == [f"d{i}" for i in range(5)]
