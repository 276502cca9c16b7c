"""The web UI's saved conversations: the sidebar list (new, open, rename, delete, search, paged) and export.

The chat's conversation id is the session's ``session_id`` (a new chat gets a
new one): every finished answer is saved under it by ``rag.stream(...,
conversation=ID, owner=...)``; opening a saved conversation makes it the
session's and restores its turns with their sources. The owner is the
signed-in user (``st.session_state["user_name"]``), else "local".
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Callable, Sequence

import streamlit as st

from rag import RAG, Answer, HopragError
from rag.chats import LOCAL_OWNER
from rag.chats.export import DELETED, deleted_docs
from rag.types import Document
from rag.ui_support import escape_markdown, format_added, plural

ss = st.session_state
PAGE = 20  # conversations per page of the list ("More" shows the next page)
SCROLL_AFTER = 8  # longer lists scroll inside a fixed height, so the settings below stay in reach
LIST_PX = 320


def owner() -> str:
    return ss.get("user_name") or LOCAL_OWNER


def stream_args() -> dict[str, Any]:
    """What ``rag.stream`` needs to answer inside (and save to) this session's conversation."""
    return {"conversation": ss.session_id, "owner": owner()}


# ---- callbacks --------------------------------------------------------------------
def open_conversation(rag: RAG, conversation_id: str) -> None:
    """Make a saved conversation this session's chat: its turns, each answer with its sources."""
    try:
        conv = rag.conversations().get(conversation_id, owner())
    except HopragError as exc:
        ss.notice = f"Could not open the conversation: {exc}"
        return
    messages: list[dict] = []
    for t in conv.turns:
        messages.append({"role": "user", "text": t.question})
        messages.append({"role": "assistant", "answer": t.answer, "id": f"{conv.id}-{t.n}", "restored": True})
    ss.messages = messages
    ss.session_id = conv.id


def rename_conversation(rag: RAG, conversation_id: str) -> None:
    try:
        rag.conversations().rename(conversation_id, ss.get("conv_title", ""), owner())
    except HopragError as exc:
        ss.notice = f"Not renamed: {exc}"
    else:
        ss.notice = "Conversation renamed."


def delete_conversation(rag: RAG, conversation_id: str, new_chat: Callable[[], None]) -> None:
    try:
        rag.conversations().delete(conversation_id, owner())
    except HopragError as exc:
        ss.notice = f"Not deleted: {exc}"
        return
    ss.notice = "Conversation deleted."
    new_chat()


def _more() -> None:
    ss.conv_pages = ss.get("conv_pages", 1) + 1


def _searched() -> None:
    ss.conv_pages = 1


# ---- the sidebar panel --------------------------------------------------------------
def file_name(title: str, ext: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()[:60]
    return f"{slug or 'conversation'}.{ext}"


def panel(kb_rag: Callable[[], RAG], new_chat: Callable[[], None]) -> None:
    """The owner's conversations in the current knowledge base (call inside the sidebar)."""
    st.header("Conversations")
    try:
        rag = kb_rag()
        chats = rag.conversations()
        shown = PAGE * ss.setdefault("conv_pages", 1)
        items = chats.list(owner(), ss.get("conv_search", ""), 0, shown + 1)
        current = chats.store.info(ss.session_id)
    except HopragError as exc:
        st.caption(escape_markdown(f"Saved conversations are not available: {exc}"))
        return
    if current is not None and current.owner != owner():  # signed in as someone else: not their chat
        new_chat()
        current = None
    more, items = len(items) > shown, items[:shown]
    ss.conv_top = items[0].id if items else None
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        st.text_input("Search conversations", key="conv_search", placeholder="Search titles",
                      label_visibility="collapsed", on_change=_searched)
        st.button("New", key="conv_new", on_click=new_chat, icon=":material/add_comment:",
                  help="Start a new conversation")
    if not items:
        st.caption("No conversation matches." if ss.get("conv_search") else
                   "No saved conversations yet: each answer is saved as you chat.")
    with st.container(height=LIST_PX if len(items) > SCROLL_AFTER else "content", key="conv_list", gap="small"):
        for c in items:
            st.button(
                escape_markdown(c.title), key=f"conv-{c.id}", on_click=open_conversation, args=(rag, c.id),
                type="secondary" if c.id == ss.session_id else "tertiary", width="stretch",
                help=f"{plural(c.turns, 'turn')} · updated {format_added(c.updated)}",
            )
    if more:
        st.button("More", key="conv_more", on_click=_more, icon=":material/expand_more:")
    if current is not None:
        manage(rag, current, new_chat)


def manage(rag: RAG, current, new_chat: Callable[[], None]) -> None:
    """Rename, delete and export the open conversation."""
    if ss.get("conv_title_for") != current.id:
        ss.conv_title, ss.conv_title_for = current.title, current.id
    with st.expander("This conversation", icon=":material/chat:"):
        with st.form("conv_rename_form", border=False):
            st.text_input("Title", key="conv_title", max_chars=200)
            st.form_submit_button("Rename", key="conv_rename", on_click=rename_conversation, args=(rag, current.id))
        with st.container(horizontal=True, gap="small"):
            chats = rag.conversations()
            st.download_button("Markdown", chats.export(current.id, "markdown"), file_name(current.title, "md"),
                               mime="text/markdown", key="conv_export_md", icon=":material/download:")
            st.download_button("JSON", chats.export(current.id, "json"), file_name(current.title, "json"),
                               mime="application/json", key="conv_export_json", icon=":material/download:")
            st.button("Delete", key="conv_delete", on_click=delete_conversation, args=(rag, current.id, new_chat),
                      icon=":material/delete:", type="tertiary")


def refresh_after(question: str | None) -> None:
    """After an answer was saved this run: redraw once so the list shows it on top (new or moved)."""
    if question and ss.get("conv_top") != ss.session_id:
        st.rerun()


# ---- documents deleted since ----------------------------------------------------------
def mark_deleted(messages: Sequence[dict], docs: Sequence[Document]) -> None:
    """Mark, in each answer shown, the citations and passages of documents no longer in the knowledge base
    ("document deleted"); their stored text stays readable."""
    for m in messages:
        answer: Answer | None = m.get("answer")
        if answer is None:
            continue
        saved = m.setdefault("saved_answer", answer)
        cited = (*saved.citations, *_passage_citations(saved))
        gone = deleted_docs(cited, docs)
        if not m.get("restored"):  # answered in this session: only documents it saw in the knowledge base
            gone &= m.setdefault("present_docs", frozenset(c.doc_id for c in cited) - gone)
        m["answer"] = _marked(saved, gone) if gone else saved


def _passage_citations(answer: Answer):
    from rag.types import Citation

    return [Citation(0, h.chunk.id, h.chunk.doc_id, h.chunk.source, h.chunk.page, "", "") for h in answer.passages]


def _marked(answer: Answer, gone: frozenset[str]) -> Answer:
    note = f" — {DELETED}"
    return replace(
        answer,
        citations=tuple(replace(c, source=c.source + note) if c.doc_id in gone else c for c in answer.citations),
        passages=tuple(replace(h, chunk=replace(h.chunk, source=h.chunk.source + note)) if h.chunk.doc_id in gone
                       else h for h in answer.passages),
    )
