"""The LlamaIndex adapters: the retriever inside a RetrieverQueryEngine (MockLLM echoes its prompt: no model, no
network), MetadataFilters, async, and hoprag's own cited answer as a query engine."""

from __future__ import annotations

import pytest
from kb_fixture import OTTER_QUESTION, build_kb
from paged import LAMP_QUESTION, build_paged_kb
from llama_index.core import Settings as LlamaSettings
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore
from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters
from servers import serving_app

from rag import RAG, ConfigError
from rag.client import Client
from rag.integrations.llama_index import HopragQueryEngine, HopragRetriever, hoprag_filters
from rag.server import create_app


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


@pytest.fixture(scope="module")
def paged_rag(tmp_path_factory, embedder):
    with RAG(build_paged_kb(tmp_path_factory.mktemp("llama-paged"), embedder), embedder=embedder) as opened:
        yield opened


def page_filter(op: FilterOperator, page) -> MetadataFilters:
    return MetadataFilters(filters=[MetadataFilter(key="page", value=page, operator=op)])


def test_similarity_top_k_and_metadata_filters(kb_rag, paged_rag):
    assert len(HopragRetriever(kb_rag, similarity_top_k=1).retrieve(OTTER_QUESTION)) == 1
    bread = next(d.doc_id for d in kb_rag.documents() if d.source.endswith("bread.txt"))
    by_doc = MetadataFilters(filters=[MetadataFilter(key="doc_id", value=bread)])
    nodes = HopragRetriever(kb_rag, similarity_top_k=3, filters=by_doc, min_score=-1.0).retrieve(OTTER_QUESTION)
    assert nodes and {n.node.metadata["doc_id"] for n in nodes} == {bread}

    def pages(filters) -> list[str]:
        found = HopragRetriever(paged_rag, similarity_top_k=2, filters=filters).retrieve(LAMP_QUESTION)
        return [n.node.metadata["page_label"] for n in found]

    assert sorted(pages(None)) == ["1", "2"]
    assert pages(page_filter(FilterOperator.GTE, 2)) == ["2"]
    assert pages(page_filter(FilterOperator.LT, 2)) == ["1"]
    assert pages(page_filter(FilterOperator.EQ, "1")) == ["1"]
    both = MetadataFilters(filters=[MetadataFilter(key="source", value="lighthouse.pdf"),
                                    MetadataFilter(key="page_label", value="2", operator=FilterOperator.LTE)])
    assert sorted(pages(both)) == ["1", "2"]
    assert pages(MetadataFilters(filters=[MetadataFilter(key="source", value="other.pdf")])) == []


def test_unsupported_filters_are_refused_with_what_works():
    with pytest.raises(ConfigError, match="not supported; use doc_id"):
        hoprag_filters(MetadataFilters(filters=[MetadataFilter(key="author", value="x")]))
    with pytest.raises(ConfigError, match="AND"):
        hoprag_filters(MetadataFilters(filters=[MetadataFilter(key="page", value=1), MetadataFilter(key="page", value=2)],
                                       condition=FilterCondition.OR))
    assert hoprag_filters({"page_min": 2}) == {"page_min": 2}


@pytest.mark.asyncio
async def test_async_retrieval_in_process_and_over_http(paged_rag):
    local = await HopragRetriever(paged_rag, similarity_top_k=1).aretrieve(LAMP_QUESTION)
    assert local[0].node.metadata["page"] == 2 and "whale oil" in local[0].node.get_content()
    with serving_app(create_app(paged_rag)) as url, Client(url, kb="paged") as client:
        remote = await HopragRetriever(client, similarity_top_k=1, filters=page_filter(FilterOperator.LTE, 1)) \
            .aretrieve(LAMP_QUESTION)
    assert [n.node.metadata["page_label"] for n in remote] == ["1"]


def test_query_engine_returns_hoprags_cited_answer(paged_rag):
    engine = HopragQueryEngine(paged_rag, answer_mode="extractive", abstain_threshold=0.0, top_k=2)
    response = engine.query(LAMP_QUESTION)
    answer = response.metadata["answer"]
    assert str(response) == answer["answer"] and "whale oil" in str(response) and "[" in str(response)
    cited = response.source_nodes[0]
    assert cited.node.metadata["source"] == "lighthouse.pdf" and cited.node.metadata["page_label"] == "2"
    assert cited.node.metadata["citation"] == answer["citations"][0]["number"]
    assert any("whale oil" in e for e in cited.node.metadata["evidence"])
    only_first = HopragQueryEngine(paged_rag, filters=page_filter(FilterOperator.EQ, 1), answer_mode="extractive",
                                   abstain_threshold=0.0)
    assert all(n.node.metadata["page"] == 1 for n in only_first.query(LAMP_QUESTION).source_nodes)
