"""Both segmentation modes: budgets, overlap, metadata, deterministic ids, situated text."""

from __future__ import annotations

import pytest

from ingest.loaders import Loaded, Page, load
from ingest.segment import segment

WORDS = " ".join(f"word{i}" for i in range(600))


def words(s: str) -> int:
    return len(s.split())


def test_structure_mode_tracks_sections_and_spans(good_files):
    data = good_files["markdown"].read_bytes()
    loaded = load(data, "llamas.md")
    chunks = segment(loaded, "doc1", "llamas.md", mode="structure", chunk_tokens=50, chunk_overlap=5, count_tokens=words)
    sections = {c.section for c in chunks}
    assert "Llama Care > Feeding > Minerals" in sections and "Llama Care > Shearing" in sections
    minerals = next(c for c in chunks if c.section.endswith("Minerals"))
    assert "selenium" in minerals.text
    # The character span points at the chunk's text in the document.
    assert loaded.pages[0].text[minerals.start : minerals.end] == minerals.text
    # Situated embedding text: title and section path first, clean text for display.
    assert minerals.embed_text.startswith("Llama Care > Llama Care > Feeding > Minerals\n")
    assert "Minerals" not in minerals.text.split("\n")[0] or not minerals.text.startswith("#")


def test_pdf_chunks_never_cross_pages(good_files):
    loaded = load(good_files["pdf"].read_bytes(), "handbook.pdf")
    chunks = segment(loaded, "d", "handbook.pdf", chunk_tokens=8, chunk_overlap=0, count_tokens=words)
    assert {c.page for c in chunks} == {1, 2, 3}
    assert all(c.page == c.page_end for c in chunks)
    assert all(c.section == f"Chapter {c.page}" for c in chunks)
    assert any("Quispe" in c.text and c.page == 3 for c in chunks)


@pytest.mark.parametrize("mode", ["structure", "fixed"])
def test_budget_overlap_and_deterministic_ids(mode):
    loaded = Loaded("text", "Numbers", (Page(None, WORDS),))
    a = segment(loaded, "abc", "n.txt", mode=mode, chunk_tokens=100, chunk_overlap=20, count_tokens=words)
    b = segment(loaded, "abc", "n.txt", mode=mode, chunk_tokens=100, chunk_overlap=20, count_tokens=words)
    assert [c.id for c in a] == [c.id for c in b] == [f"abc:{i:05d}" for i in range(len(a))]
    assert all(words(c.text) <= 100 for c in a)
    assert 6 <= len(a) <= 9  # 600 words in windows of 100 with 20 overlap
    # Consecutive windows overlap, and together they cover every word.
    assert set(a[0].text.split()) & set(a[1].text.split())
    assert set(WORDS.split()) == {w for c in a for w in c.text.split()}
    assert all(c.start < c.end and WORDS[c.start : c.end] == c.text for c in a)


def test_fixed_mode_ignores_structure(good_files):
    loaded = load(good_files["markdown"].read_bytes(), "llamas.md")
    fixed = segment(loaded, "d", "llamas.md", mode="fixed", chunk_tokens=1000, chunk_overlap=0, count_tokens=words)
    assert len(fixed) == 1 and fixed[0].section == ""
    structured = segment(loaded, "d", "llamas.md", mode="structure", chunk_tokens=1000, chunk_overlap=0, count_tokens=words)
    assert len(structured) == 4


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="structure, fixed"):
        segment(Loaded("text", "t", (Page(None, "x"),)), "d", "s", mode="semantic")


def test_real_tokenizer_budget(embedder):
    loaded = Loaded("text", "Numbers", (Page(None, WORDS),))
    chunks = segment(loaded, "d", "n.txt", chunk_tokens=64, chunk_overlap=8, count_tokens=embedder.count_tokens)
    assert chunks and all(embedder.count_tokens(c.text) <= 64 for c in chunks)
