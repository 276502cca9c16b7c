"""``hoprag bench load``: N concurrent questions for a bounded time, through the Python API and the HTTP server.

Reports throughput, p50/p95 latency and errors per path. The server path runs
the ``hoprag serve`` app (rag.server under uvicorn) on a free loopback port in
this process, sharing the loaded models, unless ``--url`` points at a running
``hoprag serve``.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Optional, Sequence

import typer

from rag.commands import common
from rag.commands.common import EXIT_ERROR, EXIT_OK, DataOpt, JsonOpt, KbOpt, bench_app, load_settings, run

QUESTIONS = (
    "How do I add documents to a knowledge base?",
    "Which retrieval strategies are there?",
    "How do I use an OpenAI-compatible server?",
    "What does the reranker do?",
)
# A request that errors is recorded with its message; the run goes on.
Call = Callable[[str], str]


def run_load(call: Call, questions: Sequence[str], concurrency: int, seconds: float) -> dict[str, Any]:
    """Run ``call(question)`` from ``concurrency`` threads until ``seconds`` pass; ``call`` returns '' or an error."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(offset: int) -> None:
        i = offset
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                error = call(questions[i % len(questions)])
            except Exception as exc:  # a load test counts every failure, whatever its type
                error = f"{type(exc).__name__}: {exc}"
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                if error:
                    errors.append(error)
            i += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return summarize(latencies, errors, wall)


def summarize(latencies: list[float], errors: list[str], wall: float) -> dict[str, Any]:
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]

    return {
        "requests": len(latencies),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:3],
        "seconds": round(wall, 3),
        "throughput_rps": round(len(latencies) / wall, 3) if wall else 0.0,
        "p50_s": round(pct(0.50), 4),
        "p95_s": round(pct(0.95), 4),
        "mean_s": round(statistics.fmean(ordered), 4) if ordered else 0.0,
    }


def api_call(rag, max_new_tokens: int) -> Call:
    def call(question: str) -> str:
        return rag.ask(question, max_new_tokens=max_new_tokens).error

    return call


def http_call(base_url: str, model: str, max_new_tokens: int, api_key: str = "", timeout_s: float = 300) -> Call:
    """POST /v1/chat/completions (non-streamed); an error is a non-200 reply or a reply without a message."""
    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"

    def call(question: str) -> str:
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": question}],
                           "max_tokens": max_new_tokens}).encode()
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as reply:
                payload = json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}: {exc.read()[:200]!r}"
        choices = payload.get("choices") or []
        if not choices or "message" not in choices[0]:
            return f"reply without a message: {str(payload)[:200]}"
        return ""

    return call


class LoopbackServer:
    """The ``hoprag serve`` app for ``rag`` on a free 127.0.0.1 port, in a background thread."""

    def __init__(self, rag) -> None:
        from rag.extras import require

        uvicorn = require("uvicorn", "api")
        from rag.server import create_app

        from rag.bench.local_cluster import free_port

        self.port = free_port()
        self.model = f"hoprag-{rag.settings.kb}"
        self.api_key = rag.settings.api_key
        config = uvicorn.Config(create_app(rag, model=self.model), host="127.0.0.1", port=self.port,
                                log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "LoopbackServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the loopback server on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def bench(rag, *, concurrency: int, seconds: float, max_new_tokens: int, server: bool = True,
          url: str = "", questions: Sequence[str] = QUESTIONS) -> dict[str, Any]:
    """Warm up, then load the API and (optionally) the HTTP server; one result dict per path."""
    api_call(rag, max_new_tokens)(questions[0])  # load the models outside the timed window
    result: dict[str, Any] = {
        "concurrency": concurrency, "seconds": seconds, "max_new_tokens": max_new_tokens,
        "engine": rag.settings.engine, "documents": len(rag.documents()),
        "api": run_load(api_call(rag, max_new_tokens), questions, concurrency, seconds),
        "server": None,
    }
    if url:
        result["server"] = run_load(http_call(url, f"hoprag-{rag.settings.kb}", max_new_tokens,
                                              rag.settings.api_key), questions, concurrency, seconds)
        result["server"]["url"] = url
    elif server:
        try:
            loopback = LoopbackServer(rag)
        except Exception as exc:  # e.g. the 'api' extra is missing: API-only, and say so
            result["server_skipped"] = str(exc)
            return result
        with loopback:
            result["server"] = run_load(http_call(loopback.url, loopback.model, max_new_tokens, loopback.api_key),
                                        questions, concurrency, seconds)
            result["server"]["url"] = loopback.url
    return result


@bench_app.command("load")
def load(
    concurrency: int = typer.Option(4, "--concurrency", min=1, max=64, help="Concurrent clients."),
    seconds: float = typer.Option(10.0, "--seconds", min=0.5, max=3600, help="How long each path is loaded."),
    max_new_tokens: int = typer.Option(8, "--max-new-tokens", min=1, help="Tokens generated per answer."),
    server: bool = typer.Option(True, "--server/--no-server", help="Also load the HTTP server on loopback."),
    url: str = typer.Option("", "--url", help="Load a running 'hoprag serve' at this /v1 URL instead."),
    kb: Optional[str] = KbOpt,
    data_dir: Optional[str] = DataOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Concurrent ask() load through the Python API and `hoprag serve`: throughput, p50/p95, errors."""

    def body() -> int:
        from rag.sample import ensure_sample

        with common.open_rag(load_settings(kb, data_dir)) as rag:
            ensure_sample(rag)
            result = bench(rag, concurrency=concurrency, seconds=seconds, max_new_tokens=max_new_tokens,
                           server=server, url=url)
        if as_json:
            typer.echo(json.dumps(result))
        else:
            typer.echo(f"engine {result['engine']}, {result['documents']} documents, {concurrency} clients, "
                       f"{seconds:g}s per path, max_new_tokens={max_new_tokens}")
            for path in ("api", "server"):
                r = result[path]
                if r is None:
                    typer.echo(f"{path:6}  skipped ({result.get('server_skipped', 'disabled')})")
                    continue
                typer.echo(f"{path:6}  {r['requests']:5d} requests  {r['throughput_rps']:7.2f}/s  "
                           f"p50 {r['p50_s']:.3f}s  p95 {r['p95_s']:.3f}s  errors {r['errors']}")
                for sample in r["error_samples"]:
                    typer.echo(f"        error: {sample}")
        failed = any(result[p] and result[p]["errors"] for p in ("api", "server"))
        return EXIT_ERROR if failed else EXIT_OK

    run(body)
