"""The knowledge-base store, one job per module.

- :mod:`rag.store.knowledge_base` — :class:`Store`, the facade the rest of hoprag uses
- :mod:`rag.store.manifest` — the SQLite manifest: documents, generation, embedder record
- :mod:`rag.store.vectors` — the Chroma collection and client lifecycle
- :mod:`rag.store.lexical` — the BM25 index and its persistence
- :mod:`rag.store.locking` — the index lock, the batch-writer lock and the write token
- :mod:`rag.store.layout` — every file name of the data layout
"""

from rag.store.knowledge_base import Store

__all__ = ["Store"]
