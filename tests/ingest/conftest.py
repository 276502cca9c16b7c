"""Ingest fixtures, generated at test time: good files of every kind and every kind of bad input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

PAGES = [
    "Alpacas graze on the Altiplano. The herd moves to the lower valley in winter.",
    "Spinning alpaca fibre: wash the fleece, card it, then spin it on a wheel.",
    "The loom was built in Cusco in 1931 by a weaver named Rosa Quispe.",
]


def make_pdf(pages: list[str], title: str = "Alpaca Handbook", bookmarks: bool = True) -> bytes:
    """A text PDF, one page per string, with an outline entry per page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(title)
    pdf.set_font("Helvetica", size=12)
    for i, text in enumerate(pages, 1):
        pdf.add_page()
        if bookmarks:
            pdf.start_section(f"Chapter {i}")
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def make_image_only_pdf() -> bytes:
    """A PDF whose page is a drawing with no text layer (like a scan)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")
    return bytes(pdf.output())


def make_encrypted_pdf(plain: bytes) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(plain)))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx() -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = "Weaving Notes"
    document.add_heading("Looms", level=1)
    document.add_paragraph("A backstrap loom is tied to the weaver's waist.")
    document.add_heading("Dyes", level=2)
    document.add_paragraph("Cochineal insects give a deep red dye.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


HTML = """<!DOCTYPE html><html><head><title>Andean Textiles</title>
<script>var tracking = "SCRIPTJUNK";</script><style>.x{color:red}</style></head>
<body><nav><a href="/">Home</a> | <a href="/shop">NAVJUNK shop</a></nav>
<article><h1>Andean Textiles</h1>
<p>Andean textiles are woven from alpaca and llama fibre. Weavers in the highlands
keep patterns that are centuries old, passing them from mother to daughter.</p>
<p>The warp-faced technique produces dense, durable cloth with complementary
warp patterns that appear on both faces of the fabric.</p>
<p>Natural dyes such as cochineal, indigo and chilca give the characteristic colours.</p>
</article><footer>FOOTJUNK copyright</footer></body></html>"""

MARKDOWN = """# Llama Care

Llamas need shelter from wind.

## Feeding

Give llamas grass hay and fresh water every day.

### Minerals

A mineral block with selenium prevents deficiency.

## Shearing

Shear llamas once a year, in spring.
"""

TEXT = "Vicuna fibre is the finest animal fibre in the world.\n\nVicunas live wild above 3500 metres.\n"


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
    out = {}
    for kind, (name, data) in files.items():
        (root / name).write_bytes(data)
        out[kind] = root / name
    return out


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
    out = {}
    for kind, (name, data) in files.items():
        (root / name).write_bytes(data)
        out[kind] = root / name
    return out
