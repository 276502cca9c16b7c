"""The conversation store on its own: WAL, paging, title search, rename, delete, import, crash-safe appends."""

from __future__ import annotations

import sqlite3

import pytest

from rag.chats import ConversationInfo, ConversationStore, StoredTurn, title_from
from rag.errors import ConfigError, StoreError


@pytest.fixture
def store(tmp_path):
    with ConversationStore.in_data_dir(tmp_path) as s:
        yield s


def add(store, cid, question="What is it?", *, kb="docs", owner="local", created=None):
    return store.append(cid, kb=kb, owner=owner, question=question, answer={"answer": f"A to {question}"},
                        settings={"top_k": 3}, trace={"steps": []}, created=created)


def test_one_file_in_wal_mode_with_the_list_index(store, tmp_path):
    assert store.path == tmp_path / "conversations.sqlite3"
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {r[1]: r for r in db.execute("PRAGMA index_list(conversations)")}
        assert "conversations_by_owner" in indexes
        cols = [r[2] for r in db.execute("PRAGMA index_info(conversations_by_owner)")]
        assert cols == ["owner", "kb", "updated"]
        plan = " ".join(str(r) for r in db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM conversations WHERE owner = 'a' AND kb = 'b' "
            "ORDER BY updated DESC, id LIMIT 20"))
        assert "conversations_by_owner" in plan, plan


def test_turns_are_numbered_and_the_first_question_is_the_title(store):
    assert add(store, "c1", "What do  sea otters\nuse stones for?") == 1
    assert add(store, "c1", "And why?") == 2
    info = store.info("c1")
    assert (info.title, info.kb, info.owner, info.turns) == ("What do sea otters use stones for?", "docs", "local", 2)
    turns = store.turns("c1")
    assert [(t.n, t.question, t.answer["answer"]) for t in turns] == [
        (1, "What do  sea otters\nuse stones for?", "A to What do  sea otters\nuse stones for?"),
        (2, "And why?", "A to And why?"),
    ]
    assert turns[0].settings == {"top_k": 3} and turns[0].trace == {"steps": []}
    assert [t.n for t in store.turns("c1", last=1)] == [2]


def test_long_titles_are_cut_at_a_word():
    title = title_from("How does the embedded model decide which passages to cite when several of them agree?")
    assert title.endswith("…") and len(title) <= 61 and " " in title and not title[:-1].endswith(" ")
    assert title_from("   ") == "Untitled"


def test_paging_owner_kb_and_most_recent_first(store):
    for n in range(45):
        add(store, f"c{n:02}", f"Question {n}", created=1000.0 + n)
    add(store, "other-owner", owner="alice", created=5000.0)
    add(store, "other-kb", kb="notes", created=5000.0)
    page1 = store.list(owner="local", kb="docs", limit=20)
    page3 = store.list(owner="local", kb="docs", offset=40, limit=20)
    assert [c.id for c in page1] == [f"c{n:02}" for n in range(44, 24, -1)]
    assert [c.id for c in page3] == [f"c{n:02}" for n in range(4, -1, -1)]
    assert store.count() == 47 and store.count(owner="alice") == 1
    assert [c.id for c in store.list(owner="alice")] == ["other-owner"]
    assert len(store.list(owner=None, kb=None, limit=100)) == 47
    # a new turn moves its conversation to the top
    add(store, "c03", "Follow-up", created=9000.0)
    assert store.list(owner="local", kb="docs", limit=1)[0].id == "c03"


def test_title_search_is_a_substring_match_with_wildcards_taken_literally(store):
    add(store, "a", "Where do otters sleep?")
    add(store, "b", "How hot is 100% lava?")
    add(store, "c", "Sourdough starter")
    assert [c.id for c in store.list(query="OTTER")] == ["a"]
    assert [c.id for c in store.list(query="100%")] == ["b"]
    assert store.list(query="%") == [store.info("b")]
    assert store.list(query="_") == []


def test_rename_and_delete(store):
    add(store, "c1")
    add(store, "c1", "Again?")
    store.rename("c1", "  My   otters ")
    assert store.info("c1").title == "My otters"
    with pytest.raises(ConfigError, match="empty"):
        store.rename("c1", "  ")
    with pytest.raises(StoreError, match="no conversation 'nope'"):
        store.rename("nope", "x")
    store.delete("c1")
    assert store.info("c1") is None and store.turns("c1") == []
    with pytest.raises(StoreError, match="no conversation"):
        store.delete("c1")


def test_insert_is_all_or_nothing_and_refuses_an_existing_id(store):
    info = ConversationInfo("imp", "Imported", "docs", "local", 1.0, 2.0, 2)
    turns = [StoredTurn(1, "Q1", {"answer": "A1"}, {}, {}, 1.0), StoredTurn(2, "Q2", {"answer": "A2"}, {}, {}, 2.0)]
    store.insert(info, turns)
    assert store.info("imp") == info and [t.question for t in store.turns("imp")] == ["Q1", "Q2"]
    with pytest.raises(StoreError, match="already exists"):
        store.insert(info, turns)
    assert len(store.turns("imp")) == 2


def test_a_failed_turn_write_leaves_nothing(store, monkeypatch):
    add(store, "c1")
    with pytest.raises(TypeError):  # an answer that is not JSON: nothing of the turn is written
        store.append("c2", kb="docs", owner="local", question="Q", answer={"x": object()}, settings={}, trace={})
    assert store.info("c2") is None and store.turns("c2") == []
    assert store.integrity() == "ok" and store.info("c1").turns == 1


def test_two_handles_on_one_file_see_each_other(tmp_path):
    with ConversationStore.in_data_dir(tmp_path) as a, ConversationStore.in_data_dir(tmp_path) as b:
        add(a, "c1")
        add(b, "c1", "Second?")
        assert a.info("c1").turns == 2 and [t.question for t in a.turns("c1")] == ["What is it?", "Second?"]


def test_a_file_that_is_not_a_store_is_a_one_line_error(tmp_path):
    (tmp_path / "conversations.sqlite3").write_bytes(b"not a database at all, just text" * 50)
    with pytest.raises(StoreError, match="cannot be opened.*data_dir"):
        ConversationStore.in_data_dir(tmp_path)
