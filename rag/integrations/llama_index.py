"""LlamaIndex adapter: hoprag retrieval and answers as ``llama_index.core`` components (extra ``llamaindex``).

>>> retriever = HopragRetriever(RAG.open("data"), similarity_top_k=3,             # doctest: +SKIP
...     filters=MetadataFilters(filters=[MetadataFilter(key="page", value=2, operator=FilterOperator.GTE)]))
>>> nodes = await retriever.aretrieve("How do I run the tests?")
>>> print(HopragQueryEngine(RAG.open("data")).query("How do I run the tests?"))   # hoprag's cited answer

``rag`` may also be a :class:`rag.client.Client` (a hoprag server). Node
metadata: ``source``, ``file_name``, and for paged documents ``page`` and
``page_label`` (1-based, like LlamaIndex's PDF reader).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from rag.extras import require

require("llama_index.core", "llamaindex")

from llama_index.core.base.base_query_engine import BaseQueryEngine  # noqa: E402
from llama_index.core.base.response.schema import Response  # noqa: E402
from llama_index.core.callbacks import CallbackManager  # noqa: E402
from llama_index.core.retrievers import BaseRetriever  # noqa: E402
from llama_index.core.schema import (  # noqa: E402
    NodeRelationship,
    NodeWithScore,
    QueryBundle,
    RelatedNodeInfo,
    TextNode,
)
from llama_index.core.vector_stores.types import (  # noqa: E402
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from rag.errors import ConfigError  # noqa: E402
from rag.integrations import Retrieves, aretrieve  # noqa: E402
from rag.types import Answer, Citation, Hit  # noqa: E402

# Shown to the LLM with each passage; the ids only help programs.
_HIDDEN_FROM_LLM = ["doc_id", "chunk_id", "rank", "origin", "score", "page"]


def _node(chunk_id: str, doc_id: str, text: str, source: str, page: int | None, extra: dict[str, Any]) -> TextNode:
    metadata = {"source": source, "file_name": Path(source).name or source, "doc_id": doc_id, "chunk_id": chunk_id,
                **extra}
    if page is not None:
        metadata["page"] = page
        metadata["page_label"] = str(page)
    return TextNode(
        id_=chunk_id,
        text=text,
        metadata=metadata,
        excluded_llm_metadata_keys=_HIDDEN_FROM_LLM,
        excluded_embed_metadata_keys=_HIDDEN_FROM_LLM,
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc_id)},
    )


def to_node(hit: Hit) -> NodeWithScore:
    """A scored LlamaIndex TextNode for one hit (its ref doc is the hoprag document)."""
    c = hit.chunk
    extra = {"title": c.title, "section": c.section, "rank": hit.rank, "origin": hit.origin}
    return NodeWithScore(node=_node(c.id, c.doc_id, c.text, c.source, c.page, extra), score=hit.score)


def citation_node(c: Citation) -> NodeWithScore:
    """A cited passage as a node: its [n] number and evidence sentences in the metadata."""
    extra = {"section": c.section, "citation": c.number, "inferred": c.inferred,
             "evidence": [c.text[h.start:h.end] for h in c.highlights]}
    score = max((h.score for h in c.highlights), default=None)
    return NodeWithScore(node=_node(c.chunk_id, c.doc_id, c.text, c.source, c.page, extra), score=score)


_PAGE_BOUNDS = {FilterOperator.GTE: ("page_min", 0), FilterOperator.GT: ("page_min", 1),
                FilterOperator.LTE: ("page_max", 0), FilterOperator.LT: ("page_max", -1)}


def hoprag_filters(filters: MetadataFilters | dict[str, Any] | None) -> dict[str, Any] | None:
    """LlamaIndex ``MetadataFilters`` as hoprag filters (a dict passes through).

    Supported (joined with AND): ``doc_id`` / ``source`` / ``file_name`` ``==``;
    ``page`` or ``page_label`` with ``==``, ``>=``, ``>``, ``<=``, ``<`` (1-based).
    Anything else is refused with a ConfigError saying what is supported.
    """
    if filters is None or isinstance(filters, dict):
        return filters
    if filters.condition not in (None, FilterCondition.AND) and len(filters.filters) > 1:
        raise ConfigError(f"filter condition {filters.condition.value!r} is not supported: hoprag joins filters with AND")
    out: dict[str, Any] = {}
    for f in filters.filters:
        if isinstance(f, MetadataFilters):
            out.update(hoprag_filters(f) or {})
            continue
        assert isinstance(f, MetadataFilter)
        key, op = f.key, f.operator
        if key in ("doc_id", "source") and op == FilterOperator.EQ:
            out[key] = str(f.value)
        elif key in ("page", "page_label") and op in (*_PAGE_BOUNDS, FilterOperator.EQ):
            try:
                page = int(f.value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise ConfigError(f"filter {key} {op.value} {f.value!r}: the page must be a whole number") from None
            if op == FilterOperator.EQ:
                out["page_min"] = out["page_max"] = page
            else:
                name, shift = _PAGE_BOUNDS[op]
                out[name] = page + shift
        else:
            raise ConfigError(
                f"filter {key} {op.value} is not supported; use doc_id == or source == , or page (or page_label) "
                "with ==, >=, >, <=, <"
            )
    return out or None


class HopragRetriever(BaseRetriever):
    """The top ``similarity_top_k`` passages of a hoprag knowledge base as scored nodes.

    ``filters`` (``MetadataFilters`` or a hoprag dict with ``doc_id``,
    ``source``, ``page_min``, ``page_max``) and ``settings`` (hoprag
    :class:`~rag.config.Settings` fields, e.g. ``strategy="hybrid"``) apply to
    every query. ``k`` is another name for ``similarity_top_k``.
    """

    def __init__(
        self,
        rag: Retrieves,
        similarity_top_k: int | None = None,
        filters: MetadataFilters | dict[str, Any] | None = None,
        callback_manager: CallbackManager | None = None,
        *,
        k: int | None = None,
        **settings: Any,
    ) -> None:
        top_k = similarity_top_k or k or 4
        if top_k < 1:
            raise ConfigError(f"similarity_top_k={top_k} must be at least 1")
        if not isinstance(rag, Retrieves):
            raise TypeError(f"rag must be a hoprag RAG or Client (something with retrieve), not {type(rag).__name__}")
        self.rag = rag
        self.similarity_top_k = top_k
        self.filters = hoprag_filters(filters)
        self.settings = settings
        super().__init__(callback_manager=callback_manager)

    @property
    def k(self) -> int:
        return self.similarity_top_k

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.rag.retrieve(query_bundle.query_str, self.similarity_top_k, self.filters, **self.settings)
        return [to_node(h) for h in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = await aretrieve(self.rag, query_bundle.query_str, self.similarity_top_k, self.filters, **self.settings)
        return [to_node(h) for h in hits]


class HopragQueryEngine(BaseQueryEngine):
    """hoprag's own answer as a LlamaIndex query engine: the cited text, the cited passages as source nodes.

    ``response.metadata["answer"]`` is the whole :class:`~rag.types.Answer` as
    JSON (citations with evidence, mode, usage, trace). ``filters`` and
    ``settings`` (e.g. ``answer_mode="extractive"``, ``top_k=3``) apply to every
    query. ``rag`` is a :class:`rag.RAG` or a :class:`rag.client.Client`.
    """

    def __init__(
        self,
        rag: Any,
        filters: MetadataFilters | dict[str, Any] | None = None,
        callback_manager: CallbackManager | None = None,
        **settings: Any,
    ) -> None:
        self.rag = rag
        self.filters = hoprag_filters(filters)
        self.settings = settings
        super().__init__(callback_manager=callback_manager)

    def _get_prompt_modules(self) -> dict[str, Any]:
        return {}  # hoprag's prompts are its own files (prompts/), not LlamaIndex templates

    def _answer(self, question: str) -> Answer:
        return self.rag.ask(question, filters=self.filters, **self.settings)

    @staticmethod
    def _response(answer: Answer) -> Response:
        text = answer.text if not answer.error else f"(no generated answer: {answer.error})"
        return Response(response=text, source_nodes=[citation_node(c) for c in answer.citations],
                        metadata={"answer": answer.to_dict()})

    def _query(self, query_bundle: QueryBundle) -> Response:
        return self._response(self._answer(query_bundle.query_str))

    async def _aquery(self, query_bundle: QueryBundle) -> Response:
        return self._response(await asyncio.to_thread(self._answer, query_bundle.query_str))
