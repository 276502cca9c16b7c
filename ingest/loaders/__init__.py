"""File loaders: bytes → :class:`Loaded` (title and pages of text).

The type is detected from the content (magic bytes), the extension only breaks
ties between text formats. One file per kind registers its loader in
:data:`LOADERS`. Every failure is an :class:`IngestError` with a one-line reason.
"""

from __future__ import annotations

from rag.errors import IngestError

from ingest.loaders.base import LOADERS, Loaded, LoadOptions, Page, PageProgress
from ingest.loaders.detect import KINDS, detect
from ingest.loaders.text import decode_text

# Each import registers one kind's loader (heavy libraries load only when a file of that kind comes).
from ingest.loaders import delimited, docx, html, image, pdf, pptx, text, xlsx  # noqa: E402,F401  isort: skip
from ingest.loaders.pdf import needs_password  # noqa: E402

__all__ = [
    "EXTENSIONS", "KINDS", "LOADERS", "Loaded", "LoadOptions", "Page", "PageProgress", "decode_text", "detect", "load",
    "needs_password",
]

# File name extensions of the kinds above, for upload boxes and folder listings.
EXTENSIONS = (
    "pdf", "docx", "pptx", "xlsx", "csv", "tsv", "png", "jpg", "jpeg", "tif", "tiff", "html", "htm", "md",
    "markdown", "txt",
)


def load(
    data: bytes, name: str, options: LoadOptions = LoadOptions(), progress: PageProgress | None = None
) -> Loaded:
    """Parse ``data`` (the bytes of file ``name``); ``progress(done, total)`` follows pages being OCR'd."""
    if not data.strip():
        raise IngestError("empty file")
    kind = detect(data, name)
    loaded = LOADERS.create(kind, data, name, options, progress)
    if not any(p.text.strip() for p in loaded.pages):
        raise IngestError(f"no text found in {kind} file")
    return loaded
