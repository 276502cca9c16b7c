"""Adapters that make hoprag retrieval a native component of other frameworks.

Each module imports its framework lazily and names the extra to install when it
is missing: ``rag.integrations.langchain`` (extra ``langchain``) and
``rag.integrations.llama_index`` (extra ``llamaindex``). Both take a
:class:`rag.RAG` (in process) or a :class:`rag.client.Client` (a hoprag server):
anything with ``retrieve`` (:class:`Retrieves`); async calls use the source's
own ``aretrieve`` when it has one (the client's is real async HTTP), else run
``retrieve`` in a worker thread.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol, runtime_checkable

from rag.types import Hit


@runtime_checkable
class Retrieves(Protocol):
    """What the adapters need: :meth:`rag.RAG.retrieve` (or the client's)."""

    def retrieve(self, query: str, k: int | None = None, filters: Any = None, **overrides: Any) -> list[Hit]: ...


@runtime_checkable
class RetrievesAsync(Protocol):
    """A source with native async retrieval (:meth:`rag.client.Client.aretrieve`)."""

    async def aretrieve(self, query: str, k: int | None = None, filters: Any = None, **overrides: Any) -> list[Hit]:
        ...


async def aretrieve(source: Retrieves, query: str, k: int | None, filters: Any, **overrides: Any) -> list[Hit]:
    """``source``'s hits without blocking the event loop."""
    if isinstance(source, RetrievesAsync):
        return await source.aretrieve(query, k, filters, **overrides)
    return await asyncio.to_thread(source.retrieve, query, k, filters, **overrides)
