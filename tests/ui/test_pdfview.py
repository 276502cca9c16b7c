"""rag.pdfview: finding an evidence sentence on a PDF page (real PDFium) and drawing the page with it boxed."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from rag.pdfview import HIGHLIGHT_LINE, locate, normalise, render_page

fpdf = pytest.importorskip("fpdf", reason="the test PDFs are made with fpdf2 (the 'dev' extra)")

INTRO = "Introduction. The quick brown fox jumps over the lazy dog while the otter sleeps. " * 3
HYPHENATED = ("The LU factori-\nzation of a matrix is computed by the lu function, which returns the lower "
              "and upper triangular factors.")
AS_CHUNKED = ("The LU factorization of a matrix is computed by the lu function, which returns the lower and "
              "upper triangular factors.")  # the loader joins hyphenated line breaks and unwraps lines
SECOND = "Second page: the launch code is BLUE-42 and it is kept in the vault under the lighthouse."
SPLIT_A = "This sentence starts at the foot of page two and"
SPLIT_B = "ends on page three with a few more words than it had before."


@pytest.fixture(scope="module")
def manual(tmp_path_factory):
    pdf = fpdf.FPDF(format="A4")
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    for text in (INTRO, HYPHENATED):
        pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    pdf.add_page()
    pdf.multi_cell(0, 6, SECOND, new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(-40)
    pdf.cell(0, 6, SPLIT_A)
    pdf.add_page()
    pdf.multi_cell(0, 6, SPLIT_B, new_x="LMARGIN", new_y="NEXT")
    path = tmp_path_factory.mktemp("pdf") / "manual.pdf"
    pdf.output(str(path))
    return path


def test_normalise_keeps_letters_and_digits_with_their_origin():
    assert normalise("Ef\ufb01cient  X-42,\nok") == ("efficientx42ok", [0, 1, 2, 2, 3, 4, 5, 6, 7, 10, 12, 13, 16, 17])


def test_locate_a_sentence_across_wrapped_and_hyphenated_lines(manual):
    page, boxes = locate(manual, range(1, 4), AS_CHUNKED)
    assert page == 1 and len(boxes) == 3  # three lines of the page: three boxes
    a4_width, a4_height = 595.28, 841.89
    for left, top, right, bottom in boxes:
        assert 0 <= left < right <= a4_width and 0 <= top < bottom <= a4_height
    tops = [b[1] for b in boxes]
    assert tops == sorted(tops) and tops[0] > 60  # below the intro paragraph, measured from the top
    assert boxes[-1][2] < 200  # the last line holds only "factors."


def test_locate_picks_the_right_page_and_ignores_case_and_spacing(manual):
    page, boxes = locate(manual, range(1, 4), "the LAUNCH code  is blue 42")
    assert page == 2 and len(boxes) == 1 and boxes[0][1] < 60  # the first line of page 2
    assert locate(manual, [1], "the launch code is BLUE-42") == (None, ())  # not among the pages searched


def test_locate_a_sentence_cut_by_a_page_break(manual):
    page, boxes = locate(manual, range(2, 4), f"{SPLIT_A} {SPLIT_B}")
    assert page == 3 and boxes  # the longer part is on page 3
    page, boxes = locate(manual, range(2, 4), f"{SPLIT_A} ends on page")
    assert page == 2 and boxes and boxes[0][1] > 700  # the longer part is at the foot of page 2


def test_locate_returns_nothing_for_missing_text_or_files(manual, tmp_path):
    assert locate(manual, range(1, 4), "Completely unrelated words that the manual never says.") == (None, ())
    assert locate(manual, range(1, 4), " ... ") == (None, ())
    assert locate(tmp_path / "missing.pdf", range(1, 2), AS_CHUNKED) == (None, ())
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    assert locate(tmp_path / "broken.pdf", range(1, 2), AS_CHUNKED) == (None, ())
    assert locate(manual, range(7, 9), AS_CHUNKED) == (None, ())


def test_render_page_draws_the_boxes(manual):
    page, boxes = locate(manual, range(1, 4), AS_CHUNKED)
    plain = Image.open(io.BytesIO(render_page(manual, page, (), scale=1.0))).convert("RGB")
    marked = Image.open(io.BytesIO(render_page(manual, page, boxes, scale=2.0))).convert("RGB")
    assert abs(plain.size[0] - 595) <= 1 and abs(marked.size[1] - 1684) <= 1  # A4 in points, times the scale
    left, top, right, bottom = boxes[1]
    # the box outline is drawn in the highlight colour at the box's scaled position
    edge = marked.getpixel((int((left + right) / 2 * 2), int((top - 1.5) * 2)))
    assert edge == HIGHLIGHT_LINE[:3]
    # inside the box the page is tinted yellow (less blue than the plain render); outside it is unchanged
    plain2 = Image.open(io.BytesIO(render_page(manual, page, (), scale=2.0))).convert("RGB")
    region = tuple(int(v * 2) for v in (left + 2, top + 2, right - 2, bottom - 2))

    def mean_blue(image, box):
        return sum(p[2] for p in image.crop(box).getdata()) / ((box[2] - box[0]) * (box[3] - box[1]))

    assert mean_blue(marked, region) < mean_blue(plain2, region) - 40
    outside = (region[0], int(bottom * 2) + 60, region[2], int(bottom * 2) + 100)
    assert mean_blue(marked, outside) == mean_blue(plain2, outside)
    with pytest.raises(ValueError, match="page 9 is not in manual.pdf"):
        render_page(manual, 9)


def test_render_page_around_the_evidence(manual):
    page, boxes = locate(manual, range(1, 4), AS_CHUNKED)
    band = Image.open(io.BytesIO(render_page(manual, page, boxes, scale=1.0, around=20)))
    top, bottom = min(b[1] for b in boxes), max(b[3] for b in boxes)
    left, right = min(b[0] for b in boxes), max(b[2] for b in boxes)
    assert abs(band.height - (bottom - top + 40)) <= 2 and abs(band.width - (right - left + 40)) <= 2
    whole = Image.open(io.BytesIO(render_page(manual, page, (), scale=1.0, around=20)))  # nothing to centre on
    assert abs(whole.height - 842) <= 1
