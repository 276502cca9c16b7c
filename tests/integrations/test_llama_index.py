"""The LlamaIndex adapter inside a RetrieverQueryEngine (MockLLM echoes its prompt: no model, no network)."""

from __future__ import annotations

import pytest
from kb_fixture import OTTER_QUESTION, build_kb
from llama_index.core import Settings as LlamaSettings
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore

from rag import RAG
from rag.integrations.llama_index import HopragRetriever


@pytest.fixture
def offline_llama(monkeypatch):
    """Global LlamaIndex defaults that never reach OpenAI (restored after the test)."""
    monkeypatch.setattr(LlamaSettings, "_llm", MockLLM())
    monkeypatch.setattr(LlamaSettings, "_embed_model", MockEmbedding(embed_dim=8))


@pytest.fixture(scope="module")
def kb_rag(tmp_path_factory, embedder):
    with RAG(build_kb(tmp_path_factory.mktemp("llama"), embedder), embedder=embedder) as opened:
        yield opened


def test_query_engine_answers_from_hoprag_passages(kb_rag, offline_llama):
    engine = RetrieverQueryEngine.from_args(HopragRetriever(kb_rag, k=2), llm=MockLLM())
    response = engine.query(OTTER_QUESTION)
    nodes = response.source_nodes
    assert 1 <= len(nodes) <= 2 and all(isinstance(n, NodeWithScore) for n in nodes)
    top = nodes[0]
    assert top.node.metadata["source"].endswith("otters.md") and top.score > 0
    assert top.node.ref_doc_id == top.node.metadata["doc_id"]
    # MockLLM echoes the synthesis prompt: the retrieved passage text reached the LLM ...
    assert "stones as tools" in str(response)
    # ... with its source but without internal ids
    shown = top.node.get_content(metadata_mode=MetadataMode.LLM)
    assert "otters.md" in shown and top.node.metadata["chunk_id"] not in shown


def test_retriever_filters_and_settings(kb_rag):
    bread = next(d.doc_id for d in kb_rag.documents() if d.source.endswith("bread.txt"))
    nodes = HopragRetriever(kb_rag, k=3, filters={"doc_id": bread}, min_score=-1.0).retrieve(OTTER_QUESTION)
    assert nodes and {n.node.metadata["doc_id"] for n in nodes} == {bread}
