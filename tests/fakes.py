"""Test doubles shared by the test packages: a scripted engine, a counting embedder, a free port.

Fakes stand in for a component in unit tests only; each path they cover is
also tested with the real component (see the engines, kvcache and server tests).
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator, Sequence

import numpy as np

from rag.bench.local_cluster import free_port  # noqa: F401  (a port on 127.0.0.1 nothing listens on now)
from rag.types import Usage


class ScriptedEngine:
    """An engine (:class:`rag.engines.base.Streams`) that replies from a script and records what it was sent.

    Replies are used in call order; when they run out, ``default`` is replied
    (or, with no default, the test fails). ``takes_messages`` picks the prompt
    form the answer path sends it (chat messages or a completion prompt).
    """

    name = "scripted"
    takes_messages = False
    default_max_tokens = 96

    def __init__(self, *replies: str, default: str | None = None, takes_messages: bool = False) -> None:
        self.replies = list(replies)
        self.default = default
        self.takes_messages = takes_messages
        self.prompts: list = []
        self.calls: list[dict] = []

    def stream(self, prompt, *, max_tokens: int, stop: Sequence[str] = (), temperature: float = 0.0,
               session: str | None = None) -> Iterator[str | Usage]:
        self.prompts.append(prompt)
        self.calls.append({"max_tokens": max_tokens, "stop": tuple(stop), "session": session})
        if self.replies:
            reply = self.replies.pop(0)
        elif self.default is not None:
            reply = self.default
        else:
            raise AssertionError(f"ScriptedEngine ran out of replies (prompt: {str(prompt)[:200]!r})")
        yield reply
        yield Usage(prompt_tokens=len(str(prompt).split()), completion_tokens=len(reply.split()),
                    ttft_s=0.01, total_s=0.02)

    @property
    def sessions(self) -> list[str | None]:
        return [c["session"] for c in self.calls]

    def close(self) -> None:
        pass


class CountingEmbedder:
    """Counts the texts it embeds; wraps a real embedder, or (without one) gives tiny deterministic vectors."""

    def __init__(self, inner=None) -> None:
        self.inner = inner
        self.model_id = inner.model_id if inner is not None else "counting"
        self.seen: list[str] = []

    @property
    def texts(self) -> int:
        return len(self.seen)

    def embed(self, texts, progress=None):
        self.seen.extend(texts)
        if self.inner is not None:
            return self.inner.embed(texts, progress)
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text) if self.inner is not None else len(text.split())




@contextmanager
def loopback_http(handler: Callable[..., BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free 127.0.0.1 port in a thread; yields ``http://127.0.0.1:PORT`` and stops it after."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@contextmanager
def sse_server(reply: Callable[[dict], list[dict]]) -> Iterator[tuple[str, list[dict]]]:
    """A stand-in OpenAI-compatible server on loopback: each POST is recorded and answered with the
    server-sent events ``reply(body)`` returns (then ``[DONE]``). Yields (base URL ending in /v1, bodies)."""
    bodies: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            bodies.append(body)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for chunk in reply(body):
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")

    with loopback_http(Handler) as base:
        yield f"{base}/v1", bodies


class FailingEngine:
    """An engine whose every call fails: with ``error`` (a server that is down), or, by default, with an
    AssertionError (an answer path that must not call the LLM at all)."""

    name = "failing"
    takes_messages = False
    default_max_tokens = 96

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def stream(self, prompt, **kwargs) -> Iterator[str | Usage]:
        raise self.error or AssertionError(f"the LLM was called (prompt: {str(prompt)[:120]!r})")
        yield  # a generator, like real engines

    def close(self) -> None:
        pass
