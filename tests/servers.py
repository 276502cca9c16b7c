"""Start a real server process on loopback for a test, wait until it answers, always stop it."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pytest
from fakes import free_port  # noqa: F401  (re-exported: `from servers import free_port, serving`)


@contextmanager
def serving(
    cmd: Sequence[str],
    *,
    ready_url: str,
    log_path: Path,
    timeout_s: float,
    ready: Callable[[bytes], bool] = lambda body: True,
    what: str = "server",
    **popen,
) -> Iterator[subprocess.Popen]:
    """Run ``cmd`` (output to ``log_path``) until ``ready_url`` answers 200; terminate it afterwards.

    The test fails with the log's tail if the process exits or is not ready in ``timeout_s``.
    """
    log = open(log_path, "wb")
    proc = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT, **popen)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as resp:
                    if resp.status == 200 and ready(resp.read()):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = Path(log_path).read_text(errors="replace")[-2000:]
                pytest.fail(f"{what} did not start (exit code {proc.poll()}):\n{tail}")
            time.sleep(0.5)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def wait_job(http, job: dict, timeout_s: float = 180) -> dict:
    """Poll an upload job of the HTTP API (``http``: an httpx client on /v1) until it is done or failed."""
    deadline = time.monotonic() + timeout_s
    while job["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        job = http.get(f"/jobs/{job['id']}").json()
    return job


@contextmanager
def serving_app(app) -> Iterator[str]:
    """Run an ASGI ``app`` under uvicorn in this process on a free loopback port; yields the /v1 base URL."""
    import socket
    import threading

    import uvicorn

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


@contextmanager
def chroma_serving(folder: Path) -> Iterator[str]:
    """A real ``chroma run`` server on a free loopback port, its data and log under ``folder``; yields its URL."""
    from rag.bench.local_cluster import BIN, chroma_server

    if not (BIN / "chroma").exists():
        pytest.skip(f"no chroma CLI at {BIN / 'chroma'}")
    with chroma_server(folder) as server:
        yield server.url
