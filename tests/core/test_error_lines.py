"""Missing extra, bad setting, unreachable server: one clear line, no traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fakes import free_port
from rag.errors import MissingExtraError

ROOT = Path(__file__).resolve().parents[2]
HOPRAG = [sys.executable, "-m", "rag.cli"]


def _run(args, env_extra, cwd):
    env = dict(os.environ, **env_extra)
    return subprocess.run(HOPRAG + args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


_closed_port = free_port


def test_unknown_setting_value_is_one_line(tmp_path):
    proc = _run(["docs"], {"HOPRAG_RERANKER": "magic"}, tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "error: setting reranker='magic' is not allowed; choose one of: first, icr, listwise, none, pointwise"
    )
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("backend, module", [("onnx", "onnxruntime"), ("torch", "sentence_transformers")])
def test_missing_extra_names_the_extra(monkeypatch, settings, backend, module):
    # A None entry in sys.modules makes "import <module>" fail as if absent.
    monkeypatch.setitem(sys.modules, module, None)
    from rag.embed import make_embedder

    with pytest.raises(MissingExtraError) as err:
        make_embedder(settings.replace(embed_backend=backend))
    assert "pip install 'hoprag[local]'" in str(err.value)


def test_unreachable_llm_server_gives_retrieval_only_answer(tmp_path):
    data = str(tmp_path / "data")
    ingest = _run(["ingest", str(ROOT / "docs" / "configuration.md"), "--data-dir", data], {}, tmp_path)
    assert ingest.returncode == 0, ingest.stderr
    env = {"HOPRAG_LLM_BASE_URL": f"http://127.0.0.1:{_closed_port()}/v1", "HOPRAG_LLM_MODEL": "x"}
    proc = _run(["ask", "How do I use a Chroma server?", "--data-dir", data], env, tmp_path)
    assert proc.returncode == 0
    assert "Traceback" not in proc.stderr
    warning = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "unreachable" in warning[0] and "HOPRAG_LLM_BASE_URL" in warning[0]
    assert "[1] configuration.md" in proc.stdout


def test_unreachable_chroma_server_is_one_line(tmp_path):
    proc = _run(["docs"], {"HOPRAG_CHROMA_URL": f"http://127.0.0.1:{_closed_port()}"}, tmp_path)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "is unreachable" in lines[0] and "HOPRAG_CHROMA_URL" in lines[0]
