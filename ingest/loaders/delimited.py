"""CSV and TSV: one Markdown table (the first row is the header)."""

from __future__ import annotations

import csv
import io

from rag.errors import IngestError

from ingest.loaders.base import LOADERS, Loaded, LoadOptions, Page, PageProgress, markdown_table, stem_title
from ingest.loaders.text import decode_text
from ingest.loaders.xlsx import table_rows


@LOADERS.register("csv")
def load_csv(data: bytes, name: str, options: LoadOptions, progress: PageProgress | None = None) -> Loaded:
    text = decode_text(data)
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel_tab if name.lower().endswith(".tsv") else csv.excel
    try:
        rows = table_rows(csv.reader(io.StringIO(text), dialect))
    except csv.Error as exc:
        raise IngestError(f"malformed CSV ({exc})") from exc
    if not rows:
        raise IngestError("no text found in csv file")
    return Loaded("csv", stem_title(name), (Page(None, markdown_table(rows)),))
