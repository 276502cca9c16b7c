"""rag.client.Client: the RAG methods over HTTP, against a real uvicorn server with the real embedder and LLM."""

from __future__ import annotations

from pathlib import Path

import pytest
from kb_fixture import KB_DOCS, OTTER_QUESTION
from servers import serving_app

from rag import RAG, Answer, ConfigError, Document, Hit, IngestReport, Settings, StoreError
from rag.client import Client, ServerError
from rag.server import create_app

KEY = "client-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder, engine):
    settings = Settings(data_dir=str(tmp_path_factory.mktemp("client")), max_new_tokens=8, top_k=2)
    with RAG(settings, embedder=embedder, engine=engine) as rag, serving_app(create_app(rag, api_key=KEY)) as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    with Client(server.removesuffix("/v1"), api_key=KEY) as c:
        yield c


def test_ingest_documents_delete_like_rag(client):
    seen: list[tuple[str, str, float]] = []
    report = client.ingest([KB_DOCS / "otters.md", ("notes.txt", b"Hekla is a volcano in Iceland.")],
                           progress=lambda *a: seen.append(a))
    assert isinstance(report, IngestReport) and report.ok
    assert [(f.source, f.status) for f in report.files] == [("otters.md", "added"), ("notes.txt", "added")]
    assert all(f.chunks >= 1 and f.doc_id for f in report.files)
    assert seen and seen[-1][1] in ("done", "added")
    docs = client.documents()
    assert all(isinstance(d, Document) for d in docs) and {d.source for d in docs} == {"otters.md", "notes.txt"}
    assert client.ingest([KB_DOCS / "otters.md"]).files[0].status == "unchanged"
    removed = client.delete("notes.txt")
    assert removed.source == "notes.txt" and [d.source for d in client.documents()] == ["otters.md"]
    with pytest.raises(StoreError, match="no document matches"):
        client.delete("notes.txt")


def test_retrieve_ask_and_stream_like_rag(client):
    client.ingest([KB_DOCS])
    hits = client.retrieve(OTTER_QUESTION, k=1)
    assert len(hits) == 1 and isinstance(hits[0], Hit) and hits[0].chunk.source.endswith("otters.md")
    assert "stones" in hits[0].chunk.text
    answer = client.ask(OTTER_QUESTION, top_k=1, answer_mode="extractive")
    assert isinstance(answer, Answer) and answer.mode == "extractive"
    assert answer.passages[0].chunk.source.endswith("otters.md")
    assert answer.abstained or answer.citations[0].highlights  # the evidence comes back structured
    assert any(s.name == "evidence" for s in answer.trace.steps)
    items = list(client.stream(OTTER_QUESTION, [("Where do otters live?", "In the Pacific [1].")], session="s1",
                               answer_mode="generative", max_new_tokens=4))
    final = items[-1]
    assert isinstance(final, Answer) and all(isinstance(i, str) for i in items[:-1])
    assert "".join(items[:-1]).strip() == final.text or final.error
    assert final.passages and final.question == OTTER_QUESTION and final.usage.prompt_tokens > 0
    assert final.usage.completion_tokens <= 4


def test_errors_are_hoprag_errors(client, server):
    with pytest.raises(ConfigError, match="question is empty"):
        client.ask("   ")
    with pytest.raises(ConfigError, match="takes no override"):
        client.ask("hi", reranker="icr")
    with pytest.raises(ServerError) as err:
        Client(server, api_key="wrong").documents()
    assert err.value.status == 401 and err.value.code == "invalid_api_key"
    with pytest.raises(ServerError, match="does not exist") as err:
        Client(server, api_key=KEY, kb="nope").documents()
    assert err.value.status == 404


def test_same_code_in_process_and_over_http(client, tmp_path, embedder):
    """The one-line switch: a function written against RAG runs unchanged against the Client."""

    def workflow(kb) -> tuple[str, str]:
        kb.ingest([KB_DOCS / "volcanoes.md"])
        hit = kb.retrieve("Which volcano erupted in 2010?", k=1)[0]
        return Path(hit.chunk.source).name, kb.documents()[0].source

    with RAG(Settings(data_dir=str(tmp_path)), embedder=embedder) as local:
        name, _ = workflow(local)
    assert name == "volcanoes.md"
    assert workflow(client)[0] == "volcanoes.md"
