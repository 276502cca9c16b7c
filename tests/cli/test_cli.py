"""Every ``hoprag`` command: output, ``--json`` shape and exit codes.

Most run in process (typer's CliRunner) with the session embedder injected;
``serve`` and one ``ask --json`` run as real subprocesses.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from kb_fixture import KB_DOCS, OTTER_QUESTION, build_kb
from servers import free_port
from typer.testing import CliRunner

from rag import RAG
from rag.cli import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, app
from rag.commands import common
from rag.types import Usage

TESTS = Path(__file__).resolve().parent.parent
HOPRAG = [sys.executable, "-c", "from rag.cli import main; main()"]
DOC_KEYS = {"doc_id", "source", "title", "pages", "chunks", "added"}


class _CannedEngine:
    """Answers instantly; the real model is exercised by the subprocess ask test."""

    name = "canned"
    takes_messages = False
    default_max_tokens = 96

    def stream(self, prompt, **kwargs):
        yield "Sea otters crack shells with stones [1]."
        yield Usage(prompt_tokens=50, completion_tokens=9)

    def close(self) -> None:
        pass


@pytest.fixture
def run(monkeypatch, tmp_path, embedder):
    """Invoke the CLI in process on a fresh data dir; returns (result, data_dir)."""
    monkeypatch.chdir(tmp_path)  # no stray hoprag.toml
    for key in [k for k in os.environ if k.startswith("HOPRAG_")]:
        monkeypatch.delenv(key)
    monkeypatch.setattr(common, "open_rag", lambda settings: RAG(settings, embedder=embedder, engine=_CannedEngine()))
    data = str(tmp_path / "data")

    def invoke(*args: str):
        return CliRunner().invoke(app, [*args, "--data-dir", data] if args and args[-1] != "--help" else list(args))

    return invoke


def test_ingest_json_and_exit_codes(run, tmp_path):
    ok = run("ingest", str(KB_DOCS), "--json")
    assert ok.exit_code == EXIT_OK, ok.output
    report = json.loads(ok.stdout)
    assert set(report) == {"files", "seconds", "ok"} and report["ok"] is True
    assert sorted(f["status"] for f in report["files"]) == ["added"] * 3
    assert {"source", "status", "doc_id", "pages", "chunks", "reason"} <= set(report["files"][0])
    again = run("ingest", str(KB_DOCS / "otters.md"))
    assert again.exit_code == EXIT_OK and again.stdout.startswith("unchanged")
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 not really")
    partial = run("ingest", str(KB_DOCS / "bread.txt"), str(tmp_path / "bad.pdf"), "--json")
    assert partial.exit_code == EXIT_PARTIAL
    assert [f["status"] for f in json.loads(partial.stdout)["files"]] == ["unchanged", "failed"]
    failed = run("ingest", str(tmp_path / "missing.md"))
    assert failed.exit_code == EXIT_ERROR and "failed" in failed.stdout
    assert run("ingest").exit_code == EXIT_USAGE


def test_docs_and_delete(run):
    assert run("ingest", str(KB_DOCS)).exit_code == EXIT_OK
    listed = run("docs", "--json")
    docs = json.loads(listed.stdout)
    assert listed.exit_code == EXIT_OK and len(docs) == 3 and set(docs[0]) == DOC_KEYS
    human = run("docs")
    assert "otters.md" in human.stdout and docs[0]["doc_id"][:12] in human.stdout
    gone = run("delete", "otters.md", "--json")
    assert gone.exit_code == EXIT_OK
    assert json.loads(gone.stdout)["source"].endswith("otters.md")
    assert len(json.loads(run("docs", "--json").stdout)) == 2
    missing = run("delete", "otters.md")
    assert missing.exit_code == EXIT_ERROR and missing.stderr.startswith("error: no document matches")


def test_ask_prints_answer_and_sources(run):
    run("ingest", str(KB_DOCS))
    human = run("ask", OTTER_QUESTION, "--top-k", "2")
    assert human.exit_code == EXIT_OK
    assert human.stdout.startswith("Sea otters crack shells with stones [1].")
    assert "[1] otters.md" in human.stdout
    data = json.loads(run("ask", OTTER_QUESTION, "--json").stdout)
    assert data["citations"][0]["source"].endswith("otters.md")
    bad = run("ask", OTTER_QUESTION, "--strategy", "psychic")
    assert bad.exit_code == EXIT_ERROR and "psychic" in bad.stderr and "hybrid" in bad.stderr
    assert run("ask").exit_code == EXIT_USAGE
    assert run("ask", "q", "--no-such-option").exit_code == EXIT_USAGE


def test_group_commands_exist(run):
    top = run("--help")
    for name in ("ingest", "ask", "docs", "delete", "eval", "bench", "ui", "serve"):
        assert name in top.stdout
    assert run("eval", "--help").exit_code == EXIT_OK
    assert run("serve", "--port", "70000").exit_code == EXIT_USAGE
    assert run("bench", "--help").exit_code == EXIT_OK


def test_ui_binds_loopback(run, monkeypatch):
    calls = []
    monkeypatch.setattr("rag.commands.ui.run_child", lambda argv: calls.append(argv) or 0)
    result = CliRunner().invoke(app, ["ui", "--port", "8765"])
    assert result.exit_code == EXIT_OK
    argv = calls[0]
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1"
    assert argv[argv.index("--server.port") + 1] == "8765"


def test_ui_stops_its_streamlit_child_on_sigterm(tmp_path):
    """A supervisor (or a test) that terminates `hoprag ui` must not leave the Streamlit server running."""
    pid_file = tmp_path / "child.pid"
    child = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    parent = subprocess.Popen([sys.executable, "-c", f"from rag.commands.ui import run_child; "
                               f"raise SystemExit(run_child([{sys.executable!r}, '-c', {child!r}]))"])
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.1)
    child_pid = int(pid_file.read_text())
    parent.terminate()
    parent.wait(timeout=30)
    deadline = time.monotonic() + 30
    while True:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "the child outlived hoprag ui"
        time.sleep(0.1)


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOPRAG_")}
    return dict(env, PYTHONPATH=str(TESTS), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")


def test_serve_subprocess_binds_loopback_with_api_key(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [*HOPRAG, "serve", "--port", str(port), "--data-dir", str(tmp_path / "data"), "--api-key", "k1"],
        env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.2)
        assert httpx.get(f"{base}/v1/models", timeout=10).status_code == 401
        models = httpx.get(f"{base}/v1/models", headers={"Authorization": "Bearer k1"}, timeout=10).json()
        assert [m["id"] for m in models["data"]] == ["hoprag-default"]
        try:
            host_ip = socket.gethostbyname(socket.gethostname())
        except OSError:
            host_ip = "127.0.0.1"
        if not host_ip.startswith("127."):  # bound to loopback only: the machine's other address refuses
            with socket.socket() as s:
                assert s.connect_ex((host_ip, port)) != 0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == EXIT_OK, proc.stderr.read()[-2000:]


def test_serve_port_in_use_is_an_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([*HOPRAG, "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
                              env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == EXIT_ERROR and "could not start" in proc.stderr


@pytest.mark.slow  # loads the local LLM (in a fresh process)
def test_ask_json_end_to_end_subprocess(tmp_path, embedder):
    """The one test that loads the real models in a fresh process (network blocked): ask --json."""
    build_kb(tmp_path / "data", embedder)
    env = dict(_env(tmp_path), HOPRAG_DATA_DIR=str(tmp_path / "data"), HOPRAG_MAX_NEW_TOKENS="4", HOPRAG_TOP_K="1")
    guarded = [sys.executable, "-c", "import netguard; from rag.cli import main; main()"]  # loopback only
    proc = subprocess.run([*guarded, "ask", OTTER_QUESTION, "--json"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == EXIT_OK, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert set(out) >= {"question", "answer", "citations", "passages", "usage", "timings", "trace", "error"}
    assert out["error"] is None and out["question"] == OTTER_QUESTION
    assert out["passages"][0]["source"].endswith("otters.md")
    assert 0 < out["usage"]["completion_tokens"] <= 4
    empty = subprocess.run([*HOPRAG, "delete", "nothing-here", "--json"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert empty.returncode == EXIT_ERROR and empty.stderr.startswith("error:")


def test_ask_answer_mode_and_max_tokens(run, monkeypatch, embedder):
    from fakes import ScriptedEngine

    run("ingest", str(KB_DOCS))
    quoted = run("ask", OTTER_QUESTION, "--answer-mode", "extractive")
    assert quoted.exit_code == EXIT_OK
    assert quoted.stdout.startswith("\u201c") and "stones as tools" in quoted.stdout
    assert "    > " in quoted.stdout  # the evidence sentence under its source
    data = json.loads(run("ask", OTTER_QUESTION, "--answer-mode", "extractive", "--json").stdout)
    assert data["mode"] == "extractive" and data["citations"][0]["highlights"]
    # Abstaining names what the documents never mention and lists the nearest passages under the answer.
    off = run("ask", "What is the capital of France?", "--answer-mode", "extractive")
    assert off.stdout.startswith("The documents never mention \u201cFrance\u201d")
    assert "Nearest passages:\n[1] " in off.stdout and "    '" in off.stdout
    engine = ScriptedEngine(default="Sea otters use stones to crack walnut shells [1]. Nemo taught them in 1870.")
    monkeypatch.setattr(common, "open_rag", lambda settings: RAG(settings, embedder=embedder, engine=engine))
    grounded = run("ask", OTTER_QUESTION, "--answer-mode", "grounded", "--max-tokens", "7")
    assert grounded.exit_code == EXIT_OK and engine.calls[-1]["max_tokens"] == 7
    assert grounded.stdout.startswith("Sea otters use stones to crack walnut shells [1].")
    assert "(left out, no passage supports it: Nemo taught them in 1870.)" in grounded.stdout
    assert "(not found in the cited passage: walnut)" in grounded.stdout
    run("ask", OTTER_QUESTION, "--answer-mode", "generative")
    assert engine.calls[-1]["max_tokens"] == ScriptedEngine.default_max_tokens  # 0 = the engine's default
    bad = run("ask", OTTER_QUESTION, "--answer-mode", "poetic")
    assert bad.exit_code == EXIT_ERROR and "answer_mode" in bad.stderr and "grounded" in bad.stderr
