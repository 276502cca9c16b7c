"""The embedding cache, the bf16 embedding path, and the bench ingest command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fakes import CountingEmbedder
from typer.testing import CliRunner

from ingest.embed_cache import EmbeddingCache, embed_cached
from rag import cli


def test_cache_embeds_each_text_once_per_model(tmp_path):
    emb = CountingEmbedder()
    cache = EmbeddingCache(tmp_path / "c.sqlite", emb.model_id)
    vecs, hits = embed_cached(emb, cache, ["a", "bb", "a"])
    assert hits == 0 and emb.seen == ["a", "bb"]  # duplicates in one call embed once
    assert vecs.tolist() == [[1, 1], [2, 1], [1, 1]]
    cache.close()

    reopened = EmbeddingCache(tmp_path / "c.sqlite", emb.model_id)  # persisted across runs
    vecs, hits = embed_cached(emb, reopened, ["bb", "ccc"])
    assert hits == 1 and emb.seen == ["a", "bb", "ccc"] and vecs.tolist() == [[2, 1], [3, 1]]
    other_model = EmbeddingCache(tmp_path / "c.sqlite", "another-model")
    assert other_model.get(["x"]) == {} and embed_cached(emb, other_model, ["a"])[1] == 0


@pytest.fixture(scope="module")
def torch_embedder(base_settings):
    """The torch runtime of the local embedder (HOPRAG_EMBED_BACKEND=torch), the one with a bf16 path."""
    from rag.embed.local import LocalEmbedder

    return LocalEmbedder(base_settings.models_dir)


def test_bf16_vectors_match_float32(torch_embedder, monkeypatch):
    embedder = torch_embedder
    texts = ["Alpacas graze on the Altiplano.", "ComplexMatrix operator * (const Matrix &a)", "set grid; plot sin(x)"]
    fast = embedder.embed(texts)
    monkeypatch.setattr(embedder, "bf16", False)
    exact = embedder.embed(texts)
    assert np.min(np.sum(fast * exact, axis=1)) > 0.999


@pytest.fixture
def shared_embedder_rag(embedder, monkeypatch):
    import rag.pipeline

    real = rag.pipeline.RAG
    monkeypatch.setattr(rag.pipeline, "RAG", lambda settings, **kw: real(settings, embedder=embedder))


def test_bench_ingest_command(shared_embedder_rag, good_files):
    result = CliRunner().invoke(cli.app, ["bench", "ingest", str(good_files["pdf"]), str(good_files["text"]), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["pages"] == 4 and figures["chunks"] >= 4
    assert figures["cold_s"] > 0 and figures["reingest_s"] > 0 and figures["pages_per_s"] > 0
    assert figures["reingest_unchanged"] == 2

