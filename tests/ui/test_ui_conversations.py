"""Saved conversations in the UI (AppTest): the sidebar list survives a restart, is shared by the sessions of
one user, opens a conversation with its sources, renames, deletes, searches, pages, and marks the citations of a
deleted document. Extractive answers: no language model, so each question takes a moment."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("streamlit", reason="the UI tests need the 'ui' extra: pip install 'hoprag[ui]'")
import streamlit as st  # noqa: E402
from test_ui_app import GOOD_MD, GOOD_TXT, plain, start, ui_env, upload  # noqa: E402,F401  (fixture)
from test_ui_signin import sign_in, team  # noqa: E402,F401  (fixture)

from rag.chats import ConversationStore  # noqa: E402

QUESTION = "What is the launch code?"


@pytest.fixture
def env(ui_env, monkeypatch):
    monkeypatch.setenv("HOPRAG_ANSWER_MODE", "extractive")
    return ui_env


def conv_buttons(at):
    return [b for b in at.sidebar.button if b.key and b.key.startswith("conv-")]


def titles(at) -> list[str]:
    return [plain(b.label) for b in conv_buttons(at)]


def ask(at, question: str):
    at.chat_input(key="question").set_value(question).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_conv(at, title: str):
    next(b for b in conv_buttons(at) if plain(b.label) == title).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def source_labels(at) -> list[str]:
    assistant = [cm for cm in at.chat_message if cm.name == "assistant"]
    return [plain(e.label) for cm in assistant for e in cm.expander if e.label.startswith("\\[")]


def test_a_conversation_survives_a_restart_and_is_shared_by_a_users_sessions(env):
    at = start()
    upload(at, [("notes.md", GOOD_MD, "text/markdown"), ("otters.txt", GOOD_TXT, "text/plain")])
    assert titles(at) == [] and any("No saved conversations yet" in c.value for c in at.sidebar.caption)
    ask(at, QUESTION)
    assert at.session_state.messages[-1]["answer"].citations
    assert titles(at) == [QUESTION], "the new conversation is listed as soon as its first answer is saved"
    conversation_id = at.session_state.session_id

    # "restart": the process's cached knowledge bases and models are dropped, a fresh session starts
    st.cache_resource.clear()
    fresh = start()
    assert fresh.session_state.messages == [] and not fresh.chat_message  # a new session starts a new chat
    assert titles(fresh) == [QUESTION]
    open_conv(fresh, QUESTION)
    assert fresh.session_state.session_id == conversation_id
    assert [cm.name for cm in fresh.chat_message] == ["user", "assistant"]
    assert source_labels(fresh)[0].startswith("[1] notes.md"), source_labels(fresh)
    assert any("BLUE-42" in m.value for cm in fresh.chat_message for m in cm.markdown)

    # the conversation continues where it was; the other session of the same user sees the same list
    ask(fresh, "Where is it kept?")
    at.run()
    assert titles(at) == [QUESTION]
    [button] = conv_buttons(at)
    assert button.help.startswith("2 turns")
    assert len(ConversationStore.in_data_dir(env / "data").turns(conversation_id)) == 2

    # rename from one session, seen in the other; search by title
    fresh.text_input(key="conv_title").set_value("Launch notes")
    fresh.button(key="conv_rename").click().run()
    at.run()
    assert titles(at) == ["Launch notes"] == titles(fresh)
    at.text_input(key="conv_search").set_value("LAUNCH").run()
    assert titles(at) == ["Launch notes"]
    at.text_input(key="conv_search").set_value("otters").run()
    assert titles(at) == [] and any("No conversation matches" in c.value for c in at.sidebar.caption)
    at.text_input(key="conv_search").set_value("").run()

    # a deleted document: its citations stay readable, marked
    notes = next(b for b in fresh.button if b.key and b.key.startswith("delete-") and "notes" in b.help)
    notes.click().run()
    fresh.run()
    labels = source_labels(fresh)
    assert labels and all("document deleted" in label for label in labels if "notes.md" in label), labels
    assert any("BLUE-42" in m.value for cm in fresh.chat_message for m in cm.markdown)

    # delete the conversation: gone from both lists, this session starts a new chat
    fresh.button(key="conv_delete").click().run()
    at.run()
    assert titles(fresh) == [] == titles(at) and fresh.session_state.messages == []
    assert fresh.session_state.session_id != conversation_id


def test_the_list_pages_and_new_starts_a_new_conversation(env):
    store = ConversationStore.in_data_dir(env / "data")
    now = time.time()
    for n in range(45):
        store.append(f"c{n:02}", kb="default", owner="local", question=f"Question number {n}",
                     answer={"question": "q", "answer": f"Answer {n}", "citations": [], "passages": []},
                     settings={}, trace={"steps": []}, created=now + n)
    store.append("someone-else", kb="default", owner="alice", question="Alice's question", answer={}, settings={},
                 trace={}, created=now + 100)
    store.close()
    at = start()
    assert titles(at)[:2] == ["Question number 44", "Question number 43"] and len(titles(at)) == 20
    at.button(key="conv_more").click().run()
    assert len(titles(at)) == 40
    at.button(key="conv_more").click().run()
    assert len(titles(at)) == 45 and not [b for b in at.button if b.key == "conv_more"]
    assert "Alice's question" not in titles(at)  # another owner's conversations are not listed
    open_conv(at, "Question number 7")
    assert at.session_state.session_id == "c07"
    assert [cm.name for cm in at.chat_message] == ["user", "assistant"]
    at.button(key="conv_new").click().run()
    assert at.session_state.messages == [] and at.session_state.session_id != "c07"



def test_each_signed_in_user_has_their_own_list_in_all_their_sessions(env, team):
    """With users (issue 20) the owner is the signed-in name: st.session_state["user_name"]."""
    eddie = sign_in(start(), "eddie")
    ask(eddie, "When are holidays booked?")
    assert titles(eddie) == ["When are holidays booked?"]
    eddies_chat = eddie.session_state.session_id

    rita = sign_in(start(), "rita")
    assert titles(rita) == [], "another user's conversations are not listed"
    ask(rita, "Where are holidays booked?")
    assert titles(rita) == ["Where are holidays booked?"]
    eddie_again = sign_in(start(), "eddie")  # a second browser session of the same user
    assert titles(eddie_again) == ["When are holidays booked?"]

    # the same browser session, signed out, then signed in as someone else: not the previous user's chat
    eddie.button(key="sign_out").click().run()
    sign_in(eddie, "rita")
    assert titles(eddie) == ["Where are holidays booked?"]
    assert eddie.session_state.session_id != eddies_chat and eddie.session_state.messages == []
    with ConversationStore.in_data_dir(env / "data") as store:
        assert {(c.owner, c.title) for c in store.list()} == {
            ("eddie", "When are holidays booked?"), ("rita", "Where are holidays booked?")}
