"""``rag.conversations()`` and ``rag.ask(..., conversation=ID)`` over a real knowledge base (MiniLM, Chroma).

The engine is scripted (the answer path with the real model is the UI's and the
CLI's tests); a subprocess killed with SIGKILL mid-answer shows that no half
turn is ever stored.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fakes import ScriptedEngine
from kb_fixture import KB_DOCS, OTTER_QUESTION

from rag import RAG
from rag.errors import ConfigError, StoreError

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
def kb(make_rag):
    def open_kb(*replies: str, **changes) -> RAG:
        rag = make_rag(ScriptedEngine(*replies, default="Sea otters crack shells with stones [1]."),
                       answer_mode="generative", **changes)
        if not rag.documents():
            assert rag.ingest([KB_DOCS]).ok
        return rag

    return open_kb


def test_a_new_id_starts_a_conversation_and_later_turns_get_its_history(kb):
    rag = kb()
    first = rag.ask(OTTER_QUESTION, conversation="trip")
    second = rag.ask("And what keeps them warm?", conversation="trip")
    [info] = rag.conversations().list()
    assert (info.id, info.title, info.turns, info.owner, info.kb) == ("trip", OTTER_QUESTION, 2, "local", "default")
    # the stored history reached the prompt of the second turn, and the conversation is the passage-order session
    assert f"Question: {OTTER_QUESTION}\nAnswer: {first.text}" in str(rag.engine.prompts[1])
    assert rag.engine.sessions == ["trip", "trip"]
    conv = rag.conversations().get("trip")
    assert [t.question for t in conv.turns] == [OTTER_QUESTION, "And what keeps them warm?"]
    restored = conv.turns[1].answer
    assert restored.text == second.text and restored.citations == second.citations
    assert [h.chunk.text for h in restored.passages] == [h.chunk.text for h in second.passages]
    assert restored.trace.to_dict() == second.trace.to_dict()
    assert conv.turns[0].settings["answer_mode"] == "generative" and conv.deleted == frozenset()


def test_session_keeps_working_without_saving(kb):
    rag = kb()
    rag.ask(OTTER_QUESTION, session="s1")
    assert rag.engine.sessions == ["s1"] and rag.conversations().list(owner=None, kb="*") == []


def test_owners_see_only_their_own(kb):
    rag = kb()
    rag.ask(OTTER_QUESTION, conversation="mine", owner="alice")
    assert rag.conversations().list("bob") == [] and len(rag.conversations().list("alice")) == 1
    with pytest.raises(ConfigError, match="conversation 'mine' is not bob's"):
        rag.ask("And?", conversation="mine", owner="bob")
    with pytest.raises(StoreError, match="no conversation"):
        rag.conversations().get("mine", owner="bob")
    with pytest.raises(ConfigError, match="not both"):
        rag.ask("And?", [("q", "a")], conversation="mine", owner="alice")
    assert rag.conversations().info("mine").turns == 1


def test_a_conversation_stays_in_its_knowledge_base(kb):
    rag = kb()
    rag.ask(OTTER_QUESTION, conversation="c")
    other = kb(kb="other")
    with pytest.raises(ConfigError, match="knowledge base 'default'.*--kb default"):
        other.ask("And?", conversation="c")
    assert other.conversations().list() == [] and len(other.conversations().list(kb="default")) == 1


def test_export_json_round_trips_and_markdown_quotes_the_evidence(kb):
    rag = kb()
    rag.ask(OTTER_QUESTION, conversation="c")
    rag.ask("And what keeps them warm?", conversation="c")
    chats = rag.conversations()
    rag.conversations().rename("c", "Otters")
    exported = chats.export("c", "json")
    data = json.loads(exported)
    assert data["format"] == "hoprag-conversation" and len(data["turns"]) == 2
    assert data["turns"][0]["answer"]["citations"][0]["highlights"], "citations keep their highlights"
    chats.delete("c")
    assert chats.list() == []
    assert chats.import_json(exported) == "c"
    assert chats.export("c", "json") == exported
    copy = chats.import_json(exported, new_id=True, owner="bob")
    assert copy != "c" and chats.info(copy).owner == "bob"
    md = chats.export("c", "markdown")
    assert md.startswith("# Otters\n") and f"## 1. {OTTER_QUESTION}" in md
    assert "- [1] otters.md (Sea otters)" in md and "  > " in md and "document deleted" not in md
    with pytest.raises(ConfigError, match="not a hoprag conversation export"):
        chats.import_json('{"format": "other"}')
    with pytest.raises(ConfigError, match="export format 'pdf'"):
        chats.export("c", "pdf")


def test_a_deleted_documents_citation_stays_readable_and_is_marked(kb):
    rag = kb()
    answer = rag.ask(OTTER_QUESTION, conversation="c")
    cited = answer.citations[0]
    assert cited.source.endswith("otters.md")
    rag.delete(cited.doc_id)
    conv = rag.conversations().get("c")
    assert conv.deleted == {cited.doc_id}
    assert conv.turns[0].answer.citations[0].text == cited.text
    assert "- [1] otters.md (Sea otters) — document deleted" in rag.conversations().export("c")


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from fakes import ScriptedEngine
    from rag import RAG, Settings
    from rag.embed import make_embedder
    from rag.types import Usage

    class SlowEngine(ScriptedEngine):
        def stream(self, prompt, **kwargs):
            if len(self.prompts) == 0:
                yield from super().stream(prompt, **kwargs)
                return
            self.prompts.append(prompt)
            yield "Half an answer"
            print("STREAMING", flush=True)
            time.sleep(600)
            yield Usage()

    settings = Settings(data_dir={data!r}, answer_mode="generative")
    with RAG(settings, embedder=make_embedder(settings), engine=SlowEngine(default="Stones [1].")) as rag:
        rag.ask({question!r}, conversation="c")
        for piece in rag.stream("And the second question?", conversation="c"):
            pass
""")


def test_kill_9_mid_answer_leaves_no_half_turn(kb, settings, tmp_path):
    kb().close()  # the knowledge base, ingested in this process
    script = KILL_SCRIPT.format(tests=str(TESTS), data=settings.data_dir, question=OTTER_QUESTION)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 120
        line = b""
        while b"STREAMING" not in line:
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read().decode()[-2000:]
            line = proc.stdout.readline()
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    path = Path(settings.data_dir) / "conversations.sqlite3"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT turns FROM conversations WHERE id = 'c'").fetchone() == (1,)
        assert db.execute("SELECT n, question FROM turns").fetchall() == [(1, OTTER_QUESTION)]
    rag = kb()  # the store opens and the conversation continues where it was
    rag.ask("And the second question?", conversation="c")
    assert [t.n for t in rag.conversations().turns("c")] == [1, 2]
