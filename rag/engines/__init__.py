"""LLM engines: one file per backend, all behind :class:`rag.engines.base.Engine`."""

from __future__ import annotations

from rag.config import Settings
from rag.engines.base import ENGINES, Engine, generate


def make_engine(settings: Settings) -> Engine:
    """Build the engine ``settings.engine`` names (heavy imports happen inside)."""
    from rag.engines import local, openai_compat, vllm  # noqa: F401  (register)

    return ENGINES.create(settings.engine, settings)


__all__ = ["Engine", "ENGINES", "generate", "make_engine"]
