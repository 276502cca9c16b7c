"""LLM rerankers: one module per method, all behind :class:`rag.rerank.base.Reranker`."""

from __future__ import annotations

from rag.rerank.base import RERANKERS, Reranker, make_reranker

__all__ = ["RERANKERS", "Reranker", "make_reranker"]
