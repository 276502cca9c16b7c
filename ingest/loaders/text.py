"""Plain text and Markdown, and the text decoding the other text formats share."""

from __future__ import annotations

import re

from rag.errors import IngestError

from ingest.loaders.base import LOADERS, Loaded, LoadOptions, Page, PageProgress, stem_title
from ingest.loaders.detect import utf16


def decode_text(data: bytes) -> str:
    """UTF-8 (with BOM), then UTF-16, then the best guess of charset_normalizer (preferring Windows-1252)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    wide = utf16(data[:2048])
    if wide:
        return data.decode(wide, errors="replace")
    from charset_normalizer import from_bytes

    results = from_bytes(data)
    best = results.best()
    if best is None:
        raise IngestError("text in an unknown encoding")
    # Short Western text is often guessed as a Baltic or Central European code page;
    # Windows-1252 (a Latin-1 superset) wins when it reads the bytes about as cleanly.
    try:
        western = data.decode("cp1252")
    except UnicodeDecodeError:
        return str(best)
    if any(str(m) == western and m.chaos <= best.chaos + 0.1 for m in results) or best.encoding in ("cp1257", "cp1250"):
        return western if _western_ok(western) else str(best)
    return str(best)


def _western_ok(text: str) -> bool:
    # Decoded as Windows-1252, a Western text is mostly ASCII and Latin-1 letters.
    plain = sum(1 for ch in text if ch.isascii() or "\u00c0" <= ch <= "\u00ff")
    return plain >= 0.97 * max(len(text), 1)


@LOADERS.register("markdown")
def load_markdown(data: bytes, name: str, options: LoadOptions, progress: PageProgress | None = None) -> Loaded:
    text = decode_text(data)
    m = re.search(r"^# (.+)$", text, re.M)
    return Loaded("markdown", m.group(1).strip() if m else stem_title(name), (Page(None, text),))


@LOADERS.register("text")
def load_text(data: bytes, name: str, options: LoadOptions, progress: PageProgress | None = None) -> Loaded:
    return Loaded("text", stem_title(name), (Page(None, decode_text(data)),))
