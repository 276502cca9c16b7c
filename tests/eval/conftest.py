from pathlib import Path

import pytest

TINY = Path(__file__).resolve().parent.parent / "fixtures" / "eval_tiny"


@pytest.fixture
def tiny_dir() -> Path:
    return TINY


@pytest.fixture
def shared_models(monkeypatch, embedder):
    """Make RAG instances the CLI opens use the session embedder (and engine, when asked)."""
    import rag.embed
    import rag.engines
    import rag.pipeline

    # Commands build models through rag.pipeline (RAG) or directly (eval answers shares them across its KBs).
    for module in (rag.pipeline, rag.embed):
        monkeypatch.setattr(module, "make_embedder", lambda settings: embedder)

    def with_engine(engine):
        for module in (rag.pipeline, rag.engines):
            monkeypatch.setattr(module, "make_engine", lambda settings: engine)

    return with_engine
