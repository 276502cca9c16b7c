"""`hoprag config`, `hoprag --version`, shell completion, and one knowledge base whatever the working directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kb_fixture import KB_DOCS, OTTER_QUESTION


def hoprag(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("hoprag")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "rag.cli"]
    return subprocess.run([*cmd, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HOPRAG_", "OPENAI_"))}
    clean.update(XDG_DATA_HOME=str(tmp_path / "share"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    return clean


def test_version_and_completion(tmp_path, env):
    from importlib.metadata import version

    out = hoprag(["--version"], tmp_path, env)
    assert out.returncode == 0 and out.stdout.strip() == f"hoprag {version('hoprag')}"
    # what bash's completion function asks: the words so far, the word being completed
    completed = hoprag([], tmp_path, {**env, "_HOPRAG_COMPLETE": "complete_bash", "COMP_WORDS": "hoprag conf",
                                      "COMP_CWORD": "1"})
    assert completed.returncode == 0 and completed.stdout.split() == ["config"]
    script = hoprag([], tmp_path, {**env, "_HOPRAG_COMPLETE": "source_bash"})
    assert "complete " in script.stdout and "_HOPRAG_COMPLETE" in script.stdout


def test_config_shows_values_sources_and_masks_secrets(tmp_path, env):
    (tmp_path / "hoprag.toml").write_text("top_k = 3\n")
    (tmp_path / ".env").write_text("HOPRAG_LLM_API_KEY=sk-from-dotenv-abcdef9876\n")
    env.update(HOPRAG_HOPS="4", OPENAI_BASE_URL="http://127.0.0.1:9/v1", HOPRAG_TOPK="2")
    out = hoprag(["config", "--json", "--kb", "notes"], tmp_path, env)
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)["settings"]}
    assert rows["top_k"] == {"name": "top_k", "value": 3, "source": f"file {tmp_path / 'hoprag.toml'}"}
    assert rows["hops"]["source"] == "environment HOPRAG_HOPS"
    assert rows["kb"] == {"name": "kb", "value": "notes", "source": "command line / caller"}
    assert rows["llm_api_key"]["value"] == "****9876" and rows["llm_api_key"]["source"].startswith(".env")
    assert "sk-from-dotenv" not in out.stdout
    assert rows["llm_base_url"]["source"] == "environment OPENAI_BASE_URL (fallback)"
    assert rows["data_dir"] == {"name": "data_dir", "value": str(tmp_path / "share" / "hoprag"), "source": "default"}
    assert "HOPRAG_TOPK; did you mean HOPRAG_TOP_K?" in out.stderr
    text = hoprag(["config"], tmp_path, env)
    assert text.returncode == 0 and "top_k" in text.stdout and "****9876" in text.stdout


def test_ingest_here_ask_there_use_one_knowledge_base(tmp_path, env):
    """The default data dir is the user's, not the working directory's."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    added = hoprag(["ingest", str(KB_DOCS / "otters.md"), "--json"], one, env)
    assert added.returncode == 0, added.stderr
    asked = hoprag(["ask", OTTER_QUESTION, "--json", "--answer-mode", "extractive"], two, env)
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["passages"][0]["source"].endswith("otters.md")
    assert (tmp_path / "share" / "hoprag" / "index").is_dir() and not (one / "data").exists()
