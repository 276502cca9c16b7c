"""The OpenAI-compatible endpoint, driven by the official ``openai`` client over a real uvicorn server."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Iterator

import httpx
import openai
import pytest
import uvicorn
from kb_fixture import KB_DOCS, OTTER_QUESTION, build_kb

from rag import RAG, EngineUnavailable, Settings
from rag.server import ChatRequest, conversation, create_app
from rag.types import Usage

KEY = "test-key-123"
MODEL = "hoprag-default"


@contextmanager
def serving(app) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port; yields the /v1 base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory, embedder, engine):
    settings = build_kb(tmp_path_factory.mktemp("server"), embedder, max_new_tokens=12, top_k=2)
    with RAG(settings, embedder=embedder, engine=engine) as rag, serving(create_app(rag, api_key=KEY)) as url:
        yield SimpleNamespace(url=url, rag=rag)


@pytest.fixture
def client(served) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.url, api_key=KEY, max_retries=0, timeout=120)


def test_models_lists_the_knowledge_base(client):
    assert [m.id for m in client.models.list()] == [MODEL]


def test_chat_completion_cites_sources_in_text_and_field(client):
    resp = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "ignored"}, {"role": "user", "content": OTTER_QUESTION}],
        max_tokens=6,
    )
    content = resp.choices[0].message.content
    sources = resp.model_extra["sources"]
    assert resp.object == "chat.completion" and resp.choices[0].finish_reason in ("stop", "length")
    assert sources and sources[0]["source"].endswith("otters.md") and sources[0]["text"]
    assert "\n\nSources:\n[" in content and "otters.md" in content.split("Sources:")[1]
    assert 0 < resp.usage.completion_tokens <= 6 and resp.usage.prompt_tokens > 0


def test_streaming_sends_deltas_then_sources(client):
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": [{"type": "text", "text": OTTER_QUESTION}]}],
        stream=True,
        max_tokens=6,
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    middle = [c for c in chunks[1:-1] if c.choices[0].delta.content]
    assert middle, "no token deltas were streamed"
    last = chunks[-1]
    assert last.choices[0].finish_reason in ("stop", "length")
    assert last.model_extra["sources"][0]["source"].endswith(".md")
    assert "\n\nSources:\n[" in text
    assert all(c.id == chunks[0].id and c.object == "chat.completion.chunk" for c in chunks)


def test_api_key_is_required(served):
    bad = openai.OpenAI(base_url=served.url, api_key="wrong", max_retries=0, timeout=30)
    with pytest.raises(openai.AuthenticationError) as err:
        bad.models.list()
    assert err.value.status_code == 401 and "API key" in err.value.body["message"]
    missing = httpx.post(f"{served.url}/chat/completions", json={"model": MODEL, "messages": []}, timeout=30)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(served.url.removesuffix("/v1") + "/health", timeout=30).json() == {"status": "ok"}


def test_unknown_model_and_bad_requests_are_openai_errors(client):
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="last message"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "assistant", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="question is empty"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "   "}])
    with pytest.raises(openai.BadRequestError, match="unknown filter"):
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], extra_body={"filters": {"author": "x"}}
        )


def test_filters_extension_restricts_sources(client, served):
    bread = next(d.doc_id for d in served.rag.documents() if d.source.endswith("bread.txt"))
    resp = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": OTTER_QUESTION}],
        max_tokens=1,
        extra_body={"top_k": 1, "filters": {"doc_id": bread}},
    )
    assert all(s["doc_id"] == bread for s in resp.model_extra["sources"])


def test_conversation_pairs_turns_and_strips_sources():
    req = ChatRequest.model_validate(
        {
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "be nice"},
                {"role": "user", "content": "q1"},
                {"role": "assistant", "content": "a1 [1]\n\nSources:\n[1] x.md"},
                {"role": "user", "content": "q2"},
                {"role": "user", "content": "q3"},
            ],
        }
    )
    assert conversation(req.messages) == ("q3", [("q1", "a1 [1]"), ("q2", "")])


class _DownEngine:
    name = "down"
    takes_messages = False
    default_max_tokens = 96

    def stream(self, prompt, **kwargs):
        raise EngineUnavailable("LLM server http://127.0.0.1:9/v1 is unreachable")
        yield  # a generator, like real engines

    def close(self) -> None:
        pass


def test_without_generation_the_whole_message_comes_at_the_end(tmp_path, embedder):
    """Empty knowledge base, then LLM down: nothing streams, the last chunk says why (with sources)."""
    with RAG(Settings(data_dir=str(tmp_path)), embedder=embedder, engine=_DownEngine()) as rag, \
            serving(create_app(rag, model="kb")) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=60)
        ask = [{"role": "user", "content": OTTER_QUESTION}]
        empty = list(client.chat.completions.create(model="kb", messages=ask, stream=True))
        assert "knowledge base is empty" in empty[-1].choices[0].delta.content
        assert empty[-1].model_extra["sources"] == []
        rag.ingest([KB_DOCS / "otters.md"])
        down = client.chat.completions.create(model="kb", messages=ask)
        content = down.choices[0].message.content
        assert content.startswith("(no generated answer: LLM server") and "[1] otters.md" in content
        assert down.model_extra["sources"][0]["inferred"] is True


class _ThreadRecordingEngine:
    """Streams slowly and records which thread runs each step (the local engine's lock needs one)."""

    name = "recording"
    takes_messages = False
    default_max_tokens = 96

    def __init__(self) -> None:
        self.threads: list[set[int]] = []

    def stream(self, prompt, **kwargs):
        seen: set[int] = set()
        self.threads.append(seen)
        for word in ["Stones ", "crack ", "shells ", "[1]", "."] * 4:
            seen.add(threading.get_ident())
            time.sleep(0.01)
            yield word
        seen.add(threading.get_ident())
        yield Usage(prompt_tokens=5, completion_tokens=20)

    def close(self) -> None:
        pass


def test_each_stream_is_generated_by_one_thread(tmp_path, embedder):
    engine = _ThreadRecordingEngine()
    with RAG(Settings(data_dir=str(tmp_path)), embedder=embedder, engine=engine) as rag, \
            serving(create_app(rag, model="kb")) as url:
        rag.ingest([KB_DOCS / "otters.md"])
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=60)

        def one() -> str:
            chunks = client.chat.completions.create(
                model="kb", messages=[{"role": "user", "content": OTTER_QUESTION}], stream=True
            )
            return "".join(c.choices[0].delta.content or "" for c in chunks)

        with ThreadPoolExecutor(4) as pool:
            texts = list(pool.map(lambda _: one(), range(4)))
    assert all(t.startswith("Stones crack shells [1].") for t in texts)
    assert len(engine.threads) == 4 and all(len(t) == 1 for t in engine.threads), engine.threads
