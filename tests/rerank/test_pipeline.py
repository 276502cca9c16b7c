"""Reranking inside RAG: candidates from the first stage, the reranker's top_k, a trace step."""

from __future__ import annotations

import pytest

from rag.engines.openai_compat import OpenAICompatEngine
from rag.types import Answer
from tests.rerank.conftest import QUERY, TEXTS


@pytest.fixture
def kb_files(tmp_path):
    paths = []
    for i, text in enumerate(TEXTS):
        path = tmp_path / f"fact{i}.txt"
        path.write_text(text + "\n", encoding="utf-8")
        paths.append(path)
    return paths


@pytest.mark.slow
def test_stream_reranks_candidates_and_traces_it(make_rag, engine, kb_files):
    rag = make_rag(engine=engine, reranker="pointwise", rerank_candidates=4, top_k=2, max_new_tokens=1)
    assert rag.ingest(kb_files).ok
    answer = [item for item in rag.stream(QUERY) if isinstance(item, Answer)][-1]
    step = [s for s in answer.trace.steps if s.name == "rerank:pointwise"][0]
    assert len(step.detail["before"]) == 4 and len(step.detail["scores"]) == 4
    assert [h.chunk.id for h in answer.passages] == step.detail["after"][:2]
    scores = step.detail["scores"]
    assert [h.score for h in answer.passages] == pytest.approx(sorted(scores.values(), reverse=True)[:2], abs=1e-4)
    assert answer.passages[0].score == pytest.approx(max(scores.values()), abs=1e-4)


def test_unreachable_engine_keeps_first_stage_order(make_rag, kb_files):
    rag = make_rag(engine=OpenAICompatEngine("http://127.0.0.1:9/v1", "m", timeout_s=2), reranker="pointwise",
                   rerank_candidates=4, top_k=2)
    assert rag.ingest(kb_files).ok
    first_stage = rag.retrieve(QUERY, reranker="none", top_k=2)
    assert [h.chunk.id for h in rag.retrieve(QUERY)] == [h.chunk.id for h in first_stage]
