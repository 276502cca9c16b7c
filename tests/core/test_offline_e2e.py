"""Ingest + ask end to end in a fresh process with every non-loopback connection blocked."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent

SCRIPT = r"""
import json, sys, time
import netguard  # blocks non-loopback sockets before anything else loads
from rag import RAG, Settings
t0 = time.perf_counter()
settings = Settings.load(data_dir=sys.argv[1], max_new_tokens=16)
with RAG.open(settings=settings) as rag:
    report = rag.ingest([sys.argv[2]])
    answer = rag.ask("How do I point hoprag at a vLLM server?")
print(json.dumps({"report": report.to_dict(), "answer": answer.to_dict(), "seconds": time.perf_counter() - t0}))
"""


@pytest.mark.slow  # loads the local LLM (in a fresh process)
def test_ingest_and_ask_touch_no_network(tmp_path):
    log = tmp_path / "net.log"
    env = dict(os.environ, PYTHONPATH=str(TESTS), NETGUARD_LOG=str(log))
    # A proxy variable must not make anything try the network either.
    env["HTTPS_PROXY"] = env["HTTP_PROXY"] = "http://203.0.113.1:9"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "data"), str(ROOT / "docs" / "configuration.md")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["report"]["ok"]
    assert out["answer"]["passages"], "retrieval found nothing"
    assert out["answer"]["error"] is None, out["answer"]["error"]
    assert not log.exists() or log.read_text() == "", f"network was attempted: {log.read_text()}"


def test_netguard_really_blocks(tmp_path):
    log = tmp_path / "net.log"
    code = "import netguard, socket\ntry:\n    socket.create_connection(('203.0.113.1', 80), timeout=1)\nexcept OSError as e:\n    print('blocked', e)\n"
    env = dict(os.environ, PYTHONPATH=str(TESTS), NETGUARD_LOG=str(log))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert "blocked" in proc.stdout
    assert "203.0.113.1" in log.read_text()
