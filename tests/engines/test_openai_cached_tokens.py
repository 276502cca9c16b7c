"""Reading cached prompt tokens from the two reply shapes servers use, over real HTTP on loopback.

llama.cpp's ``llama-server`` puts ``timings.cache_n`` in its last streamed
chunk; vLLM (and OpenAI) put ``usage.prompt_tokens_details.cached_tokens``.
The stand-in server replays those chunks verbatim; the client, streaming and
parsing are the real ones.
"""

from __future__ import annotations

import pytest
from fakes import sse_server as serve_sse

from rag.engines.base import generate
from rag.engines.openai_compat import OpenAICompatEngine

LLAMA_SERVER_LAST = {
    "choices": [{"finish_reason": "stop", "index": 0, "text": ""}],
    "usage": {"completion_tokens": 2, "prompt_tokens": 120, "total_tokens": 122},
    "timings": {"cache_n": 96, "prompt_n": 24, "prompt_ms": 80.0, "predicted_n": 2},
}
VLLM_LAST = {
    "choices": [],
    "usage": {"completion_tokens": 2, "prompt_tokens": 120, "total_tokens": 122,
              "prompt_tokens_details": {"cached_tokens": 112}},
}


@pytest.fixture
def sse_server():
    state: dict = {"last": None}

    def reply(body: dict) -> list[dict]:
        base = {"id": "x", "object": "text_completion", "created": 0, "model": "m"}
        chunks = [{**base, "choices": [{"index": 0, "text": t, "finish_reason": None}]} for t in ("Rock", "s.")]
        return [*chunks, {**base, **state["last"]}]

    with serve_sse(reply) as (url, bodies):
        state["bodies"] = bodies
        yield url, state


@pytest.mark.parametrize("last, cached", [(LLAMA_SERVER_LAST, 96), (VLLM_LAST, 112)])
def test_cached_tokens_are_read_from_the_server_reply(sse_server, last, cached):
    url, state = sse_server
    state["last"] = last
    engine = OpenAICompatEngine(url, "m", api="completions")
    text, usage = generate(engine, "prompt", max_tokens=4, session="conv-a")
    generate(engine, "prompt 2", max_tokens=4, session="conv-a")
    engine.close()
    assert text == "Rocks."
    assert (usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens) == (120, cached, 2)
    # llama.cpp hints: reuse the slot's prompt cache, one conversation on one slot.
    first, second = state["bodies"]
    assert first["cache_prompt"] is True and first["id_slot"] == second["id_slot"]
