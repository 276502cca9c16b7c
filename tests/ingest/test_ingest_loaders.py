"""Every loader on a generated file, type detection from content, and every bad input."""

from __future__ import annotations

import pytest
from ingest_files import NO_TEXT

from ingest.loaders import detect, load
from rag.errors import IngestError


def test_pdf_keeps_page_numbers_title_and_outline(good_files):
    loaded = load(good_files["pdf"].read_bytes(), str(good_files["pdf"]))
    assert loaded.kind == "pdf"
    assert loaded.title == "Alpaca Handbook"
    assert [p.number for p in loaded.pages] == [1, 2, 3]
    assert "Rosa Quispe" in loaded.pages[2].text and "Rosa Quispe" not in loaded.pages[0].text
    assert [p.section for p in loaded.pages] == ["Chapter 1", "Chapter 2", "Chapter 3"]


def test_docx_headings_become_markdown(good_files):
    loaded = load(good_files["docx"].read_bytes(), str(good_files["docx"]))
    assert loaded.kind == "docx" and loaded.title == "Weaving Notes"
    text = loaded.pages[0].text
    assert "# Looms" in text and "## Dyes" in text and "Cochineal" in text


def test_html_keeps_main_text_only(good_files):
    loaded = load(good_files["html"].read_bytes(), str(good_files["html"]))
    assert loaded.kind == "html" and loaded.title == "Andean Textiles"
    text = loaded.pages[0].text
    assert "warp-faced technique" in text
    for junk in ("SCRIPTJUNK", "NAVJUNK", "FOOTJUNK", ".x{color"):
        assert junk not in text


def test_markdown_and_text(good_files):
    md = load(good_files["markdown"].read_bytes(), str(good_files["markdown"]))
    assert md.kind == "markdown" and md.title == "Llama Care"
    txt = load(good_files["text"].read_bytes(), str(good_files["text"]))
    assert txt.kind == "text" and "Vicuna" in txt.pages[0].text and txt.pages[0].number is None


def test_type_comes_from_content_not_extension(good_files):
    # A PDF named .txt, HTML named .dat and a DOCX named .bin are still recognised.
    assert detect(good_files["pdf"].read_bytes(), "notes.txt") == "pdf"
    assert detect(good_files["html"].read_bytes(), "page.dat") == "html"
    assert detect(good_files["docx"].read_bytes(), "file.bin") == "docx"
    assert detect(b"# Title\n\ntext", "readme") == "markdown"
    assert load(good_files["pdf"].read_bytes(), "renamed.txt").kind == "pdf"


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("encrypted", "encrypted PDF"),
        ("truncated", "truncated PDF"),
        ("empty", "empty file"),
        ("garbage_pdf", "binary content"),
        ("garbage_txt", "binary content"),
        ("no_text", NO_TEXT),
    ],
)
def test_bad_inputs_raise_one_line_reasons(bad_files, kind, reason):
    path = bad_files[kind]
    with pytest.raises(IngestError) as info:
        load(path.read_bytes(), str(path))
    assert reason in str(info.value) and "\n" not in str(info.value)


def test_corrupt_pdf_body_is_refused():
    data = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage garbage\ntrailer\n%%EOF\n"
    with pytest.raises(IngestError, match="corrupt or truncated PDF"):
        load(data, "broken.pdf")
