"""File loaders: bytes → :class:`Loaded` (title and pages of text).

The type is detected from the content (magic bytes), the extension only breaks
ties between plain text and Markdown. Every failure is an :class:`IngestError`
with a one-line reason.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rag.errors import IngestError

log = logging.getLogger(__name__)

KINDS = ("pdf", "docx", "html", "markdown", "text")


@dataclass(frozen=True)
class Page:
    number: int | None  # 1-based page number for PDFs, None for flowing text
    text: str


@dataclass(frozen=True)
class Loaded:
    kind: str
    title: str
    pages: tuple[Page, ...]

    @property
    def markdown_like(self) -> bool:
        return self.kind in ("markdown", "html", "docx")


def detect(data: bytes, name: str = "") -> str:
    """The document kind of ``data``: one of :data:`KINDS`."""
    head = data[:2048]
    if head.lstrip()[:5] == b"%PDF-":
        return "pdf"
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                if "word/document.xml" in zf.namelist():
                    return "docx"
        except zipfile.BadZipFile as exc:
            raise IngestError("corrupt ZIP container (not a readable DOCX)") from exc
        raise IngestError("ZIP file that is not a DOCX document")
    text_head = head.decode("utf-8", errors="ignore").lower()
    if re.search(r"<!doctype html|<html[\s>]|<body[\s>]", text_head):
        return "html"
    if _looks_binary(head):
        raise IngestError("binary content that is not PDF, DOCX, HTML or text")
    ext = Path(name).suffix.lower()
    if ext in (".md", ".markdown") or re.search(r"^#{1,6} \S", text_head, re.M):
        return "markdown"
    return "text"


def _looks_binary(head: bytes) -> bool:
    if not head:
        return False
    if b"\x00" in head:
        return True
    # Control characters other than whitespace are rare in text.
    bad = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return bad / len(head) > 0.05


def decode_text(data: bytes) -> str:
    """UTF-8 (with BOM) first, then the best guess of charset_normalizer."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise IngestError("text in an unknown encoding")
    return str(best)


def load(data: bytes, name: str) -> Loaded:
    """Parse ``data`` (the bytes of file ``name``)."""
    if not data.strip():
        raise IngestError("empty file")
    kind = detect(data, name)
    loader = {"pdf": _pdf, "docx": _docx, "html": _html, "markdown": _markdown, "text": _text}[kind]
    loaded = loader(data, name)
    if not any(p.text.strip() for p in loaded.pages):
        if kind == "pdf":
            raise IngestError("PDF has no text layer (scanned images?); OCR it first")
        raise IngestError(f"no text found in {kind} file")
    return loaded


def _stem_title(name: str) -> str:
    return Path(name).stem.replace("_", " ").replace("-", " ").strip() or name


def _pdf(data: bytes, name: str) -> Loaded:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # An empty user password still opens many "encrypted" PDFs.
            try:
                if not reader.decrypt(""):
                    raise IngestError("encrypted PDF (password needed)")
            except IngestError:
                raise
            except Exception as exc:
                raise IngestError("encrypted PDF (password needed)") from exc
        pages = tuple(Page(i + 1, _clean(p.extract_text() or "")) for i, p in enumerate(reader.pages))
        meta_title = ""
        try:
            meta_title = (reader.metadata.title or "") if reader.metadata else ""
        except Exception:  # broken info dictionaries are common and harmless
            meta_title = ""
    except IngestError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, AttributeError, IndexError) as exc:
        raise IngestError(f"corrupt or truncated PDF ({type(exc).__name__}: {str(exc)[:80]})") from exc
    return Loaded("pdf", str(meta_title).strip() or _stem_title(name), pages)


def _clean(text: str) -> str:
    text = text.replace("\x00", "")
    text = re.sub(r"-\n(?=[a-z])", "", text)  # re-join hyphenated line breaks
    return re.sub(r"[ \t]+\n", "\n", text).strip()


def _docx(data: bytes, name: str) -> Loaded:
    import docx

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            total = sum(i.file_size for i in zf.infolist())
        if total > 200 * 1024 * 1024:
            raise IngestError(f"DOCX expands to {total // 2**20} MB (zip bomb?); refused")
        document = docx.Document(io.BytesIO(data))
    except IngestError:
        raise
    except Exception as exc:  # python-docx raises a mix of lxml, KeyError, zip errors
        raise IngestError(f"corrupt DOCX ({type(exc).__name__})") from exc
    lines = []
    title = (document.core_properties.title or "").strip()
    for para in document.paragraphs:
        text = para.text.strip()
        if not text:
            continue
        style = (para.style.name or "").lower() if para.style is not None else ""
        m = re.match(r"heading (\d)", style)
        if m:
            lines.append("#" * int(m.group(1)) + " " + text)
        elif style == "title":
            title = title or text
            lines.append("# " + text)
        else:
            lines.append(text)
    return Loaded("docx", title or _stem_title(name), (Page(None, "\n\n".join(lines)),))


def _html(data: bytes, name: str) -> Loaded:
    import trafilatura

    html = decode_text(data)
    text = trafilatura.extract(
        html, output_format="markdown", include_comments=False, include_tables=True, favor_recall=True
    )
    if not text:
        # Very short pages fall below trafilatura's thresholds; take the body text.
        from lxml import html as lxml_html

        tree = lxml_html.fromstring(html)
        for bad in tree.xpath("//script|//style|//nav|//header|//footer"):
            bad.drop_tree()
        text = tree.text_content()
    meta = trafilatura.extract_metadata(html)
    title = (meta.title if meta and meta.title else "") or _stem_title(name)
    return Loaded("html", title, (Page(None, _clean(text)),))


def _markdown(data: bytes, name: str) -> Loaded:
    text = decode_text(data)
    m = re.search(r"^# (.+)$", text, re.M)
    return Loaded("markdown", m.group(1).strip() if m else _stem_title(name), (Page(None, text),))


def _text(data: bytes, name: str) -> Loaded:
    return Loaded("text", _stem_title(name), (Page(None, decode_text(data)),))
