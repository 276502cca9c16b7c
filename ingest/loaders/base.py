"""What every loader shares: the :class:`Loaded` result, load options and the loader registry."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rag.errors import IngestError
from rag.registry import Registry


@dataclass(frozen=True)
class Page:
    number: int | None  # 1-based page (PDF) or slide (PPTX) number, None for flowing text
    text: str
    section: str = ""  # section path (PDF outline, sheet name, slide title); flowing text has headings instead


@dataclass(frozen=True)
class Loaded:
    kind: str
    title: str
    pages: tuple[Page, ...]

    @property
    def markdown_like(self) -> bool:
        return self.kind in ("markdown", "html", "docx")


# (pages done, pages to do) while a loader OCRs pages.
PageProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class LoadOptions:
    """What a loader may need besides the bytes. The password never appears in a repr, log or error."""

    password: str | None = field(default=None, repr=False)
    ocr_languages: str = "eng"
    ocr_cache: str | None = None  # SQLite file of OCR results keyed by page-image hash; None: no cache


# kind -> loader(bytes, file name, LoadOptions, PageProgress | None) -> Loaded; one file per kind registers one.
LOADERS: Registry[Loaded] = Registry("document kind")

MAX_UNZIPPED_BYTES = 200 * 2**20  # an Office file (ZIP) expanding past this is a zip bomb


def stem_title(name: str) -> str:
    return Path(name).stem.replace("_", " ").replace("-", " ").strip() or name


def clean_text(text: str) -> str:
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"-\n(?=[a-z])", "", text)  # re-join hyphenated line breaks
    return re.sub(r"[ \t]+\n", "\n", text).strip()


def check_zip(data: bytes, what: str) -> None:
    """Refuse an Office container that is not a readable ZIP or that expands too much."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            total = sum(i.file_size for i in zf.infolist())
    except zipfile.BadZipFile as exc:
        raise IngestError(f"corrupt {what} (not a readable ZIP container)") from exc
    if total > MAX_UNZIPPED_BYTES:
        raise IngestError(f"{what} expands to {total // 2**20} MB (zip bomb?); refused")


def cell_text(value: object) -> str:
    """One table cell as Markdown table text: one line, pipes escaped."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split()).replace("|", "\\|")


def markdown_table(rows: list[list[object]]) -> str:
    """Rows (the first is the header) as a Markdown table; rows are padded to the widest."""
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    lines = []
    for i, row in enumerate(rows):
        cells = [cell_text(c) for c in row] + [""] * (width - len(row))
        lines.append("| " + " | ".join(cells) + " |")
        if i == 0:
            lines.append("|" + "---|" * width)
    return "\n".join(lines)
