"""LlamaIndex adapter: hoprag retrieval as a ``llama_index.core`` retriever (extra ``llamaindex``).

>>> from llama_index.core.query_engine import RetrieverQueryEngine   # doctest: +SKIP
>>> engine = RetrieverQueryEngine.from_args(HopragRetriever(RAG.open("data"), k=3), llm=my_llm)
>>> print(engine.query("How do I run the tests?"))
"""

from __future__ import annotations

from typing import Any

from rag.extras import require

require("llama_index.core", "llamaindex")

from llama_index.core.callbacks import CallbackManager  # noqa: E402
from llama_index.core.retrievers import BaseRetriever  # noqa: E402
from llama_index.core.schema import (  # noqa: E402
    NodeRelationship,
    NodeWithScore,
    QueryBundle,
    RelatedNodeInfo,
    TextNode,
)

from rag.errors import ConfigError  # noqa: E402
from rag.pipeline import RAG  # noqa: E402
from rag.types import Hit  # noqa: E402

# Shown to the LLM with each passage; the ids only help programs.
_HIDDEN_FROM_LLM = ["doc_id", "chunk_id", "rank", "origin", "score"]


def to_node(hit: Hit) -> NodeWithScore:
    """A scored LlamaIndex TextNode for one hit (its ref doc is the hoprag document)."""
    c = hit.chunk
    metadata = {"source": c.source, "doc_id": c.doc_id, "chunk_id": c.id, "title": c.title, "section": c.section,
                "rank": hit.rank, "origin": hit.origin}
    if c.page is not None:
        metadata["page"] = c.page
    node = TextNode(
        id_=c.id,
        text=c.text,
        metadata=metadata,
        excluded_llm_metadata_keys=_HIDDEN_FROM_LLM,
        excluded_embed_metadata_keys=_HIDDEN_FROM_LLM,
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=c.doc_id)},
    )
    return NodeWithScore(node=node, score=hit.score)


class HopragRetriever(BaseRetriever):
    """The top-``k`` passages of a hoprag knowledge base as scored nodes.

    ``filters`` (dict with ``doc_id``, ``source``, ``page_min``, ``page_max``) and
    ``settings`` (hoprag :class:`~rag.config.Settings` fields, e.g.
    ``strategy="hybrid"``) apply to every query.
    """

    def __init__(
        self,
        rag: RAG,
        k: int = 4,
        filters: dict[str, Any] | None = None,
        callback_manager: CallbackManager | None = None,
        **settings: Any,
    ) -> None:
        if k < 1:
            raise ConfigError(f"k={k} must be at least 1")
        self.rag = rag
        self.k = k
        self.filters = filters
        self.settings = settings
        super().__init__(callback_manager=callback_manager)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.rag.retrieve(query_bundle.query_str, k=self.k, filters=self.filters, **self.settings)
        return [to_node(h) for h in hits]
