"""The public Python API: every RAG method on a real store, embedder and local LLM."""

from __future__ import annotations

from pathlib import Path

import pytest
from kb_fixture import KB_DOCS, OTTER_QUESTION, build_kb

import rag.pipeline
from rag import RAG, Answer, ConfigError, Document, Hit, IngestReport, Settings, StoreError
from rag.types import Usage


@pytest.fixture(scope="module")
def kb_settings(tmp_path_factory, embedder) -> Settings:
    # min_score=-1: keep unrelated passages too, so k is always filled from three documents
    return build_kb(tmp_path_factory.mktemp("api"), embedder, min_score=-1.0)


@pytest.fixture
def kb(kb_settings, embedder, engine):
    with RAG(kb_settings, embedder=embedder, engine=engine) as opened:
        yield opened


def test_open_takes_a_data_dir_and_settings(tmp_path):
    with RAG.open(tmp_path / "d", settings=Settings(kb="notes", top_k=2)) as r:
        assert r.settings.data_dir == str(tmp_path / "d")
        assert (r.settings.kb, r.settings.top_k) == ("notes", 2)
        assert r.documents() == []
    assert (tmp_path / "d" / "index" / "notes").is_dir()


def test_ingest_files_bytes_progress_and_report(make_rag):
    r = make_rag()
    calls: list[tuple[str, str, float]] = []
    report = r.ingest(
        [KB_DOCS / "otters.md", ("notes.txt", b"Hekla is a volcano in Iceland."), ("broken.pdf", b"%PDF-1.4 garbage")],
        progress=lambda *a: calls.append(a),
    )
    assert isinstance(report, IngestReport)
    assert [f.status for f in report.files] == ["added", "added", "failed"]
    assert report.partial and not report.ok and report.files[2].reason
    assert {c[1] for c in calls} >= {"parse", "embed", "done", "failed"}
    again = r.ingest([KB_DOCS / "otters.md"])
    assert [f.status for f in again.files] == ["unchanged"]
    assert report.to_dict()["files"][0]["status"] == "added"


def test_documents_and_delete(make_rag):
    r = make_rag()
    r.ingest([KB_DOCS])
    docs = r.documents()
    assert all(isinstance(d, Document) for d in docs)
    assert sorted(Path(d.source).name for d in docs) == ["bread.txt", "otters.md", "volcanoes.md"]
    otters = next(d for d in docs if d.source.endswith("otters.md"))
    removed = r.delete(otters.doc_id[:8])  # an id prefix is enough
    assert removed.doc_id == otters.doc_id
    assert len(r.documents()) == 2
    assert all("otter" not in h.chunk.text.lower() for h in r.retrieve(OTTER_QUESTION, k=5))
    with pytest.raises(StoreError, match="no document matches"):
        r.delete("otters.md")


def test_retrieve_k_and_filters(kb):
    hits = kb.retrieve(OTTER_QUESTION, k=2)
    assert len(hits) == 2 and all(isinstance(h, Hit) for h in hits)
    assert hits[0].chunk.source.endswith("otters.md")
    bread = next(d for d in kb.documents() if d.source.endswith("bread.txt"))
    only = kb.retrieve(OTTER_QUESTION, k=3, filters={"doc_id": bread.doc_id})
    assert only and {h.chunk.doc_id for h in only} == {bread.doc_id}
    with pytest.raises(ConfigError, match="unknown filter"):
        kb.retrieve(OTTER_QUESTION, filters={"author": "x"})
    with pytest.raises(ConfigError, match="empty"):
        kb.retrieve("  ")


def test_ask_returns_text_citations_trace_timings(kb):
    answer = kb.ask(OTTER_QUESTION, history=[("Where do sea otters live?", "In the northern Pacific [1].")],
                    max_new_tokens=6, top_k=1)
    assert isinstance(answer, Answer) and not answer.error
    assert answer.text.strip()
    assert answer.citations and answer.citations[0].source.endswith(".md")
    assert len(answer.passages) == 1
    assert [s.name for s in answer.trace.steps][-1] == "generate"
    assert {"retrieve_s", "ttft_s", "total_s"} <= set(answer.timings)
    assert 0 < answer.usage.completion_tokens <= 6


def test_stream_yields_text_then_the_answer(kb):
    items = list(kb.stream(OTTER_QUESTION, max_new_tokens=4, top_k=1))
    *pieces, last = items
    assert pieces and all(isinstance(p, str) for p in pieces)
    assert isinstance(last, Answer) and last.passages[0].chunk.source.endswith("otters.md")


def test_ask_on_an_empty_knowledge_base_says_so(make_rag):
    answer = make_rag().ask("anything?")
    assert "empty" in answer.text and not answer.citations


class _SpyEngine:
    name = "spy"
    takes_messages = False
    default_max_tokens = 96

    def __init__(self) -> None:
        self.closed = False

    def stream(self, prompt, **kwargs):
        yield "Stones crack shells [1]."
        yield Usage(prompt_tokens=10, completion_tokens=5)

    def close(self) -> None:
        self.closed = True


def test_context_manager_closes_only_engines_it_created(monkeypatch, settings, embedder):
    created = _SpyEngine()
    monkeypatch.setattr(rag.pipeline, "make_engine", lambda s: created)
    with RAG(settings, embedder=embedder) as r:
        r.ingest([KB_DOCS / "otters.md"])
        assert r.ask(OTTER_QUESTION).text == "Stones crack shells [1]."
    assert created.closed
    injected = _SpyEngine()
    with RAG(settings, embedder=embedder, engine=injected) as r:
        r.ask(OTTER_QUESTION)
    assert not injected.closed
