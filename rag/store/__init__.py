"""The knowledge-base store, one job per module.

- :mod:`rag.store.knowledge_base` — :class:`Store`, the facade the rest of hoprag uses
- :mod:`rag.store.manifest` — the SQLite manifest: documents, generation, embedder record
- :mod:`rag.store.registry` — the same in a collection of the Chroma server (server mode, shared by replicas)
- :mod:`rag.store.vectors` — the Chroma collection and client lifecycle
- :mod:`rag.store.lexical` — the BM25 index: per-document rows in SQLite, segments in memory
- :mod:`rag.store.names` — the name index of ``hops``, per chunk row in the same SQLite file
- :mod:`rag.store.locking` — the index lock, the batch-writer lock and the write token
- :mod:`rag.store.layout` — every file name of the data layout
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from rag.store.knowledge_base import Store
from rag.store.layout import knowledge_bases
from rag.store.registry import registered_kbs
from rag.store.vectors import server_client

__all__ = ["Store", "knowledge_base_names"]


def knowledge_base_names(index_dir: Path, chroma_url: str = "", client: Any = None) -> list[str]:
    """Every knowledge base this process can open: those under ``index_dir`` and, with a Chroma server,
    those in its registry (created through any replica), sorted."""
    names = set(knowledge_bases(index_dir))
    if chroma_url or client is not None:
        names |= set(registered_kbs(client if client is not None else _server(chroma_url)))
    return sorted(names)


@lru_cache(maxsize=4)
def _server(url: str) -> Any:
    return server_client(url)
