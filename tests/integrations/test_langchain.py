"""The LangChain adapter passes langchain-tests' standard retriever suite on a real knowledge base."""

from __future__ import annotations

from typing import Any

import pytest
from kb_fixture import OTTER_QUESTION, build_kb
from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests

from rag import RAG
from rag.integrations.langchain import HopragRetriever


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
