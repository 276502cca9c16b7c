"""The embeddings-server backend against a real HTTP server on loopback: batches in parallel with a bound on
how many are in flight, rows back in input order, a failed batch retried, a dead server named in the error."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

import numpy as np
import pytest

from fakes import free_port, loopback_http
from rag.config import Settings
from rag.embed import make_embedder
from rag.errors import EngineError, EngineUnavailable

DIM = 8


def vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [b / 255 + 0.01 for b in digest[:DIM]]


@contextmanager
def embeddings_server(fail_first: int = 0, fail_always: bool = False, delay_s: float = 0.05):
    """``/v1/embeddings`` on loopback; the first ``fail_first`` requests (or all) answer 503."""
    state = {"in_flight": 0, "max_in_flight": 0, "requests": 0, "inputs": []}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                state["requests"] += 1
                n = state["requests"]
                state["in_flight"] += 1
                state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
            try:
                time.sleep(delay_s)
                if fail_always or n <= fail_first:
                    payload, status = {"error": {"message": "overloaded", "type": "server_error"}}, 503
                else:
                    with lock:
                        state["inputs"].append(body["input"])
                    data = [{"object": "embedding", "index": i, "embedding": vector(t)} for i, t in enumerate(body["input"])]
                    payload, status = {"object": "list", "data": data, "model": body["model"],
                                       "usage": {"prompt_tokens": 1, "total_tokens": 1}}, 200
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                if status == 503:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(raw)
            finally:
                with lock:
                    state["in_flight"] -= 1

    with loopback_http(Handler) as base:
        yield f"{base}/v1", state


def embedder(url: str, **settings):
    return make_embedder(Settings(embedder="openai", embed_base_url=url, embed_model="m", **settings))


def test_batches_go_out_in_parallel_within_the_bound_and_come_back_in_order():
    texts = [f"text number {i}" for i in range(40)]
    with embeddings_server(delay_s=0.1) as (url, state):
        seen = []
        vecs = embedder(url, embed_batch_size=4, embed_concurrency=3).embed(texts, progress=lambda d, t: seen.append(d))
    assert state["requests"] == 10 and 1 < state["max_in_flight"] <= 3
    want = np.asarray([vector(t) for t in texts], np.float32)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(vecs, want, rtol=1e-6)
    assert seen == sorted(seen) and seen[-1] == 40


def test_one_at_a_time_when_concurrency_is_one():
    with embeddings_server() as (url, state):
        embedder(url, embed_batch_size=2, embed_concurrency=1).embed([f"t{i}" for i in range(8)])
    assert state["max_in_flight"] == 1


def test_a_failed_batch_is_retried():
    texts = [f"retry me {i}" for i in range(6)]
    with embeddings_server(fail_first=2) as (url, state):
        vecs = embedder(url, embed_batch_size=3, embed_concurrency=1, embed_retries=3).embed(texts)
    assert state["requests"] == 4 and vecs.shape == (6, DIM)


def test_a_server_that_keeps_failing_is_an_error_after_the_retries():
    with embeddings_server(fail_always=True) as (url, state):
        with pytest.raises(EngineError, match="embedding server .* failed"):
            embedder(url, embed_batch_size=10, embed_retries=1).embed(["a", "b"])
    assert state["requests"] == 2  # the first try and one retry


def test_an_unreachable_server_names_the_setting():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(EngineUnavailable, match="HOPRAG_EMBED_BASE_URL"):
        embedder(url, embed_retries=0).embed(["a"])
