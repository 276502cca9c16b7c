"""``rag.conversations()``: list, open, rename, delete, export and import saved conversations, and
answer a question inside one (``rag.ask(question, conversation=ID)``)."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from rag.chats.codec import answer_from_record, answer_record, settings_record
from rag.chats.export import FORMATS, deleted_docs, from_json, to_json, to_markdown
from rag.chats.store import ConversationInfo, ConversationStore, StoredTurn, check_id
from rag.errors import ConfigError, StoreError
from rag.types import Answer, Document

HISTORY_TURNS = 10  # the stored turns given to the LLM as history with a new question
LOCAL_OWNER = "local"  # the owner where there are no users
ALL = "*"  # list(kb=ALL): every knowledge base


@dataclass(frozen=True)
class SavedTurn:
    n: int
    question: str
    answer: Answer
    settings: dict[str, Any]
    created: float


@dataclass(frozen=True)
class SavedConversation:
    """A conversation with its turns; ``deleted`` holds the doc ids its citations cite that are gone."""

    info: ConversationInfo
    turns: tuple[SavedTurn, ...]
    deleted: frozenset[str] = frozenset()

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def title(self) -> str:
        return self.info.title


class Chats:
    """The saved conversations of a data dir, seen from knowledge base ``kb``.

    ``documents_of(kb)`` lists a knowledge base's current documents (to mark
    citations of deleted documents). Obtain it with :meth:`rag.RAG.conversations`.
    """

    def __init__(self, store: ConversationStore, kb: str, documents_of: Callable[[str], Sequence[Document]]) -> None:
        self.store = store
        self.kb = kb
        self._documents_of = documents_of

    # ---- the list -------------------------------------------------------------------------
    def list(
        self, owner: str | None = LOCAL_OWNER, query: str = "", offset: int = 0, limit: int = 20, *, kb: str = ""
    ) -> list[ConversationInfo]:
        """``owner``'s conversations in this knowledge base (``kb=`` another one, ``"*"`` all; ``owner=None``
        everyone's), most recent first; ``query`` filters by title."""
        where = kb or self.kb
        return self.store.list(owner=owner, kb=None if where == ALL else where, query=query, offset=offset,
                               limit=limit)

    def info(self, conversation_id: str, owner: str | None = None) -> ConversationInfo:
        info = self.store.info(conversation_id)
        if info is None or (owner is not None and info.owner != owner):
            raise StoreError(f"no conversation {conversation_id!r}: list them with hoprag conversations list")
        return info

    def get(self, conversation_id: str, owner: str | None = None) -> SavedConversation:
        """A conversation with every turn's Answer (``owner`` given: only if it is theirs)."""
        info = self.info(conversation_id, owner)
        turns = tuple(SavedTurn(t.n, t.question, answer_from_record(t.answer, t.trace), t.settings, t.created)
                      for t in self.store.turns(info.id))
        cited = [c for t in turns for c in t.answer.citations]
        deleted = deleted_docs(cited, self._documents_of(info.kb)) if cited else frozenset()
        return SavedConversation(info, turns, deleted)

    def rename(self, conversation_id: str, title: str, owner: str | None = None) -> None:
        self.store.rename(self.info(conversation_id, owner).id, title)

    def delete(self, conversation_id: str, owner: str | None = None) -> None:
        self.store.delete(self.info(conversation_id, owner).id)

    # ---- export and import ------------------------------------------------------------
    def export(self, conversation_id: str, format: str = "markdown", owner: str | None = None) -> str:
        """The conversation as Markdown (readable, sources quoted) or JSON (every stored field; importable)."""
        if format not in FORMATS:
            raise ConfigError(f"export format {format!r} is not known; choose from: {', '.join(FORMATS)}")
        if format == "json":
            import json

            info = self.info(conversation_id, owner)
            return json.dumps(to_json(info, self.store.turns(info.id)), ensure_ascii=False, indent=1)
        conv = self.get(conversation_id, owner)
        return to_markdown(conv.info, [(t.question, t.answer) for t in conv.turns], conv.deleted)

    def import_json(self, data: str | bytes | dict, *, owner: str | None = None, new_id: bool = False) -> str:
        """Add a JSON export (as ``owner`` if given; under a fresh id with ``new_id``); returns its id."""
        info, turns = from_json(data)
        changes: dict[str, Any] = {}
        if owner is not None:
            changes["owner"] = owner
        if new_id:
            changes["id"] = uuid.uuid4().hex
        info = dataclasses.replace(info, **changes)
        self.store.insert(info, turns)
        return info.id

    # ---- asking inside a conversation -----------------------------------------------------
    def stream(
        self,
        answer: Callable[..., Iterator[str | Answer]],
        question: str,
        conversation_id: str,
        *,
        owner: str = LOCAL_OWNER,
        settings: Any,
        session: str | None = None,
        **kwargs: Any,
    ) -> Iterator[str | Answer]:
        """``answer(question, history, session=..., **kwargs)`` with the stored history; the finished turn is
        saved (in one transaction) before its Answer is yielded. A new id starts a conversation."""
        cid = check_id(conversation_id)
        owner = owner or LOCAL_OWNER
        info = self.store.info(cid)
        if info is not None and info.owner != owner:
            raise ConfigError(f"conversation {cid!r} is not {owner}'s: start a new one with another id")
        if info is not None and info.kb != self.kb:
            raise ConfigError(f"conversation {cid!r} belongs to knowledge base {info.kb!r}: open that knowledge "
                              f"base (--kb {info.kb}) to continue it")
        history = [(t.question, t.answer.get("answer") or "") for t in self.store.turns(cid, last=HISTORY_TURNS)]
        history = [(q, a) for q, a in history if a.strip()]
        for item in answer(question, history, session=session or cid, **kwargs):
            if isinstance(item, Answer):
                record, trace = answer_record(item)
                self.store.append(cid, kb=self.kb, owner=owner, question=question.strip(), answer=record,
                                  settings=settings_record(settings), trace=trace)
            yield item

    def turns(self, conversation_id: str) -> list[StoredTurn]:
        return self.store.turns(conversation_id)

    def close(self) -> None:
        self.store.close()
