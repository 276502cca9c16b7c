"""Where a sentence sits on a PDF page, and that page rendered with the sentence highlighted.

:func:`locate` finds an evidence sentence (as the chunk text has it: lines
unwrapped, hyphenated line breaks joined) in the text layer PDFium extracts
from the pages, and returns its line boxes; :func:`render_page` draws a page
with PDFium and the boxes over it with Pillow.

The match ignores everything but letters and digits (compared after NFKC and
case folding), so line breaks, hyphenation, ligatures and spacing differences
between the page's text layer and the chunk text do not matter. A sentence cut
by a page break is placed on the page that holds the longer part of it.

Boxes are ``(left, top, right, bottom)`` in PDF points from the top-left corner
of the page's crop box (what :func:`render_page` draws at ``scale=1``), one
per line of text. PDFium is not thread-safe: every call here holds
:data:`PDFIUM_LOCK` (other PDFium users in this process should take it too).
"""

from __future__ import annotations

import io
import threading
import unicodedata
from pathlib import Path
from typing import Iterable

from rag.types import Box

PDFIUM_LOCK = threading.RLock()
MIN_MATCH = 16  # normalised characters a partial match must cover (or the whole sentence, if shorter)
SIDE_MARGIN = 24.0  # points kept left and right of the evidence when a page is cropped around it
HIGHLIGHT_FILL = (255, 214, 0, 90)
HIGHLIGHT_LINE = (224, 108, 0, 255)


def normalise(text: str) -> tuple[str, list[int]]:
    """Letters and digits of ``text`` (NFKC, case-folded) and, for each, the index of the character it came from."""
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        if ch.isascii():
            if ch.isalnum():
                chars.append(ch.lower())
                origin.append(i)
            continue
        for c in unicodedata.normalize("NFKC", ch).casefold():
            if c.isalnum():
                chars.append(c)
                origin.append(i)
    return "".join(chars), origin


def locate(pdf_path: str | Path, pages: Iterable[int], sentence: str) -> tuple[int | None, tuple[Box, ...]]:
    """The 1-based page among ``pages`` that holds ``sentence`` and its line boxes there.

    ``(None, ())`` when the file cannot be read or the sentence is not found
    (a scanned page, or text the loader changed beyond spacing and hyphens).
    """
    needle, _ = normalise(sentence)
    if not needle:
        return None, ()
    import pypdfium2 as pdfium

    with PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(str(pdf_path))
        except (pdfium.PdfiumError, OSError):
            return None, ()
        try:
            best: tuple[int, int, tuple[Box, ...]] | None = None  # (matched length, page, boxes)
            for number in pages:
                if not 1 <= number <= len(pdf):
                    continue
                page = pdf[number - 1]
                textpage = page.get_textpage()
                try:
                    found = _match(_page_chars(textpage), needle)
                    if found and (best is None or found[0] > best[0]):
                        best = (found[0], number, _boxes(page, textpage, found[1], found[2]))
                finally:
                    textpage.close()
                    page.close()
                if best is not None and best[0] == len(needle):
                    break
        except pdfium.PdfiumError:
            return None, ()
        finally:
            pdf.close()
    return (best[1], best[2]) if best else (None, ())


def render_page(
    pdf_path: str | Path, page: int, boxes: Iterable[Box] = (), scale: float = 1.5, around: float | None = None
) -> bytes:
    """Page ``page`` (1-based) of the PDF as PNG bytes, ``boxes`` (points, top-left origin) highlighted.

    With ``around`` (points) and boxes, only the part of the page around the
    boxes is returned: from ``around`` above the first box to ``around`` below
    the last, and as wide as the boxes plus a margin, so the evidence is in
    view at once and legible in a narrow column.
    """
    boxes = tuple(boxes)
    import pypdfium2 as pdfium
    from PIL import Image, ImageDraw

    with PDFIUM_LOCK:
        pdf = pdfium.PdfDocument(str(pdf_path))
        try:
            if not 1 <= page <= len(pdf):
                raise ValueError(f"page {page} is not in {Path(pdf_path).name} ({len(pdf)} pages)")
            pdf_page = pdf[page - 1]
            try:
                image = pdf_page.render(scale=scale).to_pil().convert("RGBA")
            finally:
                pdf_page.close()
        finally:
            pdf.close()
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    pad = 1.5
    for left, top, right, bottom in boxes:
        draw.rectangle(
            ((left - pad) * scale, (top - pad) * scale, (right + pad) * scale, (bottom + pad) * scale),
            fill=HIGHLIGHT_FILL, outline=HIGHLIGHT_LINE, width=max(1, round(scale)),
        )
    image = Image.alpha_composite(image, overlay).convert("RGB")
    if around is not None and boxes:
        side = min(around, SIDE_MARGIN)
        left = max(0, int((min(b[0] for b in boxes) - side) * scale))
        right = min(image.width, int((max(b[2] for b in boxes) + side) * scale) + 1)
        top = max(0, int((min(b[1] for b in boxes) - around) * scale))
        bottom = min(image.height, int((max(b[3] for b in boxes) + around) * scale) + 1)
        image = image.crop((left, top, right, bottom))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


# ---- internals --------------------------------------------------------------------------------
def _page_chars(textpage) -> str:
    """The page's text, one character per PDFium character index (so offsets map to boxes)."""
    import pypdfium2.raw as raw

    return "".join(chr(raw.FPDFText_GetUnicode(textpage, i)) for i in range(textpage.count_chars()))


def _match(page_text: str, needle: str) -> tuple[int, int, int] | None:
    """(matched normalised length, first char index, end char index) of the longest prefix or suffix found."""
    hay, origin = normalise(page_text)
    at = hay.find(needle)
    if at >= 0:
        return len(needle), origin[at], _punct_end(page_text, origin[at + len(needle) - 1] + 1)
    floor = min(MIN_MATCH, len(needle))
    best = None
    prefix = _longest(lambda n: hay.find(needle[:n]), floor, len(needle) - 1)
    if prefix:
        n, at = prefix
        best = (n, origin[at], origin[at + n - 1] + 1)
    suffix = _longest(lambda n: hay.find(needle[-n:]), floor, len(needle) - 1)
    if suffix and (best is None or suffix[0] > best[0]):
        n, at = suffix
        best = (n, origin[at], _punct_end(page_text, origin[at + n - 1] + 1))
    return best


def _punct_end(text: str, end: int) -> int:
    """Extend a match over the punctuation right after it (a sentence's closing period or quote)."""
    while end < len(text) and not text[end].isspace() and not text[end].isalnum():
        end += 1
    return end


def _longest(find, low: int, high: int) -> tuple[int, int] | None:
    """The largest n in [low, high] with find(n) >= 0 (found-ness is monotone in n), and where."""
    if high < low or find(low) < 0:
        return None
    best = (low, find(low))
    while low < high:
        mid = (low + high + 1) // 2
        at = find(mid)
        if at >= 0:
            best, low = (mid, at), mid
        else:
            high = mid - 1
    return best


def _boxes(page, textpage, start: int, end: int) -> tuple[Box, ...]:
    # the visible area (media box ∩ crop box), boxes inherited from the page tree included
    left0, _bottom, _right, top0 = page.get_bbox()
    boxes = []
    for i in range(textpage.count_rects(start, end - start)):
        left, bottom, right, top = textpage.get_rect(i)
        boxes.append((round(left - left0, 2), round(top0 - top, 2), round(right - left0, 2), round(top0 - bottom, 2)))
    return tuple(boxes)
