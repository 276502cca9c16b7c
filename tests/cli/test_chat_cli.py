"""``hoprag chat`` with piped stdin (a real subprocess) and ``hoprag conversations`` on what it saved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kb_fixture import OTTER_QUESTION, build_kb

HOPRAG = [sys.executable, "-c", "from rag.cli import main; main()"]


@pytest.fixture
def hoprag(tmp_path, embedder):
    """Run the real CLI in a subprocess on a knowledge base built from tests/fixtures/api_kb."""
    data = tmp_path / "data"
    build_kb(data, embedder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOPRAG_")}
    env.update(HOPRAG_DATA_DIR=str(data), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([*HOPRAG, *args], input=stdin, capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=300)

    return run


def test_chat_with_piped_stdin_sources_new_and_the_saved_conversations(hoprag):
    script = f"{OTTER_QUESTION}\n/sources\nAnd what keeps them warm?\n/new\nWhere is Hekla?\n/bogus\n/quit\nnot asked\n"
    chat = hoprag("chat", "--answer-mode", "extractive", stdin=script)
    assert chat.returncode == 0, chat.stderr
    out = chat.stdout
    assert "use stones as tools to crack open shells" in out
    # /sources: the cited passage with its evidence sentence
    assert "[1] otters.md (Sea otters)\n    > " in out
    assert "New conversation " in out and "Unknown command /bogus" in out and "not asked" not in out
    listed = json.loads(hoprag("conversations", "list", "--json").stdout)["conversations"]
    assert [(c["title"], c["turns"]) for c in listed] == [("Where is Hekla?", 1), (OTTER_QUESTION, 2)]
    first = listed[1]["id"]
    assert f"Saved as conversation {listed[0]['id']}" in chat.stderr

    # continue the first one: its history comes back, a third turn is added
    again = hoprag("chat", "--conversation", first, "--answer-mode", "extractive",
                   stdin="/sources\nWhat do otters eat?\n")
    assert again.returncode == 0, again.stderr
    assert f"Continuing '{OTTER_QUESTION}' (2 turns)" in again.stdout and "[1] otters.md" in again.stdout
    shown = hoprag("conversations", "show", first)
    assert shown.returncode == 0 and "3 turns" in shown.stdout and "> What do otters eat?" in shown.stdout

    exported = hoprag("conversations", "export", first, "--format", "json")
    assert json.loads(exported.stdout)["conversation"]["id"] == first
    md = hoprag("conversations", "export", first)
    assert md.stdout.startswith(f"# {OTTER_QUESTION}\n")

    # a deleted document: the old turns still quote it, marked
    assert hoprag("delete", "otters.md").returncode == 0
    shown = hoprag("conversations", "show", first)
    assert "[1] otters.md (Sea otters) — document deleted" in shown.stdout
    assert "document deleted" in hoprag("conversations", "export", first).stdout

    path = Path(hoprag("conversations", "export", first, "--format", "json", "-o", "exp.json").stderr.split()[-1])
    assert hoprag("conversations", "delete", first).returncode == 0
    assert hoprag("conversations", "show", first).returncode == 1
    imported = hoprag("conversations", "import", str(path), "--json")
    assert json.loads(imported.stdout) == {"imported": first}
    assert "3 turns" in hoprag("conversations", "show", first).stdout
    missing = hoprag("conversations", "delete", "nope")
    assert missing.returncode == 1 and missing.stderr.strip() == (
        "error: no conversation 'nope': list them with hoprag conversations list")


def test_bench_conversations_prints_its_figures(hoprag):
    result = hoprag("bench", "conversations", "--conversations", "300", "--turns", "20", "--repeat", "2", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["conversations"] == 300 and figures["turns"] == 20
    for key in ("open_ms", "first_page_ms", "deep_page_ms", "search_ms", "append_ms"):
        assert figures[key] > 0
