"""Render docs/*.md into data/sample/hoprag-guide.pdf (the sample knowledge base's PDF edition).

Run after editing the docs:  .venv/bin/python scripts/build_sample_pdf.py
Needs fpdf2 (dev extra). Tables and code blocks are rendered as plain lines.
"""

from __future__ import annotations

import re
from pathlib import Path

from fpdf import FPDF

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "docs" / "architecture.md", ROOT / "docs" / "configuration.md"]
OUT = ROOT / "data" / "sample" / "hoprag-guide.pdf"


def render(pdf: FPDF, text: str) -> None:
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            pdf.set_font("Courier", size=9)
            pdf.multi_cell(0, 4.5, line or " ", new_x="LMARGIN", new_y="NEXT")
            continue
        m = re.match(r"^(#{1,3}) (.+)", line)
        if m:
            level = len(m.group(1))
            if level == 1:
                pdf.add_page()
            pdf.set_font("Helvetica", "B", size={1: 18, 2: 14, 3: 12}[level])
            pdf.multi_cell(0, 8, m.group(2), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
            continue
        if line.startswith("|"):
            if set(line) <= set("|- "):
                continue
            cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
            pdf.set_font("Helvetica", size=8)
            pdf.multi_cell(0, 4.5, " | ".join(cells), new_x="LMARGIN", new_y="NEXT")
            continue
        pdf.set_font("Helvetica", size=10.5)
        clean = line.replace("`", "")
        pdf.multi_cell(0, 5.5, clean if clean.strip() else " ", new_x="LMARGIN", new_y="NEXT")


def main() -> None:
    pdf = FPDF(format="A4")
    pdf.set_title("hoprag guide")
    pdf.set_author("hoprag")
    pdf.set_creation_date(__import__("datetime").datetime(2026, 11, 22))
    pdf.set_auto_page_break(True, margin=15)
    for src in SOURCES:
        render(pdf, src.read_text(encoding="utf-8"))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(OUT))
    print(f"wrote {OUT} ({pdf.page_no()} pages)")


if __name__ == "__main__":
    main()
