"""Document kind from the content (magic bytes); the extension only breaks ties between text formats."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from rag.errors import IngestError

KINDS = ("pdf", "docx", "pptx", "xlsx", "csv", "image", "html", "markdown", "text")

# ZIP member that tells which Office format a container is.
_OFFICE_PARTS = {"word/document.xml": "docx", "ppt/presentation.xml": "pptx", "xl/workbook.xml": "xlsx"}
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")


def detect(data: bytes, name: str = "") -> str:
    """The document kind of ``data``: one of :data:`KINDS`."""
    head = data[:2048]
    if head.lstrip()[:5] == b"%PDF-":
        return "pdf"
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                names = set(zf.namelist())
        except zipfile.BadZipFile as exc:
            raise IngestError("corrupt ZIP container (not a readable DOCX, PPTX or XLSX)") from exc
        for part, kind in _OFFICE_PARTS.items():
            if part in names:
                return kind
        raise IngestError("ZIP file that is not a DOCX, PPTX or XLSX document")
    if head[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise IngestError(
            "legacy (.doc/.xls/.ppt) or password-protected Office file; save it as DOCX, XLSX or PPTX without a password"
        )
    if head.startswith(_IMAGE_MAGIC):
        return "image"
    text_head = head.decode("utf-8", errors="ignore").lower()
    if re.search(r"<!doctype html|<html[\s>]|<body[\s>]", text_head):
        return "html"
    if looks_binary(head) and not utf16(head):
        raise IngestError("binary content that is not PDF, Office (DOCX, PPTX, XLSX), image, HTML or text")
    ext = Path(name).suffix.lower()
    if ext in (".csv", ".tsv"):
        return "csv"
    if ext in (".md", ".markdown") or re.search(r"^#{1,6} \S", text_head, re.M):
        return "markdown"
    return "text"


def looks_binary(head: bytes) -> bool:
    if not head:
        return False
    if b"\x00" in head:
        return True
    # Control characters other than whitespace are rare in text.
    bad = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return bad / len(head) > 0.05


def utf16(head: bytes) -> str:
    """``utf-16``/``utf-16-le``/``utf-16-be`` when ``head`` looks like UTF-16 text (its NULs are not binary), else ''."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    even, odd = head[0:200:2], head[1:200:2]
    if len(head) >= 8:
        # ASCII-range UTF-16: every other byte is NUL, the others are not.
        if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.1 * len(even):
            return "utf-16-le"
        if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.1 * len(odd):
            return "utf-16-be"
    return ""
