"""rag.ui_support: the UI's plain helpers (no Streamlit needed)."""

from __future__ import annotations

import pytest

from rag import Answer, Chunk, Citation, ConfigError, Hit, Settings, TraceStep
from rag.ui_support import (
    citation_label,
    escape_markdown,
    history_pairs,
    knowledge_bases,
    order_rows,
    query_overrides,
    rag_key,
    settings_from_form,
    step_detail,
    trace_rows,
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
