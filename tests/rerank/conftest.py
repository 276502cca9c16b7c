"""Tiny rerank cases: the relevant passage is obvious and the first stage put it last."""

from __future__ import annotations

import pytest

from rag.types import Chunk, Hit

QUERY = "What is the capital of France?"
TEXTS = (
    "Bananas are a yellow fruit that grows in tropical regions.",
    "The Moon orbits the Earth every 27 days.",
    "Python is a popular programming language.",
    "Paris is the capital and largest city of France.",
)
RELEVANT = "c3"


def make_hits(texts=TEXTS) -> list[Hit]:
    return [
        Hit(Chunk(id=f"c{i}", doc_id="d", text=t, source="facts.txt"), round(0.9 - 0.1 * i, 2), rank=i + 1)
        for i, t in enumerate(texts)
    ]


@pytest.fixture
def hits() -> list[Hit]:
    return make_hits()
