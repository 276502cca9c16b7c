"""A knowledge base remembers which embedder wrote its vectors and refuses one it cannot be compared with."""

from __future__ import annotations

import logging

import pytest

from rag import RAG
from rag.errors import ConfigError
from rag.models import embed_model_id

DOC = ("otters.md", b"# Sea otters\n\nSea otters use stones as tools to crack open shells.")


class Renamed:
    """The session embedder under another model id (its vectors are real MiniLM ones)."""

    def __init__(self, inner, model_id: str) -> None:
        self.inner, self.model_id = inner, model_id

    def embed(self, texts, progress=None):
        return self.inner.embed(texts, progress)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def test_ingest_records_the_embedder_and_another_model_is_refused(make_rag, settings, embedder):
    rag = make_rag()
    assert rag.store.embed_model() is None
    rag.ingest([DOC])
    assert rag.store.embed_model() == embedder.model_id

    with RAG(settings, embedder=Renamed(embedder, "bge-small-en")) as other:
        with pytest.raises(ConfigError) as err:
            other.ingest([("more.md", b"# More\n\nOtters sleep holding hands.")])
        message = str(err.value)
        assert embedder.model_id in message and "bge-small-en" in message and "--kb" in message
        with pytest.raises(ConfigError):
            other.retrieve("What do otters use as tools?")
        assert [d.source for d in other.documents()] == ["otters.md"]  # nothing was written


def test_same_model_on_another_runtime_only_warns(make_rag, settings, embedder, caplog):
    make_rag().ingest([DOC])
    # The session embedder is the int8 runtime; the same model on float32 has the plain model id.
    float32_id = embed_model_id(int8=False)
    assert embedder.model_id == embed_model_id(int8=True) != float32_id
    with RAG(settings, embedder=Renamed(embedder, float32_id)) as other, caplog.at_level(logging.WARNING):
        hits = other.retrieve("What do otters use as tools?")
        other.retrieve("Do otters crack shells?")
        assert hits and "stones" in hits[0].chunk.text
        warnings = [r for r in caplog.records if "another runtime" in r.getMessage()]
        assert len(warnings) == 1  # once per knowledge base, not per query
        assert other.store.embed_model() == embedder.model_id


def test_an_emptied_knowledge_base_takes_a_new_embedder(make_rag, settings, embedder):
    rag = make_rag()
    rag.ingest([DOC])
    rag.delete("otters.md")
    with RAG(settings, embedder=Renamed(embedder, "bge-small-en")) as other:
        other.ingest([DOC])
        assert other.store.embed_model() == "bge-small-en"
        assert other.retrieve("What do otters use as tools?")
