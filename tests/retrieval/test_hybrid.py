"""Hybrid retrieval: weighted reciprocal rank fusion, metadata filters, relevance cutoff."""

from __future__ import annotations

import pytest
from corpora import BRIDGE, BRIDGE_QUESTION, build_kb, open_rag

from rag.retrieve import Filters
from rag.strategies.hybrid import rrf
from rag.types import Chunk, Hit


def _hits(ids, origin):
    return [Hit(Chunk(id=i, doc_id=i, text=i, source=i), score=1.0, rank=r, origin=origin) for r, i in enumerate(ids)]


def test_rrf_sums_weighted_reciprocal_ranks():
    fused = rrf([_hits("abc", "dense"), _hits("cd", "bm25")], weights=(1.0, 0.5), k=10)
    # a: 1/11, b: 1/12, c: 1/13 + 0.5/11, d: 0.5/12
    assert [h.chunk.id for h in fused] == ["c", "a", "b", "d"]
    assert fused[0].score == pytest.approx(1 / 13 + 0.5 / 11)
    assert fused[3].score == pytest.approx(0.5 / 12)
    assert [h.origin for h in fused] == ["hybrid", "dense", "dense", "bm25"]
    assert [h.rank for h in fused] == [0, 1, 2, 3]


def test_rrf_weights_and_ties():
    # With the BM25 weight at 0 the dense order stands.
    assert [h.chunk.id for h in rrf([_hits("abc", "dense"), _hits("cba", "bm25")], (1.0, 0.0), 60)] == list("abc")
    # Equal scores keep first-seen order (deterministic).
    assert [h.chunk.id for h in rrf([_hits("ab", "dense"), _hits("ba", "bm25")], (1.0, 1.0), 60)] == list("ab")


@pytest.fixture(scope="module")
def bridge_kb(tmp_path_factory, embedder):
    return build_kb(
        tmp_path_factory, embedder, BRIDGE, page_of=lambda key: {"zorblax": 1, "catalogue": 2, "mirela": 3}.get(key, 9)
    )


@pytest.fixture
def bridge_rag(bridge_kb, embedder):
    with open_rag(bridge_kb, embedder, strategy="hybrid") as rag:
        yield rag


def test_hybrid_fuses_both_rankings(bridge_rag):
    dense = bridge_rag.retrieve(BRIDGE_QUESTION, 3, strategy="single")
    lexical = bridge_rag.store.bm25_search(BRIDGE_QUESTION, 3)
    hits = bridge_rag.retrieve(BRIDGE_QUESTION, 3)
    assert len(hits) == 3
    ids = {h.chunk.id for h in hits}
    assert ids <= {h.chunk.id for h in dense} | {h.chunk.id for h in lexical}
    # The top BM25 hit, which dense ranks third, is lifted to second by the fusion.
    assert lexical[0].chunk.id == "labels" and [h.chunk.id for h in dense].index("labels") == 2
    assert [h.chunk.id for h in hits][:2] == ["zorblax", "labels"]
    # BM25 alone (dense weight 0) gives the BM25 order.
    only_bm25 = bridge_rag.retrieve(BRIDGE_QUESTION, 3, fusion_dense_weight=0.0)
    assert [h.chunk.id for h in only_bm25] == [h.chunk.id for h in lexical]


def test_hybrid_filters(bridge_rag):
    hits = bridge_rag.retrieve(BRIDGE_QUESTION, 5, filters={"doc_id": "workshop"})
    assert [h.chunk.id for h in hits] == ["workshop"]
    hits = bridge_rag.retrieve(BRIDGE_QUESTION, 5, filters=Filters(source="otter.txt"))
    assert [h.chunk.id for h in hits] == ["otter"]
    hits = bridge_rag.retrieve(BRIDGE_QUESTION, 5, filters={"page_min": 2, "page_max": 3})
    assert {h.chunk.id for h in hits} == {"catalogue", "mirela"}


def test_hybrid_cutoff_drops_weak_hits_instead_of_padding(bridge_rag):
    assert len(bridge_rag.retrieve(BRIDGE_QUESTION, 5)) == 5
    dense = {h.chunk.id: h.score for h in bridge_rag.retrieve(BRIDGE_QUESTION, 6, strategy="single")}
    cut = bridge_rag.retrieve(BRIDGE_QUESTION, 5, min_score=0.55)
    assert cut and len(cut) < 5
    assert {h.chunk.id for h in cut} == {cid for cid, score in dense.items() if score >= 0.55}
    # 'workshop' is BM25's second hit but weak for dense: the cutoff drops it.
    assert "workshop" not in {h.chunk.id for h in cut}
