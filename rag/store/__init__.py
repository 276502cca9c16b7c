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

from rag.store.knowledge_base import Store

__all__ = ["Store"]
