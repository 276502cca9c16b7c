from __future__ import annotations

import pytest

from rag.types import Chunk, Hit


@pytest.fixture(scope="session")
def user_embedder(base_settings):
    """MiniLM as users get it (the default backend, onnx-int8)."""
    from rag.embed import make_embedder

    return make_embedder(base_settings)


def _hit(text: str, title: str = "", rank: int = 0, page: int | None = None) -> Hit:
    cid = f"c{rank}"
    return Hit(Chunk(id=cid, doc_id=cid, text=text, source=f"{title or 'doc'}.txt", title=title, page=page), 1.0, rank)


@pytest.fixture
def hit():
    """hit(text, title="", rank=0, page=None) -> a Hit whose chunk holds ``text``."""
    return _hit
