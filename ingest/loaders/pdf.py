"""PDF: text from PDFium, OCR for pages without a text layer, ruled tables as Markdown tables.

PDFium extracts text about 25x faster than pypdf (0.7 s vs 19 s for the 368-page
reference corpus). Pages whose text layer is empty but that draw something are
rendered with PDFium and OCR'd (:mod:`ingest.ocr`), so a mixed PDF keeps its text
pages as they are. Pages that draw a grid of lines are handed, alone, to
pdfplumber's table finder; a table found replaces its lines of text with a
Markdown table.
"""

from __future__ import annotations

import ctypes
import io
import logging
import re
from collections import defaultdict

from rag.errors import IngestError
# PDFium is not thread-safe: one lock for every PDFium user of the process (the page view too);
# processes are the way to parallel parsing.
from rag.pdfview import PDFIUM_LOCK

from ingest.loaders.base import LOADERS, Loaded, LoadOptions, Page, PageProgress, clean_text, markdown_table, stem_title
from ingest import ocr
from ingest.ocr import MAX_PIXELS, OcrOptions, ocr_pages

log = logging.getLogger(__name__)

# A page with fewer characters than this in its text layer (a page number, a stray mark) that draws an
# image is OCR'd.
OCR_BELOW_CHARS = 16
PASSWORD_HINT = "give it with 'hoprag ingest --password' or password= in the API"


def _open(data: bytes, password: str | None):
    import pypdfium2 as pdfium

    if b"%%EOF" not in data[-8192:]:
        # PDFium would salvage the first pages of a cut-off download; half a
        # document in the index misleads more than a clear refusal.
        raise IngestError("truncated PDF (no %EOF marker at the end); download or export it again")
    try:
        return pdfium.PdfDocument(data, password=password or None)
    except pdfium.PdfiumError as exc:
        msg = str(exc)
        if "password" in msg.lower():
            if password:
                raise IngestError("encrypted PDF: wrong password") from None  # no chained context holding it
            raise IngestError(f"encrypted PDF: password needed; {PASSWORD_HINT}") from exc
        raise IngestError(f"corrupt or truncated PDF ({msg[:80]})") from exc


def needs_password(data: bytes) -> bool:
    """Whether ``data`` is a PDF that only opens with a password."""
    if data.lstrip()[:5] != b"%PDF-":
        return False
    with PDFIUM_LOCK:
        try:
            _open(data, None).close()
        except IngestError as exc:
            return "password needed" in str(exc)
    return False


@LOADERS.register("pdf")
def load_pdf(data: bytes, name: str, options: LoadOptions, progress: PageProgress | None = None) -> Loaded:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    with PDFIUM_LOCK:
        pdf = _open(data, options.password)
        try:
            outline = _outline(pdf)
            texts: list[str] = []
            to_ocr: list[int] = []
            grids: list[int] = []
            for i in range(len(pdf)):
                page = pdf[i]
                textpage = page.get_textpage()
                try:
                    text = textpage.get_text_bounded()
                    if len(text.strip()) < OCR_BELOW_CHARS and _has_image(page, pdfium_c):
                        to_ocr.append(i)
                    elif _draws_grid(page, pdfium_c):
                        grids.append(i)
                finally:
                    textpage.close()
                    page.close()
                texts.append(text)
            tables = _tables(pdf, grids, pdfium_c)
            for i, found in tables.items():
                texts[i] = _with_tables(pdf, i, found)
            if to_ocr:
                ocr = OcrOptions(options.ocr_languages, options.ocr_cache)
                for i, text in ocr_pages(lambda i: _render(pdf, i), to_ocr, ocr, progress).items():
                    texts[i] = text
            meta_title = (pdf.get_metadata_dict().get("Title") or "").strip()
        except pdfium.PdfiumError as exc:
            raise IngestError(f"corrupt or truncated PDF ({str(exc)[:80]})") from exc
        finally:
            pdf.close()
    pages = [Page(i + 1, clean_text(text), outline.get(i + 1, "")) for i, text in enumerate(texts)]
    if not any(p.text for p in pages):
        if to_ocr:
            raise IngestError("PDF has no text layer and OCR found no text in its pages")
        raise IngestError("PDF has no text layer and no page images to OCR")
    return Loaded("pdf", meta_title or stem_title(name), _fill_sections(pages))


def _render(pdf, index: int):
    page = pdf[index]
    try:
        width, height = page.get_size()
        scale = ocr.OCR_DPI / 72  # read at call time: scripts/bench_ocr.py tries other resolutions
        if width * height * scale * scale > MAX_PIXELS:
            scale = (MAX_PIXELS / (width * height)) ** 0.5
        return page.render(scale=scale, grayscale=True).to_pil()
    finally:
        page.close()


def _has_image(page, pdfium_c) -> bool:
    """Whether the page draws an image (directly or in a form): a scan. A page of short text alone is not OCR'd."""
    kinds = (pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_FORM)
    return any(
        pdfium_c.FPDFPageObj_GetType(pdfium_c.FPDFPage_GetObject(page, j)) in kinds
        for j in range(pdfium_c.FPDFPage_CountObjects(page))
    )


def _draws_grid(page, pdfium_c) -> bool:
    """Cheap pre-filter for pdfplumber: 3+ ruled lines of one width crossed by 3+ vertical rules within them.

    Reads the bounds of path objects only (a few ctypes calls per object). Of the
    368 pages of gnuplot.pdf and liboctave.pdf, 3 pass (2 hold tables); figures and
    code boxes do not (a box's sides are only 2 verticals).
    """
    rows: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    verticals: list[tuple[float, float, float]] = []
    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    for j in range(pdfium_c.FPDFPage_CountObjects(page)):
        obj = pdfium_c.FPDFPage_GetObject(page, j)
        if pdfium_c.FPDFPageObj_GetType(obj) != pdfium_c.FPDF_PAGEOBJ_PATH:
            continue
        pdfium_c.FPDFPageObj_GetBounds(obj, left, bottom, right, top)
        x0, y0, x1, y1 = left.value, bottom.value, right.value, top.value
        if y1 - y0 < 3 and x1 - x0 > 20:  # a horizontal rule
            rows[(round(x0), round(x1))].append((y0, y1))
        elif x1 - x0 < 3 and y1 - y0 > 8:  # a vertical rule
            verticals.append((x0, y0, y1))
        elif x1 - x0 > 20 and y1 - y0 > 8:  # a box (cell borders drawn as rectangles)
            rows[(round(x0), round(x1))] += [(y0, y0), (y1, y1)]
            verticals += [(x0, y0, y1), (x1, y0, y1)]
    if not rows:
        return False
    (g0, g1), spans = max(rows.items(), key=lambda kv: len(kv[1]))
    low, high = min(y for y, _ in spans), max(y for _, y in spans)
    inside = {round(x) for x, y0, y1 in verticals if g0 - 2 <= x <= g1 + 2 and y0 < high + 2 and y1 > low - 2}
    return len(spans) >= 3 and len(inside) >= 3


def _tables(pdf, indexes: list[int], pdfium_c) -> dict[int, list]:
    """Page index → the tables pdfplumber finds on it: (bbox, rows of cell bboxes), top to bottom.

    pdfplumber sees a copy of the page holding only its vector paths (the rules
    it finds tables by): without the text and images, pdfminer reads the page
    5x faster (0.26 s instead of 1.27 s for the 5 candidate pages of gnuplot.pdf).
    The cells' text then comes from PDFium.
    """
    if not indexes:
        return {}
    import pdfplumber
    import pypdfium2 as pdfium

    found: dict[int, list] = {}
    for i in indexes:
        single = pdfium.PdfDocument.new()
        try:
            single.import_pages(pdf, [i])
            page = single[0]
            for j in reversed(range(pdfium_c.FPDFPage_CountObjects(page))):
                obj = pdfium_c.FPDFPage_GetObject(page, j)
                if pdfium_c.FPDFPageObj_GetType(obj) != pdfium_c.FPDF_PAGEOBJ_PATH:
                    pdfium_c.FPDFPage_RemoveObject(page, obj)
                    pdfium_c.FPDFPageObj_Destroy(obj)
            pdfium_c.FPDFPage_GenerateContent(page)
            page.close()
            buf = io.BytesIO()
            single.save(buf)
        finally:
            single.close()
        try:
            with pdfplumber.open(buf) as doc:
                tables = [
                    (table.bbox, [row.cells for row in table.rows])
                    for table in doc.pages[0].find_tables()
                    if len(table.rows) >= 2 and max(len(row.cells) for row in table.rows) >= 2
                ]
        except Exception as exc:  # pdfminer on a strange page: keep PDFium's text for it
            log.debug("table finder failed on page %d: %s", i + 1, exc)
            continue
        if tables:
            found[i] = sorted(tables, key=lambda t: t[0][1])
    return found


def _with_tables(pdf, index: int, tables: list) -> str:
    """The page's text with each table's area replaced by its Markdown table (text beside a table follows it)."""
    page = pdf[index]
    textpage = page.get_textpage()
    try:
        x0, y0, x1, y1 = page.get_bbox()  # the visible page (crop box), in PDF units from the bottom left
        parts = []
        cursor = y1  # PDF y grows upwards; pdfplumber measures from the top

        def text_in(cell) -> str:
            if cell is None:  # a merged cell's other grid slots
                return ""
            left, top, right, bottom = cell
            return textpage.get_text_bounded(left, y1 - bottom, right, y1 - top)

        for (left, top, right, bottom), rows in tables:
            t_top, t_bottom = y1 - top, y1 - bottom
            if t_top < cursor:
                parts.append(textpage.get_text_bounded(x0, t_top, x1, cursor))
            parts.append("\n" + markdown_table([[text_in(c) for c in row] for row in rows]) + "\n")
            parts.append(textpage.get_text_bounded(x0, t_bottom, left, t_top))
            parts.append(textpage.get_text_bounded(right, t_bottom, x1, t_top))
            cursor = min(cursor, t_bottom)
        parts.append(textpage.get_text_bounded(x0, y0, x1, cursor))
    finally:
        textpage.close()
        page.close()
    return "\n".join(p.strip("\n") for p in parts if p.strip())


def _outline(pdf) -> dict[int, str]:
    """Page number → section path of the last bookmark that starts on that page."""
    starts: dict[int, str] = {}
    path: list[str] = []
    try:
        for mark in pdf.get_toc():
            title = re.sub(r"\s+", " ", mark.get_title() or "").strip()
            del path[mark.level :]
            path.append(title)
            dest = mark.get_dest()
            index = dest.get_index() if dest is not None else None
            if index is not None and index >= 0 and title and mark.level < 4:
                starts[index + 1] = " > ".join(p for p in path if p)
    except Exception as exc:  # a broken outline only costs the section paths
        log.debug("ignoring unreadable PDF outline: %s", exc)
    return starts


def _fill_sections(pages: list[Page]) -> tuple[Page, ...]:
    """Pages without a bookmark of their own belong to the previous page's section."""
    out, current = [], ""
    for page in pages:
        current = page.section or current
        out.append(Page(page.number, page.text, current))
    return tuple(out)
