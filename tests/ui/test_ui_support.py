"""rag.ui_support: the UI's plain helpers (no Streamlit needed)."""

from __future__ import annotations

import pytest

from rag import Answer, Chunk, Citation, ConfigError, Hit, Settings, TraceStep
from rag.types import AnswerSentence, Span
from rag.ui_support import (
    QUERY_FIELDS,
    SourceItem,
    citation_label,
    escape_markdown,
    history_pairs,
    knowledge_bases,
    mode_note,
    order_rows,
    page_view,
    pdf_file,
    query_overrides,
    rag_key,
    settings_from_form,
    source_items,
    step_detail,
    trace_rows,
    unsupported_ranges,
    unverified_ranges,
)


def test_escape_markdown_shows_markup_literally():
    text = "<b>hi</b> **x** [a](javascript:1) `c` $y$ :red[z]"
    out = escape_markdown(text)
    assert "<" not in out.replace("\\<", "") and "**" not in out and "](" not in out
    assert out.replace("\\", "") == text


def test_citation_label_names_document_page_and_section():
    c = Citation(2, "c1", "d1", "/docs/guide_v2.pdf", 7, "Install", "text")
    assert citation_label(c) == "\\[2\\] guide\\_v2\\.pdf · page 7 · Install"


def test_trace_rows_mix_pages_and_missing_chunks():
    hits = [Hit(Chunk("a", "d", "t", "x.pdf", page=3), 0.9), Hit(Chunk("b", "d", "t", "y.md"), 0.5)]
    step = TraceStep("dense", "q", (("a", 0.9), ("b", 0.5), ("gone", 0.1)))
    rows = trace_rows(step, hits)
    assert [r["page"] for r in rows] == [3, None, None]
    assert [r["document"] for r in rows] == ["x.pdf", "y.md", ""]
    assert order_rows([("b", 0.7), "a"], hits)[1] == {"rank": 2, "score": None, "document": "x.pdf", "chunk": "a"}
    rerank = TraceStep("rerank:listwise", "q", (), detail={"before": ["a", "b"], "after": ["b", "a"],
                                                           "scores": {"a": 0.2, "b": 0.8}, "reranker": "listwise"})
    order, rest = step_detail(rerank)
    assert rest == {"reranker": "listwise"}
    assert [(r["chunk"], r["score"]) for r in order_rows(order["after"], hits, order["scores"])] == [
        ("b", 0.8), ("a", 0.2)]


def test_settings_form_validates_and_query_fields_are_overrides(tmp_path):
    base = Settings(data_dir=str(tmp_path))
    form = dict(engine="local", llm_base_url="", llm_model="", top_k=3, strategy="hybrid", hops=2,
                reranker="none", kv_cache=False)
    new = settings_from_form(base, **form)
    assert query_overrides(base, new) == {"strategy": "hybrid", "top_k": 3}
    assert rag_key(base) != rag_key(new)  # kv_cache belongs to the engine, not to one question
    assert rag_key(base) == rag_key(base.replace(top_k=9))
    with pytest.raises(ConfigError, match="needs HOPRAG_LLM_BASE_URL"):
        settings_from_form(base, **{**form, "engine": "openai"})
    with pytest.raises(ConfigError, match="strategy='nope' is not allowed"):
        settings_from_form(base, **{**form, "strategy": "nope"})
    # the answer mode and length are per-question settings: no new handle, passed as overrides
    asked = settings_from_form(base, **form, answer_mode="extractive", max_new_tokens=512)
    assert {"answer_mode", "max_new_tokens"} <= QUERY_FIELDS and rag_key(asked) == rag_key(new)
    assert query_overrides(new, asked) == {"answer_mode": "extractive", "max_new_tokens": 512}
    with pytest.raises(ConfigError, match="answer_mode"):
        settings_from_form(base, **form, answer_mode="poetic")
    with pytest.raises(ConfigError, match="max_new_tokens"):
        settings_from_form(base, **form, max_new_tokens=-1)


def test_knowledge_bases_lists_manifests(tmp_path):
    s = Settings(data_dir=str(tmp_path), kb="fresh")
    for name in ("default", "papers"):
        (s.index_dir / name).mkdir(parents=True)
        (s.index_dir / name / "manifest.sqlite").touch()
    (s.index_dir / "chroma").mkdir()
    assert knowledge_bases(s) == ["default", "fresh", "papers"]


def test_history_pairs_skip_failed_turns():
    ok, failed = Answer("q1", "a1", ()), Answer("q2", "", (), error="down")
    messages = [{"role": "user", "text": "q1"}, {"role": "assistant", "answer": ok},
                {"role": "user", "text": "q2"}, {"role": "assistant", "answer": failed}]
    assert history_pairs(messages) == [("q1", "a1")]


def _hit(chunk_id, source, page=None, page_end=None, text="passage text"):
    return Hit(Chunk(chunk_id, "d-" + chunk_id, text, source, page=page, page_end=page_end), 0.5)


def test_source_items_list_cited_passages_first_then_the_rest():
    hits = (_hit("a", "a.md"), _hit("b", "b.pdf", 4, 5), _hit("c", "c.md"), _hit("b", "b.pdf", 4, 5))
    cited = (Citation(2, "c", "d-c", "c.md", None, "", "passage text", highlights=(Span(0, 7),)),
             Citation(1, "b", "d-b", "b.pdf", 4, "", "passage text"))
    items = source_items(Answer("q", "text [1] [2]", cited, hits))
    assert [(i.citation.number, i.citation.chunk_id, i.cited) for i in items] == [
        (1, "b", True), (2, "c", True), (0, "a", False)]
    assert items[0].page_end == 5 and items[1].citation.highlights == (Span(0, 7),)
    assert citation_label(items[2].citation) == "a\\.md"  # no [n] for an uncited passage
    assert source_items(Answer("q", "", ())) == []


def test_mode_note_and_unsupported_ranges():
    sentences = (AnswerSentence(0, 5, True), AnswerSentence(6, 12, False), AnswerSentence(13, 20, False))
    grounded = Answer("q", "x" * 20, (), mode="grounded", sentences=sentences, unsupported=("gone.",))
    assert unsupported_ranges(grounded) == [(6, 12), (13, 20)]
    assert mode_note(grounded) == (
        "Checked against the sources: 1 of 3 sentences supported; 1 unsupported sentence left out.")
    words = (AnswerSentence(0, 5, True, unverified=((1, 3),)), AnswerSentence(6, 12, False, unverified=((7, 9),)))
    partly = Answer("q", "x" * 12, (), mode="grounded", sentences=words)
    assert unverified_ranges(partly) == [(1, 3)]  # an unsupported sentence is marked whole instead
    assert mode_note(partly).endswith("; 1 word not found in the cited passage (dotted underline).")
    assert mode_note(Answer("q", "quote", (), mode="extractive")).startswith("Quoted from the sources")
    assert "not checked" in mode_note(Answer("q", "text", (), mode="generative"))
    assert mode_note(Answer("q", "", (), mode="grounded", abstained=True)) == ""
    assert mode_note(Answer("q", "", (), error="down")) == ""


def test_pdf_file_prefers_the_stored_copy(tmp_path):
    ingested = tmp_path / "manual.pdf"
    ingested.write_bytes(b"%PDF-1.4")
    kept = tmp_path / "kept" / "d1.pdf"
    kept.parent.mkdir()
    kept.write_bytes(b"%PDF-1.4")

    class Plain:  # a knowledge base without stored copies
        pass

    class Keeps:
        def original(self, doc_id):
            return kept if doc_id == "d1" else None

    assert pdf_file(Plain(), "d1", str(ingested)) == ingested
    assert pdf_file(Keeps(), "d1", "manual.pdf") == kept  # an upload: only the stored copy exists
    assert pdf_file(Keeps(), "d2", str(ingested)) == ingested
    assert pdf_file(Plain(), "d1", "manual.pdf") is None  # a bare upload name is no path on this machine
    assert pdf_file(Plain(), "d1", str(tmp_path / "gone.pdf")) is None
    notes = tmp_path / "notes.md"
    notes.write_text("x")
    assert pdf_file(Plain(), "d1", str(notes)) is None


def test_page_view_uses_placed_boxes_or_locates_the_sentence(tmp_path):
    fpdf = pytest.importorskip("fpdf")
    pdf = fpdf.FPDF(format="A4")
    pdf.set_font("helvetica", size=12)
    for text in ("First page text.", "Second page. The launch code is BLUE-42, kept in the vault."):
        pdf.add_page()
        pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    path = tmp_path / "m.pdf"
    pdf.output(str(path))
    text = "Second page. The launch code is BLUE-42, kept in the vault."
    span = Span(13, len(text))
    c = Citation(1, "c", "d", str(path), 1, "", text, highlights=(span,))
    page, boxes = page_view(SourceItem(c, True, 2), path)  # located now: the chunk spans pages 1-2
    assert page == 2 and len(boxes) == 1
    placed = Span(13, len(text), page=2, boxes=((1.0, 2.0, 3.0, 4.0),))
    c_placed = Citation(1, "c", "d", str(path), 1, "", text, highlights=(placed,))
    assert page_view(SourceItem(c_placed, True, 2), path) == (2, ((1.0, 2.0, 3.0, 4.0),))
    nothing = Citation(1, "c", "d", str(path), 1, "", "never said", highlights=(Span(0, 10),))
    assert page_view(SourceItem(nothing, True, 2), path) == (1, ())  # the chunk's page, nothing boxed
    assert page_view(SourceItem(Citation(1, "c", "d", str(path), None, "", text), True), path) is None
