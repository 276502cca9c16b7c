"""LLM engines: one file per backend, all behind :class:`rag.engines.base.Engine`."""

from __future__ import annotations

from rag.config import Settings
from rag.engines.base import (
    ENGINES,
    Engine,
    ExposesAttention,
    ScoresNextTokens,
    Streams,
    effective_max_tokens,
    engines_with,
    generate,
    load_engines,
)


def make_engine(settings: Settings) -> Engine:
    """Build the engine ``settings.engine`` names (heavy imports happen inside)."""
    load_engines()
    return ENGINES.create(settings.engine, settings)


__all__ = [
    "ENGINES", "Engine", "ExposesAttention", "ScoresNextTokens", "Streams", "effective_max_tokens", "engines_with",
    "generate", "load_engines", "make_engine",
]
