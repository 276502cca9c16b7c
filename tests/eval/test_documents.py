"""Document-style dataset helpers: answer normalisation (punctuation kept) and page hits of multi-page chunks."""

from __future__ import annotations

import json

import pytest

from rag.errors import ConfigError
from rag.eval.documents import (
    DocQuestion,
    answer_in_passages,
    is_document_dataset,
    load_document_dataset,
    normalize_text,
    page_hit,
    text_has_answer,
)
from rag.types import Chunk, Hit


def _hit(text, page=None, page_end=None, source="/x/octave.pdf"):
    return Hit(Chunk("c", "d", text, source, page=page, page_end=page_end), 1.0)


def test_normalisation_keeps_punctuation():
    assert normalize_text("  Input (Prompt,\n \"s\")  ") == 'input (prompt, "s")'
    assert text_has_answer('Use ans = input (prompt,\n"s") to read text.', ['input (prompt, "s")'])
    assert text_has_answer("enclose it in %{ and %}", ["%{"])
    assert not text_has_answer("input (prompt) only", ['input (prompt, "s")'])
    assert not text_has_answer("anything", [""])


def test_page_hit_counts_chunks_spanning_a_gold_page():
    q = DocQuestion("q", "?", "octave.pdf", (33,), "--quiet")
    assert page_hit([_hit("a", 32, 33)], q)
    assert not page_hit([_hit("a", 31, 32)], q)
    assert not page_hit([_hit("a", 33, 33, source="/x/other.pdf")], q)
    assert not page_hit([_hit("a", 40), _hit("b", 33)], q, k=1)
    assert answer_in_passages([_hit("no"), _hit("run with --QUIET")], q.answers)
    assert not answer_in_passages([_hit("no"), _hit("run with --quiet")], q.answers, k=1)


def test_loading_checks_fields_and_files(tmp_path):
    (tmp_path / "questions.json").write_text(json.dumps([{"question": "?", "file": "a.pdf", "answer": "x"}]))
    assert is_document_dataset(tmp_path)
    with pytest.raises(ConfigError, match="lacks a.pdf"):
        load_document_dataset(tmp_path, tmp_path)
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4")
    ds = load_document_dataset(tmp_path, tmp_path)
    assert ds.questions[0].pages == () and ds.questions[0].id == "q1"
    (tmp_path / "questions.json").write_text(json.dumps([{"question": "?"}]))
    with pytest.raises(ConfigError, match="needs 'question', 'file', 'answer' and 'pages'"):
        load_document_dataset(tmp_path, tmp_path)
