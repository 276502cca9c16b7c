from pathlib import Path

import pytest

TINY = Path(__file__).resolve().parent.parent / "fixtures" / "eval_tiny"


@pytest.fixture
def tiny_dir() -> Path:
    return TINY


@pytest.fixture
def shared_models(monkeypatch, embedder):
    """Make RAG instances the CLI opens use the session embedder (and engine, when asked)."""
    import rag.pipeline

    monkeypatch.setattr(rag.pipeline, "make_embedder", lambda settings: embedder)

    def with_engine(engine):
        monkeypatch.setattr(rag.pipeline, "make_engine", lambda settings: engine)

    return with_engine
