"""Ingest, search and delete against a real ``chroma run`` server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import chroma_serving

from rag.pipeline import RAG


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    with chroma_serving(tmp_path_factory.mktemp("chroma-server")) as url:
        yield url


def test_ingest_search_delete_on_chroma_server(chroma_url, settings, embedder, good_files):
    with RAG(settings.replace(chroma_url=chroma_url, kb="remote"), embedder=embedder) as rag:
        assert rag.store.chroma_url == chroma_url
        report = rag.ingest([good_files["pdf"], good_files["markdown"]])
        assert [f.status for f in report.files] == ["added", "added"]
        assert rag.store.count() == sum(f.chunks for f in report.files)
        assert rag.store.bm25_search("Rosa Quispe", 1)[0].chunk.page == 3
        dense = rag.store.query(embedder.embed(["How often are llamas sheared?"])[0], 1)
        assert "Shear" in dense[0].chunk.text
        assert rag.ingest([good_files["pdf"]]).files[0].status == "unchanged"
        rag.delete("llamas.md")
        assert [d.source for d in rag.documents()] == [str(good_files["pdf"].resolve())]
        assert rag.store.bm25_search("llamas", 3) == []
        assert set(rag.store.collection.get(include=[])["ids"]) == set(rag.store.bm25_index().ids)
    # The chunks live in the server, not in the local data dir.
    assert not (Path(settings.data_dir) / "index" / "chroma").exists()
