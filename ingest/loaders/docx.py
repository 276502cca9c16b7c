"""DOCX in reading order: headings as Markdown headings, paragraphs, and tables as Markdown tables."""

from __future__ import annotations

import io
import re

from rag.errors import IngestError

from ingest.loaders.base import LOADERS, Loaded, LoadOptions, Page, PageProgress, check_zip, markdown_table, stem_title


@LOADERS.register("docx")
def load_docx(data: bytes, name: str, options: LoadOptions, progress: PageProgress | None = None) -> Loaded:
    import docx
    from docx.table import Table

    check_zip(data, "DOCX")
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises a mix of lxml, KeyError, zip errors
        raise IngestError(f"corrupt DOCX ({type(exc).__name__})") from exc
    blocks = []
    title = (document.core_properties.title or "").strip()
    for item in document.iter_inner_content():  # paragraphs and tables in document order
        if isinstance(item, Table):
            rows = _table_rows(item)
            if rows:
                blocks.append(markdown_table(rows))
            continue
        text = item.text.strip()
        if not text:
            continue
        style = (item.style.name or "").lower() if item.style is not None else ""
        m = re.match(r"heading (\d)", style)
        if m:
            blocks.append("#" * int(m.group(1)) + " " + text)
        elif style == "title":
            title = title or text
            blocks.append("# " + text)
        else:
            blocks.append(text)
    return Loaded("docx", title or stem_title(name), (Page(None, "\n\n".join(blocks)),))


def _table_rows(table) -> list[list[str]]:
    # A merged cell repeats in each grid column it spans, which keeps the columns under their headers.
    rows = [[cell.text for cell in row.cells] for row in table.rows]
    return [r for r in rows if any(c.strip() for c in r)]
