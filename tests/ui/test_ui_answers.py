"""How app.py shows an answer (issue 16): safe Markdown, evidence highlights, unsupported sentences, abstentions,
every passage listed, the PDF page view, and the answer-mode and length settings.

The answers are built here (the pipeline's Answer contract) and streamed by a
stand-in for RAG.stream, so each case is exact; the real pipeline's answers
go through the same code in test_ui_app.py and the browser tests.
"""

from __future__ import annotations

import re

import pytest

pytest.importorskip("streamlit", reason="the UI tests need the 'ui' extra: pip install 'hoprag[ui]'")

from rag import RAG  # noqa: E402
from rag.answer.base import ABSTAIN_UNKNOWN_TEXT  # noqa: E402
from rag.ui_support import escape_markdown  # noqa: E402
from rag.types import Answer, AnswerSentence, Chunk, Citation, Hit, Span  # noqa: E402
from test_ui_app import GOOD_MD, start, ui_env, upload, use_unreachable_server  # noqa: E402,F401

pytestmark = pytest.mark.usefixtures("ui_env")

EVIDENCE = "The launch code is BLUE-42."
PASSAGE = f"Field notes from the trip. {EVIDENCE} It is kept in the vault under the lighthouse."
OTHER = "Otters hold hands while sleeping so they do not drift apart."
SUPPORTED = "The launch code is BLUE-42 [1]."
UNSUPPORTED = "It was chosen by the king."
ANSWER_TEXT = f"{SUPPORTED} {UNSUPPORTED}"


def hit(chunk_id: str, text: str, source: str, page: int | None = None, score: float = 1.0) -> Hit:
    return Hit(Chunk(chunk_id, f"doc-{chunk_id}", text, source, page=page, page_end=page, section="Notes"), score)


def grounded_answer(question: str) -> Answer:
    cited, other = hit("c1", PASSAGE, "notes.md"), hit("c2", OTHER, "otters.txt", score=0.3)
    start = PASSAGE.index(EVIDENCE)
    citation = Citation(1, "c1", "doc-c1", "notes.md", None, "Notes", PASSAGE,
                        highlights=(Span(start, start + len(EVIDENCE), 0.9),))
    second = len(SUPPORTED) + 1
    return Answer(
        question, ANSWER_TEXT, (citation,), (cited, other), mode="grounded",
        sentences=(AnswerSentence(0, len(SUPPORTED), True, 0.9, (1,)),
                   AnswerSentence(second, second + len(UNSUPPORTED), False, 0.1, ())),
        unsupported=("The vault is made of cheese.",),
    )


def fake_stream(make_answer, pieces=None, seen=None):
    """A stand-in for RAG.stream: the answer text in pieces, then the Answer; records the call's overrides."""

    def stream(self, question, history=None, **kwargs):
        if seen is not None:  # the settings this question runs with, and on which knowledge-base handle
            for key in ("session", "conversation", "owner"):  # which conversation, not settings
                kwargs.pop(key, None)
            seen.append((id(self), self.settings.replace(**kwargs)))
        answer = make_answer(question)
        for piece in pieces if pieces is not None else re.findall(r"\S+\s*", answer.text):
            yield piece
        yield answer

    return stream


def assistant(at):
    return [cm for cm in at.chat_message if cm.name == "assistant"][-1]


def html_of(block) -> str:
    return "\n".join(m.value for m in block.markdown)


def asked(at, monkeypatch, make_answer, question="What is the launch code?", **kw):
    use_unreachable_server(at)  # no local model loads: the stand-in answers
    monkeypatch.setattr(RAG, "stream", fake_stream(make_answer, **kw))
    at.chat_input(key="question").set_value(question).run()
    assert not at.exception, [e.value for e in at.exception]
    return assistant(at)


def test_highlights_unsupported_marker_and_all_passages(monkeypatch):
    at = start()
    for rerun in (False, True):  # the streamed turn, then the same answer redrawn from the history
        if rerun:
            at.run()
            block = assistant(at)
        else:
            block = asked(at, monkeypatch, grounded_answer)
        shown = html_of(block)
        # the unsupported sentence is marked (⚠, titled span), the supported one is not
        marked = re.findall(
            r'<span class="hoprag-unsupported" title="not supported by the sources"[^>]*>([^<]*)</span>', shown)
        assert "⚠ " in marked and UNSUPPORTED in marked and not any("BLUE-42" in m for m in marked)
        assert "The launch code is BLUE-42 [1]." in shown
        # the cited passage with its evidence sentence in <mark>, expanded; the uncited one listed after it
        labels = [e.label for e in block.expander]
        assert labels[:3] == ["⚠ 1 sentence left out: not supported by the sources", "\\[1\\] notes\\.md · Notes",
                              "otters\\.txt · Notes"], labels
        source = block.expander[1]
        assert re.search(r"<mark[^>]*>The launch code is BLUE-42\.</mark>", html_of(source))
        assert "Field notes from the trip." in html_of(source) and "vault under the lighthouse" in html_of(source)
        assert OTHER in html_of(block.expander[2]) and "<mark" not in html_of(block.expander[2])
        assert [m.value for m in block.markdown if m.value in ("**Sources**", "**Also retrieved**")] == [
            "**Sources**", "**Also retrieved**"]
        assert "The vault is made of cheese." in html_of(block.expander[0])
        assert any("1 of 2 sentences supported" in c.value for c in block.caption)


def test_words_no_passage_has_are_underlined_in_a_supported_sentence(monkeypatch):
    text = "The secret launch code is BLUE-42 [1]."
    word = (text.index("secret"), text.index("secret") + len("secret"))

    def answer(question):
        citation = Citation(1, "c1", "doc-c1", "notes.md", None, "Notes", PASSAGE)
        return Answer(question, text, (citation,), (hit("c1", PASSAGE, "notes.md"),), mode="grounded",
                      sentences=(AnswerSentence(0, len(text), True, 0.8, (1,), (word,)),))

    shown = html_of(asked(at := start(), monkeypatch, answer))
    marked = re.findall(r'<span class="hoprag-unverified" title="not found in the cited passage"[^>]*>([^<]*)</span>',
                        shown)
    assert marked == ["secret"] and "hoprag-unsupported" not in shown
    assert any("1 word not found in the cited passage" in c.value for c in assistant(at).caption)


def test_abstained_answer_says_so_and_lists_the_nearest_passages(monkeypatch):
    said = ABSTAIN_UNKNOWN_TEXT.format(names="\u201cWorld*Cup\u201d")

    def abstained(question):
        return Answer(question, said, (),
                      (hit("c2", OTHER, "otters.txt"), hit("c1", PASSAGE, "notes.md")), mode="grounded",
                      abstained=True)

    block = asked(at := start(), monkeypatch, abstained, question="Who won the 1998 world cup?")
    assert [i.value for i in block.info] == [escape_markdown(said)]  # the answer's own reason, Markdown escaped
    assert "World\\*Cup" in block.info[0].value
    assert "**Nearest passages**" in [m.value for m in block.markdown]
    assert [e.label for e in block.expander][:2] == ["otters\\.txt · Notes", "notes\\.md · Notes"]
    assert not block.warning and not at.exception


def test_answer_markdown_renders_lists_code_and_tables(monkeypatch):
    text = ("Steps:\n\n1. Open the **vault**.\n2. Read `code.txt`.\n\n```\nprint('BLUE-42')\n\nexit()\n```\n\n"
            "| key | value |\n|---|---|\n| code | BLUE-42 |\n\nSee [the docs](https://example.org/docs).")

    block = asked(start(), monkeypatch, lambda q: Answer(q, text, (), (hit("c1", PASSAGE, "notes.md"),)))
    shown = block.markdown[0].value
    assert shown.startswith('<div class="hoprag-md">') and "\n" not in shown  # one raw block: nothing re-parsed
    for tag in ("<ol>", "<li>Open the <strong>vault</strong>.</li>", "<code>code.txt</code>", "<pre><code>",
                "print(&#39;BLUE-42&#39;)&#10;&#10;exit()", "<table>", "<th>key</th>", "<td>BLUE-42</td>",
                '<a href="https://example.org/docs" target="_blank" rel="noopener noreferrer nofollow">'):
        assert tag in shown.replace("'", "&#39;") or tag in shown, (tag, shown)


def test_model_and_document_markup_render_inert(monkeypatch):
    """Issue 16's Markdown safety test through the app: scripts, javascript: links and remote images stay inert."""
    evil = ('Click <script>alert(1)</script> [here](javascript:alert(1)) ![x](http://203.0.113.1/leak?q=secret) '
            '<img src=x onerror=alert(1)> <a href="javascript:alert(2)">a</a> [ok](https://example.org) [1]')

    def answer(question):
        c = Citation(1, "c1", "doc-c1", "trap.md", None, "", evil, highlights=(Span(0, 5, 1.0),))
        return Answer(question, evil, (c,), (hit("c1", evil, "trap.md"),))

    at = start()
    block = asked(at, monkeypatch, answer)
    for view in (block, (at.run(), assistant(at))[1]):  # streamed, then from the history
        everything = html_of(view) + "\n".join(html_of(e) for e in view.expander)
        tags = re.findall(r"<[a-zA-Z][^>]*>", everything)  # real elements (escaped markup is text: &lt;...)
        assert not [t for t in tags if re.match(r"<(script|img|iframe|object|embed|style)\b", t)], tags
        assert not [t for t in tags if re.search(r"\s(src|on\w+|srcset)\s*=", t)], tags
        hrefs = [h for t in tags for h in re.findall(r'href="([^"]*)"', t)]
        assert hrefs == ["https://example.org"], hrefs
        answer_html = view.markdown[0].value
        assert "[image&#58; x]" in answer_html and "http://203.0.113.1" not in answer_html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer_html  # shown as text, not run
        assert not at.get("html")


def test_mode_selector_and_length_are_per_question_overrides(monkeypatch):
    at = start()
    use_unreachable_server(at)
    assert at.selectbox(key="set_answer_mode").value == "auto"
    assert at.number_input(key="set_max_tokens").value == 16  # HOPRAG_MAX_NEW_TOKENS in ui_env
    at.selectbox(key="set_answer_mode").set_value("extractive")
    at.number_input(key="set_max_tokens").set_value(512)
    at.button(key="apply_settings").click().run()
    assert not at.error, [e.value for e in at.error]
    s = at.session_state.settings
    assert (s.answer_mode, s.max_new_tokens) == ("extractive", 512)
    assert any("extractive answers, at most 512 tokens" in c.value.replace("\\", "") for c in at.sidebar.caption)
    seen: list[tuple] = []
    monkeypatch.setattr(RAG, "stream", fake_stream(grounded_answer, seen=seen))
    at.chat_input(key="question").set_value("What is the launch code?").run()
    assert not at.exception, [e.value for e in at.exception]
    assert (seen[-1][1].answer_mode, seen[-1][1].max_new_tokens) == ("extractive", 512)
    # changed again: the same knowledge-base handle answers, with the new values as per-question overrides
    at.selectbox(key="set_answer_mode").set_value("grounded")
    at.number_input(key="set_max_tokens").set_value(0)
    at.button(key="apply_settings").click().run()
    at.chat_input(key="question").set_value("And where is it kept?").run()
    assert not at.exception, [e.value for e in at.exception]
    assert (seen[-1][1].answer_mode, seen[-1][1].max_new_tokens) == ("grounded", 0)
    assert seen[0][0] == seen[1][0]
    assert any("grounded answers, the engine's default length" in c.value.replace("\\", "")
               for c in at.sidebar.caption)


def test_streamed_text_is_rendered_then_replaced_by_the_final_answer(monkeypatch):
    """The stream shows growing safe Markdown; the final answer (which may differ: grounded drops sentences) wins."""
    block = asked(start(), monkeypatch, grounded_answer, pieces=["Draft **one**", " <b>raw</b>", " and more"])
    shown = [m.value for m in block.markdown]
    assert not any("Draft" in v for v in shown), shown  # the final text replaced the streamed draft in its slot
    assert UNSUPPORTED in shown[0] and shown[0].startswith('<div class="hoprag-md">')


def test_pdf_passage_page_view(monkeypatch, tmp_path):
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 6, "A first paragraph about nothing in particular, long enough to wrap onto two lines "
                         "of this narrow page.", new_x="LMARGIN", new_y="NEXT")
    pdf.add_page()
    pdf.multi_cell(0, 6, PASSAGE, new_x="LMARGIN", new_y="NEXT")
    path = tmp_path / "manual.pdf"
    pdf.output(str(path))

    def answer(question):
        start_ = PASSAGE.index(EVIDENCE)
        c = Citation(1, "c1", "doc-c1", str(path), 2, "", PASSAGE, highlights=(Span(start_, start_ + len(EVIDENCE)),))
        return Answer(question, SUPPORTED, (c,), (hit("c1", PASSAGE, str(path), page=2),), mode="extractive")

    at = start()
    block = asked(at, monkeypatch, answer)
    assert block.toggle[0].label == "Page view" and not at.get("image")
    block.toggle[0].set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    images = assistant(at).get("image")
    assert len(images) == 1
    assert images[0].captions == ["manual.pdf, page 2 (evidence highlighted)"]
