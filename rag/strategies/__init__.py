"""Retrieval strategies beyond single-shot dense (one module each); importing registers them."""

from rag.strategies import hops, hybrid, llm_hops  # noqa: F401
