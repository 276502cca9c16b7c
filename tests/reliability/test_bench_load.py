"""`hoprag bench load`: concurrent asks through the API and the HTTP server report figures and zero errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import rag.cli
from rag.commands import common
from rag.commands.bench_load import run_load, summarize
from rel_helpers import DOCS, FakeEngine


def test_bench_load_cli_api_and_server(make_rag, monkeypatch):
    kb = make_rag(engine=FakeEngine("Paris [1]."))
    assert kb.ingest([(n, t.encode()) for n, t in DOCS.items()]).ok
    monkeypatch.setattr(common, "open_rag", lambda settings: kb)
    res = CliRunner().invoke(rag.cli.app, ["bench", "load", "--json", "--concurrency", "3", "--seconds", "1.5"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output.strip().splitlines()[-1])
    for path in ("api", "server"):
        r = report[path]
        assert r["requests"] > 0 and r["errors"] == 0, r
        assert 0 < r["p50_s"] <= r["p95_s"] and r["throughput_rps"] > 0
    assert report["server"]["url"].startswith("http://127.0.0.1:")


def test_errors_are_counted_and_fail_the_run():
    calls = iter(range(10**6))

    def flaky(question: str) -> str:
        n = next(calls)
        if n % 3 == 0:
            raise RuntimeError("boom")
        return "server said no" if n % 3 == 1 else ""

    r = run_load(flaky, ["q"], concurrency=2, seconds=0.3)
    assert r["requests"] > 3 and r["errors"] > r["requests"] // 2
    assert any("boom" in s for s in r["error_samples"])
    assert summarize([0.1, 0.2, 0.3, 0.4], [], 1.0)["p50_s"] in (0.2, 0.3)
