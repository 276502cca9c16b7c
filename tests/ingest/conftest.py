"""Ingest fixtures, generated at test time: good files of every kind and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingest_files import (
    HTML,
    MARKDOWN,
    MIXED_SCAN,
    MIXED_TEXT,
    PAGES,
    SCAN_LINES,
    TABLE_HEADER,
    TABLE_ROWS,
    TEXT,
    make_csv,
    make_docx,
    make_docx_with_table,
    make_encrypted_pdf,
    make_image_only_pdf,
    make_mixed_pdf,
    make_pdf,
    make_pdf_with_table,
    make_png,
    make_pptx,
    make_scanned_pdf,
    make_xlsx,
)

from rag.store import Store


def _write(root: Path, files: dict[str, tuple[str, bytes]]) -> dict[str, Path]:
    """Write ``kind -> (file name, bytes)`` under ``root``; kind -> path."""
    for name, data in files.values():
        (root / name).write_bytes(data)
    return {kind: root / name for kind, (name, _) in files.items()}


@pytest.fixture
def store(tmp_path):
    """A fresh store (embedded Chroma) in the test's temporary directory."""
    s = Store(tmp_path / "index", "kb")
    yield s
    s.close()


@pytest.fixture
def cli_rag(settings, embedder, monkeypatch):
    """The settings the CLI runs with; its commands open their RAG with the session embedder."""
    from rag.commands import common
    from rag.pipeline import RAG

    monkeypatch.setattr(common, "open_rag", lambda s: RAG(s, embedder=embedder))
    return settings


@pytest.fixture(scope="session")
def good_files(tmp_path_factory) -> dict[str, Path]:
    """One good file per kind: pdf, docx, html, markdown, text."""
    root = tmp_path_factory.mktemp("good")
    files = {
        "pdf": ("handbook.pdf", make_pdf(PAGES)),
        "docx": ("weaving.docx", make_docx()),
        "html": ("textiles.html", HTML.encode()),
        "markdown": ("llamas.md", MARKDOWN.encode()),
        "text": ("vicuna.txt", TEXT.encode()),
    }
    return _write(root, files)


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    """Every kind of bad input the ingest report must explain."""
    root = tmp_path_factory.mktemp("bad")
    good_pdf = make_pdf(PAGES)
    files = {
        "encrypted": ("locked.pdf", make_encrypted_pdf(good_pdf)),
        "truncated": ("truncated.pdf", good_pdf[: len(good_pdf) // 3]),
        "empty": ("empty.txt", b""),
        "garbage_pdf": ("garbage.pdf", bytes(range(256)) * 8),
        "garbage_txt": ("garbage.txt", b"\x00\x01\x02\xff\xfe" * 400),
        "no_text": ("scan.pdf", make_image_only_pdf()),
        "too_big": ("huge.txt", b"big words here " * (80 * 1024)),  # ~1.2 MB, over a 1 MB limit
    }
    return _write(root, files)


@pytest.fixture(scope="session")
def office_files(tmp_path_factory) -> dict[str, Path]:
    """PPTX with notes, XLSX with two sheets, CSV, DOCX with a table and a PDF with a table (50-row tables)."""
    root = tmp_path_factory.mktemp("office")
    table = [TABLE_HEADER, *TABLE_ROWS]
    files = {
        "pptx": ("shearing.pptx", make_pptx()),
        "xlsx": ("stations.xlsx", make_xlsx({"Stations": table, "Notes": [["Topic", "Note"], ["Wind", "Strong"]]})),
        "csv": ("stations.csv", make_csv(table)),
        "docx": ("stations.docx", make_docx_with_table(table)),
        "pdf": ("stations.pdf", make_pdf_with_table(table)),
    }
    return _write(root, files)


@pytest.fixture(scope="session")
def scan_files(tmp_path_factory) -> dict[str, Path]:
    """An image-only PDF, a mixed PDF and a PNG (text the OCR must read)."""
    root = tmp_path_factory.mktemp("scans")
    files = {
        "scanned": ("scanned.pdf", make_scanned_pdf(SCAN_LINES)),
        "mixed": ("mixed.pdf", make_mixed_pdf(MIXED_TEXT, MIXED_SCAN)),
        "png": ("note.png", make_png(SCAN_LINES)),
    }
    return _write(root, files)
