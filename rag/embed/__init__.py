"""Embedders: turn texts into unit-length vectors. One file per backend."""

from __future__ import annotations

from rag.config import Settings
from rag.embed.base import EMBEDDERS, Embedder


def make_embedder(settings: Settings) -> Embedder:
    """Build the embedder ``settings.embedder`` names (the registry imports the backends: they register)."""
    return EMBEDDERS.create(settings.embedder, settings)


__all__ = ["Embedder", "EMBEDDERS", "make_embedder"]
