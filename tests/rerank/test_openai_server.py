"""pointwise and first through the OpenAI client against a real HTTP server on loopback.

The server speaks the OpenAI ``/v1/completions`` and ``/v1/chat/completions``
formats with ``top_logprobs`` computed by the real local model, so the request
and response path of :class:`OpenAICompatEngine` is exercised end to end.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

import pytest

from fakes import loopback_http
from rag.config import Settings
from rag.engines.openai_compat import OpenAICompatEngine
from rag.errors import EngineUnavailable
from rag.rerank import make_reranker
from tests.rerank.conftest import QUERY, RELEVANT


def _top_logprobs(engine, prompt: str, n: int) -> list[tuple[str, float]]:
    torch = engine.torch
    with engine.lock, torch.inference_mode():
        out = engine.model(input_ids=torch.tensor([engine.encode(prompt)]), logits_to_keep=1)
        logp = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        values, ids = torch.topk(logp, n)
    return [(engine.tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, ids)]


@pytest.fixture
def server(engine):
    requests: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append({"path": self.path, **body})
            if self.path == "/v1/completions":
                top = _top_logprobs(engine, body["prompt"], int(body["logprobs"]))
                choice = {
                    "index": 0,
                    "text": top[0][0],
                    "finish_reason": "length",
                    "logprobs": {
                        "tokens": [top[0][0]],
                        "token_logprobs": [top[0][1]],
                        "top_logprobs": [dict(top)],
                        "text_offset": [0],
                    },
                }
                reply = {"id": "c", "object": "text_completion", "created": 0, "model": body["model"], "choices": [choice]}
            elif self.path == "/v1/chat/completions":
                prompt = body["messages"][-1]["content"]
                top = _top_logprobs(engine, prompt, int(body["top_logprobs"]))
                entries = [{"token": t, "logprob": lp, "bytes": None} for t, lp in top]
                choice = {
                    "index": 0,
                    "message": {"role": "assistant", "content": top[0][0]},
                    "finish_reason": "length",
                    "logprobs": {"content": [{**entries[0], "top_logprobs": entries}]},
                }
                reply = {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"], "choices": [choice]}
            else:
                self.send_error(404)
                return
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    with loopback_http(Handler) as base:
        yield f"{base}/v1", requests


@pytest.mark.slow
@pytest.mark.parametrize("name,api", [("pointwise", "completions"), ("pointwise", "chat"), ("first", "completions")])
def test_logprob_rerankers_through_a_server(server, hits, name, api):
    url, requests = server
    engine = OpenAICompatEngine(url, "gemma-3-270m", api=api, timeout_s=120)
    try:
        out, step = make_reranker(name, engine, Settings()).rerank(QUERY, hits, 2)
    finally:
        engine.close()
    assert out[0].chunk.id == RELEVANT, step.detail
    assert requests and all(r["path"] == ("/v1/completions" if api == "completions" else "/v1/chat/completions") and r["max_tokens"] == 1 for r in requests)
    assert len(requests) == (len(hits) if name == "pointwise" else 1)
    if api == "chat":
        assert all(r["logprobs"] is True and r["top_logprobs"] == 20 for r in requests)
    else:
        assert all(r["logprobs"] == 20 for r in requests)
    if name == "pointwise":
        # The shared instruction and query come first, so a server's prefix cache can reuse them.
        prompts = [r.get("prompt") or r["messages"][-1]["content"] for r in requests]
        assert all(p.startswith(prompts[0].split("Passage:")[0]) and QUERY in p.split("Passage:")[0] for p in prompts)


def test_server_candidate_outside_top_logprobs_gets_a_floor():
    from rag.engines.base import match_candidates

    got = match_candidates({" yes": -0.5, "yes": -2.0, "maybe": -3.0}, ["yes", "no"])
    assert got["yes"] == pytest.approx(-0.5 + __import__("math").log(1 + __import__("math").exp(-1.5)))
    assert got["no"] == -4.0


def test_unreachable_server_is_an_engine_error(hits):
    engine = OpenAICompatEngine("http://127.0.0.1:9/v1", "m", timeout_s=2)
    with pytest.raises(EngineUnavailable, match="unreachable"):
        make_reranker("pointwise", engine, Settings()).rerank(QUERY, hits, 2)


@pytest.fixture(scope="module")
def llama_cpp_server(base_settings, tmp_path_factory):
    """llama-cpp-python's OpenAI-compatible server on the Gemma-3-270M GGUF, on a free loopback port.

    Module scope: both parametrized rerankers share one server (loading the model is the slow part).
    """
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (built by the KV-cache work)")
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] extras are not installed")
    import sys

    from servers import free_port, serving

    from rag.models import gguf_file

    port = free_port()
    with serving(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_file(base_settings.models_dir)),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--model_alias", "gemma"],
        ready_url=f"http://127.0.0.1:{port}/v1/models", log_path=tmp_path_factory.mktemp("llama") / "llama.log",
        timeout_s=120, what="llama.cpp server",
    ):
        yield f"http://127.0.0.1:{port}/v1"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pointwise", "first"])
def test_logprob_rerankers_through_llama_cpp(llama_cpp_server, hits, name):
    engine = OpenAICompatEngine(llama_cpp_server, "gemma", api="completions", timeout_s=120)
    try:
        out, step = make_reranker(name, engine, Settings()).rerank(QUERY, hits, 4)
    finally:
        engine.close()
    assert sorted(step.detail["after"]) == ["c0", "c1", "c2", "c3"]
    if name == "pointwise":
        assert len(set(step.detail["scores"].values())) > 1  # real logprobs, not the floor for every passage
