"""Embedders: turn texts into unit-length vectors. One file per backend."""

from __future__ import annotations

from rag.config import Settings
from rag.embed.base import EMBEDDERS, Embedder


def make_embedder(settings: Settings) -> Embedder:
    """Build the embedder ``settings.embedder`` names."""
    # Import the backends so they register themselves.
    from rag.embed import local, openai_compat  # noqa: F401

    return EMBEDDERS.create(settings.embedder, settings)


__all__ = ["Embedder", "EMBEDDERS", "make_embedder"]
