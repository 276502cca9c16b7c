"""Saved conversations: a SQLite store in the data dir (:mod:`rag.chats.store`), the Answer JSON of a turn
(:mod:`rag.chats.codec`), Markdown/JSON export and import (:mod:`rag.chats.export`) and the
``rag.conversations()`` API (:mod:`rag.chats.api`).

Not to be confused with :mod:`rag.conversation`, the in-memory passage order of a session.
"""

from rag.chats.api import ALL, HISTORY_TURNS, LOCAL_OWNER, Chats, SavedConversation, SavedTurn
from rag.chats.store import FILENAME, ConversationInfo, ConversationStore, StoredTurn, title_from

__all__ = [
    "ALL",
    "FILENAME",
    "HISTORY_TURNS",
    "LOCAL_OWNER",
    "Chats",
    "ConversationInfo",
    "ConversationStore",
    "SavedConversation",
    "SavedTurn",
    "StoredTurn",
    "title_from",
]
