"""LangChain adapter: hoprag retrieval as a ``langchain_core`` retriever (extra ``langchain``).

>>> from rag import RAG                                       # doctest: +SKIP
>>> retriever = HopragRetriever(rag=RAG.open("data"), k=3)
>>> docs = retriever.invoke("How do I run the tests?")       # list[langchain_core.documents.Document]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.extras import require

require("langchain_core", "langchain")

from langchain_core.callbacks import CallbackManagerForRetrieverRun  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from pydantic import ConfigDict, Field  # noqa: E402

from rag.config import Settings  # noqa: E402
from rag.pipeline import RAG  # noqa: E402
from rag.types import Hit  # noqa: E402


def to_document(hit: Hit) -> Document:
    """A LangChain Document for one hit; ``metadata`` carries source, page, section and score."""
    c = hit.chunk
    metadata = {
        "source": c.source,
        "doc_id": c.doc_id,
        "chunk_id": c.id,
        "title": c.title,
        "section": c.section,
        "page": c.page,
        "score": hit.score,
        "rank": hit.rank,
        "origin": hit.origin,
    }
    return Document(id=c.id, page_content=c.text, metadata=metadata)


class HopragRetriever(BaseRetriever):
    """The top-``k`` passages of a hoprag knowledge base for a query.

    ``filters`` (dict with ``doc_id``, ``source``, ``page_min``, ``page_max``) and
    ``settings`` (hoprag :class:`~rag.config.Settings` fields, e.g.
    ``{"strategy": "hybrid"}``) apply to every call; ``invoke(query, k=...,
    filters=...)`` overrides them for one call.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    rag: RAG
    k: int = Field(4, ge=1)
    filters: dict[str, Any] | None = None
    settings: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_path(
        cls, path_or_url: str | Path | None = None, settings: Settings | None = None, **kwargs: Any
    ) -> "HopragRetriever":
        """Open the knowledge base (see :meth:`RAG.open`) and wrap it."""
        return cls(rag=RAG.open(path_or_url, settings), **kwargs)

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        filters: dict[str, Any] | None = None,
    ) -> list[Document]:
        hits = self.rag.retrieve(
            query, k=k or self.k, filters=filters if filters is not None else self.filters, **self.settings
        )
        return [to_document(h) for h in hits]
