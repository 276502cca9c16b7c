"""An :class:`~rag.types.Answer` as the stored JSON of a turn, and back.

The answer is :meth:`Answer.to_dict` (the HTTP API's Answer JSON, read back by
:func:`rag.client.answer_from_dict`) with its trace kept apart (the turn's
``trace`` column) and its passages carrying their text, so a reopened
conversation shows every source as it was, even after its document is deleted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from typing import Any

from rag.config import Settings, mask
from rag.types import Answer, Chunk, Hit


def answer_record(answer: Answer) -> tuple[dict[str, Any], dict[str, Any]]:
    """(answer JSON without the trace, trace JSON)."""
    d = answer.to_dict()
    trace = d.pop("trace")
    d["passages"] = [
        dict(p, doc_id=h.chunk.doc_id, text=h.chunk.text, title=h.chunk.title, section=h.chunk.section,
             page_end=h.chunk.page_end, rank=h.rank, origin=h.origin)
        for p, h in zip(d["passages"], answer.passages)
    ]
    return d, trace


def answer_from_record(d: dict[str, Any], trace: dict[str, Any]) -> Answer:
    """The :class:`Answer` of a stored turn (its passages with their text)."""
    from rag.client import answer_from_dict

    answer = answer_from_dict({**d, "trace": trace})
    passages = tuple(
        Hit(Chunk(id=p["chunk_id"], doc_id=p.get("doc_id", ""), text=p.get("text", ""), source=p["source"],
                  title=p.get("title", ""), page=p.get("page"), page_end=p.get("page_end"),
                  section=p.get("section", "")),
            float(p["score"]), p.get("rank", i), p.get("origin", "dense"))
        for i, p in enumerate(d.get("passages", ()))
    )
    return replace(answer, passages=passages)


def settings_record(settings: Settings) -> dict[str, Any]:
    """The settings a turn was answered with (secrets masked as ``hoprag config`` shows them)."""
    return {f.name: mask(f.name, getattr(settings, f.name)) for f in dataclasses.fields(settings)}
