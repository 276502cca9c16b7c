"""Shared fixture: a knowledge base of small Markdown documents."""

from __future__ import annotations

import pytest


@pytest.fixture
def docs_kb(make_rag, tmp_path):
    """``open_kb(docs, **settings)``: a knowledge base of the documents ``{file name: text}`` (one chunk each),
    ingested on first open."""

    def open_kb(docs: dict[str, str], **changes):
        folder = tmp_path / "docs"
        if not folder.exists():
            folder.mkdir()
            for name, text in docs.items():
                (folder / name).write_text(text + "\n", encoding="utf-8")
        rag = make_rag(**changes)
        if not rag.documents():
            assert rag.ingest([folder]).ok
        return rag

    return open_kb
