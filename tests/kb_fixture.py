"""A tiny three-document knowledge base for the API, CLI, server and adapter tests."""

from __future__ import annotations

from pathlib import Path

from rag import RAG, Settings

KB_DOCS = Path(__file__).resolve().parent / "fixtures" / "api_kb"
OTTER_QUESTION = "What do sea otters use stones for?"


def build_kb(data_dir: Path, embedder, **changes) -> Settings:
    """Ingest tests/fixtures/api_kb into a fresh data dir; returns its settings."""
    settings = Settings(data_dir=str(data_dir), **changes)
    with RAG(settings, embedder=embedder) as rag:
        report = rag.ingest([KB_DOCS])
    assert report.ok and len(report.files) == 3, report.to_dict()
    return settings
