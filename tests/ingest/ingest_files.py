"""Test files of every kind the ingest tests use, made at test time (tiny, nothing shipped)."""

from __future__ import annotations

import io

PAGES = [
    "Alpacas graze on the Altiplano. The herd moves to the lower valley in winter.",
    "Spinning alpaca fibre: wash the fleece, card it, then spin it on a wheel.",
    "The loom was built in Cusco in 1931 by a weaver named Rosa Quispe.",
]


def make_pdf(pages: list[str], title: str = "Alpaca Handbook", bookmarks: bool = True) -> bytes:
    """A text PDF, one page per string, with an outline entry per page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(title)
    pdf.set_font("Helvetica", size=12)
    for i, text in enumerate(pages, 1):
        pdf.add_page()
        if bookmarks:
            pdf.start_section(f"Chapter {i}")
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


# What a drawing-only PDF (make_image_only_pdf) fails with: it has no text and no image to OCR.
NO_TEXT = "PDF has no text layer and no page images to OCR"


def make_image_only_pdf() -> bytes:
    """A PDF whose page is a drawing with no text layer (like a scan)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")
    return bytes(pdf.output())


# make_encrypted_pdf's user password: no word of any vocabulary (the tokenizer's vocabulary, which holds
# "secret", can land in Chroma's index files as uninitialised memory, so a password check on them needs a
# string that only a leak can put there).
PDF_PASSWORD = "Kw9-vicuna-pass-3Zq"


def make_encrypted_pdf(plain: bytes) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(plain)))
    writer.encrypt(user_password=PDF_PASSWORD, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx() -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = "Weaving Notes"
    document.add_heading("Looms", level=1)
    document.add_paragraph("A backstrap loom is tied to the weaver's waist.")
    document.add_heading("Dyes", level=2)
    document.add_paragraph("Cochineal insects give a deep red dye.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


HTML = """<!DOCTYPE html><html><head><title>Andean Textiles</title>
<script>var tracking = "SCRIPTJUNK";</script><style>.x{color:red}</style></head>
<body><nav><a href="/">Home</a> | <a href="/shop">NAVJUNK shop</a></nav>
<article><h1>Andean Textiles</h1>
<p>Andean textiles are woven from alpaca and llama fibre. Weavers in the highlands
keep patterns that are centuries old, passing them from mother to daughter.</p>
<p>The warp-faced technique produces dense, durable cloth with complementary
warp patterns that appear on both faces of the fabric.</p>
<p>Natural dyes such as cochineal, indigo and chilca give the characteristic colours.</p>
</article><footer>FOOTJUNK copyright</footer></body></html>"""

MARKDOWN = """# Llama Care

Llamas need shelter from wind.

## Feeding

Give llamas grass hay and fresh water every day.

### Minerals

A mineral block with selenium prevents deficiency.

## Shearing

Shear llamas once a year, in spring.
"""

TEXT = "Vicuna fibre is the finest animal fibre in the world.\n\nVicunas live wild above 3500 metres.\n"


# ---- issue 18: scans, passwords, Office files, tables, web pages -------------------------------
CITIES = [
    "Arequipa", "Ayacucho", "Cajamarca", "Chiclayo", "Cusco", "Huancayo", "Huaraz", "Ica", "Iquitos", "Juliaca",
    "Lima", "Moquegua", "Piura", "Pucallpa", "Puno", "Tacna", "Trujillo", "Tumbes", "Abancay", "Chachapoyas",
    "Huanuco", "Moyobamba", "Oruro", "Potosi", "Sucre", "Tarija", "Cochabamba", "Santa Cruz", "Trinidad", "Cobija",
    "La Paz", "El Alto", "Quillacollo", "Sacaba", "Montero", "Riberalta", "Yacuiba", "Villazon", "Uyuni", "Tupiza",
    "Copacabana", "Sorata", "Coroico", "Rurrenabaque", "Samaipata", "Camiri", "Guayaramerin", "Bermejo",
    "Vallegrande", "Challapata",
]
TABLE_HEADER = ["Station", "City", "Elevation (m)", "Keeper"]
# 50 rows; the question "elevation of the station in Quillacollo" is answered by one cell of row 33.
TABLE_ROWS = [[f"ST-{i:03d}", city, str(1000 + 37 * i), f"Keeper {city[:3]}{i}"] for i, city in enumerate(CITIES, 1)]


def make_text_pdf(lines: list[str], size: int = 16) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=size)
    pdf.add_page()
    for line in lines:
        pdf.multi_cell(0, size * 0.6, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def render_pages(pdf_bytes: bytes, dpi: int = 200) -> list:
    """Page images of a PDF, rendered with PDFium (what a scanner would give)."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf_bytes)
    try:
        return [doc[i].render(scale=dpi / 72, grayscale=True).to_pil() for i in range(len(doc))]
    finally:
        doc.close()


def make_scanned_pdf(lines: list[str]) -> bytes:
    """An image-only PDF: the page of a text PDF rendered to an image and saved as a PDF of that image."""
    out = io.BytesIO()
    images = render_pages(make_text_pdf(lines))
    images[0].save(out, "PDF", resolution=200, save_all=True, append_images=images[1:])
    return out.getvalue()


def make_mixed_pdf(text_page: list[str], scanned_page: list[str]) -> bytes:
    """Page 1 has a text layer, page 2 is a scan."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument.new()
    for part in (make_text_pdf(text_page), make_scanned_pdf(scanned_page)):
        src = pdfium.PdfDocument(part)
        doc.import_pages(src)
        src.close()
    out = io.BytesIO()
    doc.save(out)
    doc.close()
    return out.getvalue()


def make_png(lines: list[str]) -> bytes:
    out = io.BytesIO()
    render_pages(make_text_pdf(lines))[0].save(out, "PNG")
    return out.getvalue()


def make_bomb_png(side: int = 30_000) -> bytes:
    """A valid 1-bit PNG of side x side pixels (about 110 kB of zeros, 900 Mpx when decoded)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" * (1 + (side + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def make_pptx() -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    deck.core_properties.title = "Shearing Season"
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "When to shear"
    slide.placeholders[1].text = "Shear alpacas in spring before the heat."
    slide.notes_slide.notes_text_frame.text = "Mention that the Quispe farm shears in November."
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = "Fleece grades"
    table = slide.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(2)).table
    for r, row in enumerate([["Grade", "Micron"], ["Royal", "under 19"], ["Baby", "19 to 22"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def make_xlsx(sheets: dict[str, list[list[str]]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def make_csv(rows: list[list[str]]) -> bytes:
    import csv

    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def make_docx_with_table(rows: list[list[str]]) -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Weather stations", level=1)
    document.add_paragraph("The stations of the highland network, before the table.")
    table = document.add_table(rows=0, cols=len(rows[0]))
    for row in rows:
        cells = table.add_row().cells
        for cell, value in zip(cells, row):
            cell.text = value
    document.add_paragraph("Paragraph after the table.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_pdf_with_table(rows: list[list[str]]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    pdf.add_page()
    pdf.multi_cell(0, 6, "Weather stations of the highland network.")
    with pdf.table() as table:
        for values in rows:
            row = table.row()
            for value in values:
                row.cell(value)
    pdf.multi_cell(0, 6, "End of the station list.")
    return bytes(pdf.output())


def make_empty_rows_xlsx(rows: int = 1_000_000, top: tuple[tuple[str, ...], ...] = ()) -> bytes:
    """An XLSX whose only sheet has ``top`` rows, then ``rows`` rows of empty cells (XML: openpyxl takes minutes)."""
    import zipfile

    def cell(ref: str, text: str) -> str:
        return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'

    body = "".join(
        f'<row r="{i}">' + "".join(cell(f"{'ABCDEFGH'[j]}{i}", v) for j, v in enumerate(row)) + "</row>"
        for i, row in enumerate(top, 1)
    )
    body += "".join(f'<row r="{i}">{cell(f"A{i}", "")}</row>' for i in range(len(top) + 1, len(top) + rows + 1))
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
    files = {
        "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships'
        '+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override '
        'PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'spreadsheetml.worksheet+xml"/></Types>',
        "_rels/.rels": f'<?xml version="1.0"?><Relationships xmlns="{pkg}"><Relationship Id="rId1" '
        f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<?xml version="1.0"?><workbook {ns} xmlns:r="{rel}"><sheets><sheet name="Blank" '
        'sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<?xml version="1.0"?><Relationships xmlns="{pkg}"><Relationship Id="rId1" '
        f'Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": f'<?xml version="1.0"?><worksheet {ns}><sheetData>{body}</sheetData></worksheet>',
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return out.getvalue()


SCAN_LINES = ["The alpaca shearing record", "Rosa Quispe sheared forty alpacas in Puno."]
MIXED_TEXT = ["Chapter one is typed text about llama trekking."]
MIXED_SCAN = ["Chapter two was scanned from a vicuna census."]
