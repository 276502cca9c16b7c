"""LangChain adapter: hoprag retrieval as a ``langchain_core`` retriever (extra ``langchain``).

>>> from rag import RAG                                       # doctest: +SKIP
>>> retriever = HopragRetriever(rag=RAG.open("data"), k=3)
>>> docs = retriever.invoke("How do I run the tests?")       # list[langchain_core.documents.Document]
>>> docs = await retriever.ainvoke("...")                    # native async, never blocks the loop

``rag`` may also be a :class:`rag.client.Client` (a hoprag server); its async
path is async HTTP. Metadata follows LangChain's loaders: ``source``, and for
paged documents ``page`` (0-based, like ``PyPDFLoader``) and ``page_label``
(the 1-based page number as printed in hoprag's citations).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.extras import require

require("langchain_core", "langchain")

from langchain_core.callbacks import (  # noqa: E402
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from pydantic import ConfigDict, Field  # noqa: E402

from rag.config import Settings  # noqa: E402
from rag.integrations import Retrieves, aretrieve  # noqa: E402
from rag.pipeline import RAG  # noqa: E402
from rag.types import Hit  # noqa: E402


def to_document(hit: Hit) -> Document:
    """A LangChain Document for one hit; ``metadata`` carries source, page/page_label, section and score."""
    c = hit.chunk
    metadata: dict[str, Any] = {
        "source": c.source,
        "doc_id": c.doc_id,
        "chunk_id": c.id,
        "title": c.title,
        "section": c.section,
        "score": hit.score,
        "rank": hit.rank,
        "origin": hit.origin,
    }
    if c.page is not None:
        metadata["page"] = c.page - 1  # PyPDFLoader: 0-based page index
        metadata["page_label"] = str(c.page)
        if c.page_end is not None and c.page_end != c.page:
            metadata["page_end_label"] = str(c.page_end)
    return Document(id=c.id, page_content=c.text, metadata=metadata)


class HopragRetriever(BaseRetriever):
    """The top-``k`` passages of a hoprag knowledge base for a query.

    ``filters`` (dict with ``doc_id``, ``source``, ``page_min``, ``page_max``;
    pages 1-based) and ``settings`` (hoprag :class:`~rag.config.Settings`
    fields, e.g. ``{"strategy": "hybrid"}``) apply to every call;
    ``invoke(query, k=..., filters=...)`` overrides them for one call.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    rag: Any  # a RAG or a rag.client.Client: anything with retrieve (rag.integrations.Retrieves)
    k: int = Field(4, ge=1)
    filters: dict[str, Any] | None = None
    settings: dict[str, Any] = Field(default_factory=dict)

    def model_post_init(self, context: Any) -> None:
        if not isinstance(self.rag, Retrieves):
            raise TypeError(f"rag must be a hoprag RAG or Client (something with retrieve), not {type(self.rag).__name__}")

    @classmethod
    def from_path(
        cls, path_or_url: str | Path | None = None, settings: Settings | None = None, **kwargs: Any
    ) -> "HopragRetriever":
        """Open the knowledge base (see :meth:`RAG.open`) and wrap it."""
        return cls(rag=RAG.open(path_or_url, settings), **kwargs)

    def _args(self, k: int | None, filters: dict[str, Any] | None) -> tuple[int, dict[str, Any] | None]:
        return k or self.k, filters if filters is not None else self.filters

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        filters: dict[str, Any] | None = None,
    ) -> list[Document]:
        k, filters = self._args(k, filters)
        return [to_document(h) for h in self.rag.retrieve(query, k, filters, **self.settings)]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        filters: dict[str, Any] | None = None,
    ) -> list[Document]:
        k, filters = self._args(k, filters)
        return [to_document(h) for h in await aretrieve(self.rag, query, k, filters, **self.settings)]
