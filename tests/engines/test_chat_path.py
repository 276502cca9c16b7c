"""The chat-model path end to end through ``RAG.ask``: a scripted OpenAI-compatible server on loopback
replying with multi-paragraph Markdown, and the real llama.cpp server in chat mode.

What must hold for a chat model: the whole reply comes through (no newline stop),
the request is system rules + passages and question in the user turn with the
history after them, the system message and passages block are byte-identical
between two turns (so a server's prefix cache keeps hitting), the length is the
server default (1024) unless set, and citations anywhere in the reply are found.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from fakes import sse_server
from kb_fixture import OTTER_QUESTION, build_kb
from servers import free_port, serving

from rag import RAG
from rag.engines.openai_compat import OpenAICompatEngine
from rag.prompts import load_prompt

REPLY = """Sea otters use stones as tools.

They crack open shellfish by hammering them against a stone held on the chest [1].

How they do it:

- float on their back
- put the stone on the chest
- strike the shell until it opens [1, 7]

```python
shells[3] = "open"  # code, not a citation
```

| step | what |
|------|------|
| 1 | dive |
"""


@pytest.fixture(scope="module")
def kb(tmp_path_factory, embedder):
    return build_kb(tmp_path_factory.mktemp("chat"), embedder, top_k=2)


@pytest.fixture
def markdown_server():
    """An OpenAI-compatible chat server that streams REPLY in small pieces and records each request."""

    def reply(body: dict) -> list[dict]:
        base = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
        pieces = [REPLY[i : i + 7] for i in range(0, len(REPLY), 7)]
        chunks = [{**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces]
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        usage = {"prompt_tokens": 300, "completion_tokens": 90, "total_tokens": 390}
        return [*chunks, {**base, "choices": [], "usage": usage}]

    with sse_server(reply) as served:
        yield served


def _passages_block(user_content: str) -> str:
    return user_content[: user_content.rindex("Question:")]


def test_multi_paragraph_markdown_comes_through_whole_with_its_citations(kb, embedder, markdown_server):
    url, bodies = markdown_server
    engine = OpenAICompatEngine(url, "chat-model", api="chat")
    with RAG(kb, embedder=embedder, engine=engine) as rag:
        first = rag.ask(OTTER_QUESTION, session="s", answer_mode="generative")
        second = rag.ask("And how do they open them?", [(OTTER_QUESTION, first.text)], session="s",
                         answer_mode="generative")
    engine.close()
    for answer in (first, second):
        assert not answer.error
        # Every paragraph, the list, the code block and the table ([7] is no passage: dropped).
        assert answer.text == REPLY.strip().replace("[1, 7]", "[1]")
        # [1] is first cited in the second paragraph; shells[3] in the code is no citation.
        assert [c.number for c in answer.citations] == [1] and not answer.citations[0].inferred
        assert answer.citations[0].chunk_id == answer.passages[0].chunk.id and "otters" in answer.citations[0].source
        assert 'shells[3] = "open"' in answer.text
    one, two = bodies
    for body in bodies:
        assert "stop" not in body and body["max_tokens"] == 1024 and body["stream"] is True
    # Turn 1: system rules, then the passages and the question in the user turn.
    assert [m["role"] for m in one["messages"]] == ["system", "user"]
    assert one["messages"][0]["content"] == load_prompt("answer_chat_system").strip()
    assert one["messages"][1]["content"].endswith(f"Question: {OTTER_QUESTION}")
    assert "[1] otters.md" in one["messages"][1]["content"]
    # Turn 2: the first turn's messages unchanged (system + passages byte-identical), then the history.
    assert [m["role"] for m in two["messages"]] == ["system", "user", "assistant", "user"]
    assert two["messages"][0] == one["messages"][0]
    assert _passages_block(two["messages"][1]["content"]).startswith(_passages_block(one["messages"][1]["content"]))
    assert two["messages"][2]["content"] == first.text and two["messages"][3]["content"] == "And how do they open them?"
    # An explicit length goes to the server as asked.
    with RAG(kb, embedder=embedder, engine=OpenAICompatEngine(url, "chat-model", api="chat")) as rag:
        rag.ask(OTTER_QUESTION, answer_mode="generative", max_new_tokens=200)
    assert bodies[-1]["max_tokens"] == 200


def test_completions_endpoint_keeps_the_one_line_base_model_prompt(kb, embedder, markdown_server):
    """``llm_api=completions`` is a raw completion: the base-model prompt with its newline stops."""
    from rag.engines.base import effective_max_tokens
    from rag.generate import STOP, answer_request

    engine = OpenAICompatEngine("http://127.0.0.1:9/v1", "m", api="completions")  # never contacted
    request = answer_request(engine, OTTER_QUESTION, [], (), kb)
    assert request.stop == STOP and request.prompt.text.rstrip().endswith("Answer:")
    assert request.max_tokens == effective_max_tokens(engine, 0) == 1024


# ---- the real llama.cpp server, chat endpoint ------------------------------------------------


@pytest.fixture(scope="module")
def llama_chat_server(base_settings, tmp_path_factory):
    """``python -m llama_cpp.server`` serving the Gemma GGUF on a free loopback port (chat template from the GGUF)."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed: `make install` builds it (extra `server`)")
    from rag.models import gguf_file

    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-chat") / "server.log"
    base = f"http://127.0.0.1:{port}"
    with serving(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_file(base_settings.models_dir)),
         "--model_alias", "gemma", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
         "--n_threads", "2", "--verbose", "True"],
        ready_url=base + "/v1/models", log_path=log_path, timeout_s=180, what="llama.cpp server",
    ):
        yield base + "/v1", log_path


class RecordingChatEngine(OpenAICompatEngine):
    """The real engine, keeping the raw streamed text of each reply."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.raw: list[str] = []

    def stream(self, prompt, **kwargs):
        pieces: list[str] = []
        self.raw.append("")
        for item in super().stream(prompt, **kwargs):
            if isinstance(item, str):
                pieces.append(item)
                self.raw[-1] = "".join(pieces)
            yield item


@pytest.mark.slow
def test_real_llama_cpp_chat_server_gives_the_whole_answer_and_reuses_the_prefix(kb, embedder, llama_chat_server):
    url, log_path = llama_chat_server
    engine = RecordingChatEngine(url, "gemma", api="chat", timeout_s=300)
    with RAG(kb, embedder=embedder, engine=engine) as rag:
        first = rag.ask(OTTER_QUESTION, session="c", answer_mode="generative", max_new_tokens=48)
        before = len(Path(log_path).read_text())
        second = rag.ask("Where do they keep the stone?", [(OTTER_QUESTION, first.text)], session="c",
                         answer_mode="generative", max_new_tokens=48)
    engine.close()
    for answer, raw in zip((first, second), engine.raw):
        assert not answer.error and raw.strip()
        # Nothing is cut: the answer is the whole reply (citation markers normalised only).
        assert re.sub(r"\[[\d, ]+\]", "", answer.text) == re.sub(r"\[[\d, ]+\]", "", raw).strip()
        assert answer.usage.completion_tokens <= 48
    # The follow-up's prompt starts with the first turn's whole prompt: the server reuses it.
    hits = [int(n) for n in re.findall(r"Llama\.generate: (\d+) prefix-match hit", Path(log_path).read_text()[before:])]
    assert hits and hits[-1] > 150, Path(log_path).read_text()[before:][-2000:]
