"""Shared helpers of the reliability tests (fake engine, loopback servers, tiny documents)."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Child processes run this file's folder as a script path: the shared fakes live one level up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fakes import ScriptedEngine, free_port  # noqa: E402,F401  (free_port re-exported)

DOCS = {
    "paris.md": "# Paris\n\nThe Eiffel Tower is in Paris. It was finished in 1889 for the World's Fair.\n",
    "moon.md": "# Moon\n\nApollo 11 landed on the Moon in July 1969. Neil Armstrong walked first.\n",
    "tea.md": "# Tea\n\nGreen tea is steeped at about 80 degrees Celsius for two minutes.\n",
}


class FakeEngine(ScriptedEngine):
    """Answers every question with a fixed text citing [1] (units only: no model, no network)."""

    name = "fake"

    def __init__(self, text: str = "It is in Paris [1].") -> None:
        super().__init__(default=text)
        self.text = text


def wait_port(port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")


class FaultyLLM:
    """A tiny OpenAI-like HTTP server on loopback whose reply is chosen per test.

    modes: ``slow`` (sleeps before answering), ``garbage`` (200 with invalid
    JSON), ``schema`` (200 with JSON of the wrong shape), ``error`` (HTTP 500),
    ``ok`` (a valid non-streamed and streamed completion).
    """

    def __init__(self, mode: str, delay_s: float = 5.0) -> None:
        self.mode = mode
        self.delay_s = delay_s
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                outer.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if outer.mode == "slow":
                    time.sleep(outer.delay_s)
                if outer.mode == "error":
                    return self._send(500, b'{"error": {"message": "boom"}}', "application/json")
                if outer.mode == "garbage":
                    return self._send(200, b"{not json at all <html>", "application/json")
                if outer.mode == "garbage-sse":
                    return self._send(200, b"data: {broken json\n\ndata: [DONE]\n\n", "text/event-stream")
                if outer.mode == "schema":
                    return self._send(200, b"data: {\"choices\": 7}\n\ndata: [DONE]\n\n", "text/event-stream")
                chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                         "choices": [{"index": 0, "delta": {"content": "Paris [1]."}, "finish_reason": None}]}
                body = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
                self._send(200, body, "text/event-stream")

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): that is the point of "slow"

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()




class HashEmbedder:
    """A deterministic bag-of-words embedder (no torch): for store-level tests in child processes."""

    model_id = "test-hash-bow-64"
    dim = 64

    def embed(self, texts, progress=None):
        import hashlib
        import re

        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % self.dim] += 1.0
        if progress:
            progress(len(texts), len(texts))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def count_tokens(self, text: str) -> int:
        return len(text.split())
