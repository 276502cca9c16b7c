"""The LangChain adapter passes langchain-tests' standard retriever suite on a real knowledge base."""

from __future__ import annotations

from typing import Any

import pytest
from kb_fixture import OTTER_QUESTION, build_kb
from paged import LAMP_QUESTION, build_paged_kb
from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests

from rag import RAG
from rag.client import Client
from rag.integrations.langchain import HopragRetriever
from rag.server import create_app
from servers import serving_app


@pytest.fixture(scope="module")
def kb_rag(tmp_path_factory, embedder):
    # min_score=-1 keeps unrelated passages, so a 3-document base always fills k=3
    settings = build_kb(tmp_path_factory.mktemp("langchain"), embedder, min_score=-1.0)
    with RAG(settings, embedder=embedder) as opened:
        yield opened


class TestHopragRetrieverStandard(RetrieversIntegrationTests):
    """langchain-tests' suite; its one async test runs under pytest-asyncio (the class mark).

    The suite forbids overriding its tests, so the mark covers the sync ones too.
    """

    pytestmark = [
        pytest.mark.asyncio,
        pytest.mark.filterwarnings("ignore:.*marked with '@pytest.mark.asyncio' but it is not an async"),
    ]

    @pytest.fixture(autouse=True)
    def _kb(self, kb_rag) -> None:
        self._rag = kb_rag

    @property
    def retriever_constructor(self) -> type[HopragRetriever]:
        return HopragRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"rag": self._rag}

    @property
    def retriever_query_example(self) -> str:
        return OTTER_QUESTION


def test_documents_carry_source_metadata_and_filters(kb_rag):
    retriever = HopragRetriever(rag=kb_rag, k=2)
    docs = retriever.invoke(OTTER_QUESTION)
    assert all(isinstance(d, Document) for d in docs) and len(docs) == 2
    top = docs[0]
    assert top.metadata["source"].endswith("otters.md") and "stones" in top.page_content
    assert top.id == top.metadata["chunk_id"] and top.metadata["score"] >= docs[1].metadata["score"]
    bread = next(d.doc_id for d in kb_rag.documents() if d.source.endswith("bread.txt"))
    only = retriever.invoke(OTTER_QUESTION, filters={"doc_id": bread})
    assert only and {d.metadata["doc_id"] for d in only} == {bread}


@pytest.fixture(scope="module")
def paged_rag(tmp_path_factory, embedder):
    with RAG(build_paged_kb(tmp_path_factory.mktemp("paged"), embedder), embedder=embedder) as opened:
        yield opened


def test_pdf_pages_as_pypdfloader_metadata(paged_rag):
    """page is 0-based and page_label the printed 1-based number, like PyPDFLoader; text documents have neither."""
    docs = HopragRetriever(rag=paged_rag, k=2).invoke(LAMP_QUESTION)
    top = docs[0]
    assert top.metadata["source"] == "lighthouse.pdf" and "whale oil" in top.page_content
    assert (top.metadata["page"], top.metadata["page_label"]) == (1, "2")
    assert {d.metadata["page_label"] for d in docs} == {"1", "2"}
    only_first = HopragRetriever(rag=paged_rag, k=2, filters={"page_max": 1}).invoke(LAMP_QUESTION)
    assert [d.metadata["page"] for d in only_first] == [0]


def test_text_documents_have_no_page(kb_rag):
    assert all("page" not in d.metadata for d in HopragRetriever(rag=kb_rag, k=3).invoke(OTTER_QUESTION))


@pytest.mark.asyncio
async def test_native_async_in_process_and_over_http(kb_rag, paged_rag):
    docs = await HopragRetriever(rag=kb_rag, k=1).ainvoke(OTTER_QUESTION)
    assert docs[0].metadata["source"].endswith("otters.md")
    with serving_app(create_app(paged_rag)) as url, Client(url, kb="paged") as client:
        remote = await HopragRetriever(rag=client, k=1).ainvoke(LAMP_QUESTION)
        local = HopragRetriever(rag=paged_rag, k=1).invoke(LAMP_QUESTION)
    assert remote[0].page_content == local[0].page_content
    assert remote[0].metadata["page_label"] == "2" and remote[0].metadata["chunk_id"] == local[0].metadata["chunk_id"]


def test_only_a_hoprag_source_is_accepted():
    with pytest.raises((TypeError, ValueError), match="RAG or Client"):
        HopragRetriever(rag=object())
