"""Shared fixtures: models load once per test session and are shared by all tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from rag import RAG, Settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


# Fixtures that load the local LLM or drive a real browser: their tests are left out of `make test-fast`.
SLOW_FIXTURES = {"engine"}
BROWSER_FIXTURES = {"browser"}


def pytest_collection_modifyitems(items):
    """Mark tests by what they load: ``slow`` (the local LLM) and ``browser`` (Chromium)."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)
        if used & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory) -> Settings:
    """Default settings with a throwaway data dir; models come from the user cache dir."""
    return Settings(data_dir=str(tmp_path_factory.mktemp("data")))


@pytest.fixture(scope="session")
def embedder(base_settings):
    """The embedder users get: the default settings' (local MiniLM on onnx-int8)."""
    from rag.embed import make_embedder

    return make_embedder(base_settings)


@pytest.fixture(scope="session")
def engine(base_settings):
    """The embedded Gemma-3-270M engine (dequantized once into the cache dir)."""
    from rag.engines.local import LocalEngine
    from rag.models import llm_dir

    return LocalEngine(llm_dir(base_settings.models_dir))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=str(tmp_path / "data"))


@pytest.fixture
def make_rag(settings, embedder):
    """Open a RAG over a fresh data dir sharing the session embedder (engine optional)."""
    opened: list[RAG] = []

    def factory(engine=None, **changes) -> RAG:
        rag = RAG(settings.replace(**changes) if changes else settings, embedder=embedder, engine=engine)
        opened.append(rag)
        return rag

    yield factory
    for rag in opened:
        rag.close()
