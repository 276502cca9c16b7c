"""A two-page PDF knowledge base for the adapters' page metadata and page filters (made at test time)."""

from __future__ import annotations

from pathlib import Path

from rag import RAG, Settings

PAGE_TEXT = [
    "Chapter one. The lighthouse keeper lit the lamp at dusk every evening.",
    "Chapter two. The lighthouse lamp burns whale oil and is cleaned every morning.",
]
LAMP_QUESTION = "What does the lighthouse lamp burn?"


def pdf_bytes() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in PAGE_TEXT:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def build_paged_kb(data_dir: Path, embedder) -> Settings:
    """A knowledge base holding one two-page PDF, lighthouse.pdf (min_score=-1: every page can be a hit)."""
    settings = Settings(data_dir=str(data_dir), kb="paged", min_score=-1.0)
    with RAG(settings, embedder=embedder) as rag:
        report = rag.ingest([("lighthouse.pdf", pdf_bytes())])
    assert report.ok and report.files[0].pages == 2, report.to_dict()
    return settings
