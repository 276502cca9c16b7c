"""Office files and tables: PPTX slides with notes, XLSX sheets, CSV, DOCX tables in reading order, PDF tables.

A question answered by one cell of a 50-row table retrieves the chunk with that row and the header, in every format.
"""

from __future__ import annotations

import pytest
from ingest_files import TABLE_HEADER, make_xlsx

from ingest.loaders import EXTENSIONS, load
from ingest.segment import segment
from rag.ui_support import UPLOAD_TYPES

HEADER_LINE = "| " + " | ".join(TABLE_HEADER) + " |"


def test_pptx_has_a_page_per_slide_with_notes_and_tables(office_files):
    loaded = load(office_files["pptx"].read_bytes(), "shearing.pptx")
    assert loaded.kind == "pptx" and loaded.title == "Shearing Season"
    assert [p.number for p in loaded.pages] == [1, 2]
    first, second = loaded.pages
    assert first.section == "When to shear" and "Shear alpacas in spring" in first.text
    assert "Speaker notes: Mention that the Quispe farm shears in November." in first.text
    assert "| Grade | Micron |" in second.text and "| Royal | under 19 |" in second.text


def test_xlsx_sheets_are_sections(office_files):
    loaded = load(office_files["xlsx"].read_bytes(), "stations.xlsx")
    assert loaded.kind == "xlsx"
    assert [p.section for p in loaded.pages] == ["Stations", "Notes"]
    assert loaded.pages[0].text.startswith(HEADER_LINE)
    assert "| Wind | Strong |" in loaded.pages[1].text


def test_xlsx_skips_empty_rows_and_columns():
    data = make_xlsx({"S": [["a", None, "b"], [None, None, None], ["1", None, "2"], [None], ["3", None, "4"]]})
    assert load(data, "s.xlsx").pages[0].text == "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |"


def test_docx_keeps_reading_order_with_tables(office_files):
    text = load(office_files["docx"].read_bytes(), "stations.docx").pages[0].text
    before, table, after = (text.index(s) for s in ("before the table", HEADER_LINE, "after the table"))
    assert before < table < after
    assert "| ST-033 | Quillacollo | 2221 | Keeper Qui33 |" in text


def test_pdf_tables_become_markdown_tables(office_files):
    loaded = load(office_files["pdf"].read_bytes(), "stations.pdf")
    assert loaded.pages[0].text.startswith("Weather stations of the highland network.\n" + HEADER_LINE)
    every = "\n".join(p.text for p in loaded.pages)
    assert "| ST-033 | Quillacollo | 2221 | Keeper Qui33 |" in every
    assert "End of the station list." in every


def test_csv_with_semicolons(tmp_path):
    loaded = load(b"name;town\nRosa;Puno\nAna;Cusco\n", "people.csv")
    assert loaded.kind == "csv" and loaded.pages[0].text == "| name | town |\n|---|---|\n| Rosa | Puno |\n| Ana | Cusco |"


def test_table_chunks_repeat_the_header(office_files):
    for kind in ("xlsx", "csv", "docx", "pdf"):
        loaded = load(office_files[kind].read_bytes(), office_files[kind].name)
        chunks = segment(loaded, "d", "s", chunk_tokens=200, chunk_overlap=20)
        tables = [c for c in chunks if "| ST-" in c.text]
        assert len(tables) >= 4, kind
        for chunk in tables:
            assert HEADER_LINE in chunk.text, (kind, chunk.text[:200])
        rows = [line for c in tables for line in c.text.splitlines() if line.startswith("| ST-")]
        assert len(set(rows)) == 50, kind  # every row once... (PDF repeats no row across its two pages)


def test_upload_box_accepts_every_loader_extension():
    assert set(UPLOAD_TYPES) == set(EXTENSIONS)


@pytest.mark.parametrize("kind", ["xlsx", "csv", "docx", "pdf"])
def test_one_cell_question_retrieves_its_row_with_the_header(make_rag, office_files, kind):
    rag = make_rag()
    report = rag.ingest(list(office_files.values()))
    assert report.ok, report
    source = str(office_files[kind].resolve())
    # Hybrid: the town's name is a rare word BM25 finds; dense MiniLM alone sees ten look-alike row groups.
    hits = rag.retrieve(
        "What is the elevation of the weather station in Quillacollo?", k=1, filters={"source": source},
        strategy="hybrid",
    )
    assert "| ST-033 | Quillacollo | 2221 |" in hits[0].chunk.text
    assert HEADER_LINE in hits[0].chunk.text
