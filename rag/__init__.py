"""hoprag: retrieval-augmented generation over your documents, offline by default.

Public API::

    from rag import RAG, Settings
    with RAG.open("data") as rag:
        rag.ingest(["docs/"])
        answer = rag.ask("How do I point hoprag at a vLLM server?")
        print(answer.text, [c.source for c in answer.citations])
"""

from rag.config import Settings
from rag.errors import (
    CapabilityError,
    ConfigError,
    EngineError,
    EngineUnavailable,
    HopragError,
    IngestError,
    MissingExtraError,
    StoreError,
)
from rag.pipeline import RAG
from rag.retrieve import Filters
from rag.types import Answer, Chunk, Citation, Document, FileResult, Hit, IngestReport, Trace, TraceStep, Usage

__all__ = [
    "RAG",
    "Settings",
    "Answer",
    "Chunk",
    "Citation",
    "Document",
    "FileResult",
    "Filters",
    "Hit",
    "IngestReport",
    "Trace",
    "TraceStep",
    "Usage",
    "HopragError",
    "ConfigError",
    "MissingExtraError",
    "IngestError",
    "StoreError",
    "EngineError",
    "EngineUnavailable",
    "CapabilityError",
]
__version__ = "0.1.0"
