"""Conversation-stable passage order: the prompt prefix stays byte-identical across turns.

Within one conversation (session id), passages already in the context keep
their positions and newly retrieved ones are appended, so the instructions and
the earlier passages form a prefix the KV cache (local or a server's) reuses.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Sequence

from rag.types import Hit


class Conversation:
    """The passages one conversation has in its context, in prompt order."""

    def __init__(self, max_passages: int) -> None:
        self.max_passages = max(1, max_passages)
        self._hits: list[Hit] = []
        self._lock = threading.Lock()

    @property
    def passages(self) -> tuple[Hit, ...]:
        return tuple(self._hits)

    def arrange(self, hits: Sequence[Hit]) -> list[Hit]:
        """The context for this turn, given this turn's ``hits`` in relevance order.

        Earlier passages keep their positions, new ones are appended. When that
        would exceed ``max_passages``, earlier passages this turn did not
        retrieve are dropped (the prefix up to the first dropped one stays
        reusable); if it still does not fit, the context restarts from ``hits``.
        """
        with self._lock:
            now = {h.chunk.id: h for h in hits}
            kept = [now.get(h.chunk.id, h) for h in self._hits]  # fresher score, same position
            known = {h.chunk.id for h in kept}
            new = [h for h in hits if h.chunk.id not in known]
            context = kept + new
            if len(context) > self.max_passages:
                context = [h for h in kept if h.chunk.id in now] + new
            if len(context) > self.max_passages:
                context = list(hits)
            self._hits = context
            return list(context)


class Conversations:
    """Per-session :class:`Conversation` objects, the least recently used forgotten past ``capacity``."""

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, Conversation] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: str, max_passages: int) -> Conversation:
        with self._lock:
            conv = self._items.get(session)
            if conv is None:
                conv = self._items[session] = Conversation(max_passages)
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
            else:
                conv.max_passages = max(1, max_passages)
                self._items.move_to_end(session)
            return conv

    def arrange(self, session: str | None, hits: Sequence[Hit], max_passages: int) -> list[Hit]:
        """Conversation-stable order for ``session``; without a session, ``hits`` as given."""
        if session is None:
            return list(hits)
        return self.get(session, max_passages).arrange(hits)
