"""XLSX (and the other workbooks calamine reads): each sheet a section holding one Markdown table.

The segmenter cuts a table into row groups that each repeat the header row.
Empty rows and columns are skipped as they stream by, so a sheet padded with a
million empty rows costs a scan, not memory.
"""

from __future__ import annotations

import io

from rag.errors import IngestError

from ingest.loaders.base import LOADERS, Loaded, LoadOptions, Page, PageProgress, check_zip, markdown_table, stem_title


@LOADERS.register("xlsx")
def load_xlsx(data: bytes, name: str, options: LoadOptions, progress: PageProgress | None = None) -> Loaded:
    from python_calamine import CalamineError, CalamineWorkbook

    check_zip(data, "XLSX")
    pages = []
    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        for sheet_name in book.sheet_names:
            rows = table_rows(book.get_sheet_by_name(sheet_name).iter_rows())
            if rows:
                pages.append(Page(None, markdown_table(rows), sheet_name))
    except CalamineError as exc:
        raise IngestError(f"corrupt XLSX ({str(exc)[:80]})") from exc
    if not pages:
        raise IngestError("no text found in xlsx file (every sheet is empty)")
    return Loaded("xlsx", stem_title(name), tuple(pages))


def table_rows(rows) -> list[list[object]]:
    """Non-empty rows, cut to the columns that hold a value somewhere (the first row is the header)."""
    kept: list[list[object]] = []
    width = 0
    for row in rows:
        values = list(row)
        while values and (values[-1] is None or str(values[-1]).strip() == ""):
            values.pop()
        if values:
            kept.append(values)
            width = max(width, len(values))
    used = [j for j in range(width) if any(j < len(r) and str(r[j]).strip() for r in kept)]
    return [[r[j] if j < len(r) else "" for j in used] for r in kept]
