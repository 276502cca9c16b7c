"""The write side: load files, segment them into chunks, embed and store them."""

from __future__ import annotations

from typing import Any

__all__ = ["Ingestor", "IngestOptions"]


def __getattr__(name: str) -> Any:
    # Lazy: parser worker processes import ingest.parse and must not pay for Chroma.
    if name in __all__:
        from ingest import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'ingest' has no attribute {name!r}")
