"""A saved conversation as Markdown or JSON, and a JSON export read back (the import).

Citations of documents no longer in the knowledge base keep their stored text
and are marked "document deleted" (:func:`deleted_docs`).
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

from rag.chats.store import ConversationInfo, StoredTurn
from rag.errors import ConfigError
from rag.generate import citation, source_label
from rag.types import Answer, Citation, Document
from rag.ui_support import plural, unverified_ranges

FORMAT = "hoprag-conversation"
VERSION = 1
DELETED = "document deleted"
FORMATS = ("markdown", "json")


def deleted_docs(citations: Iterable[Citation], documents: Sequence[Document]) -> frozenset[str]:
    """The doc ids of ``citations`` whose document is gone (neither its id nor its source is in ``documents``)."""
    ids = {d.doc_id for d in documents}
    sources = {d.source for d in documents}
    return frozenset(c.doc_id for c in citations if c.doc_id and c.doc_id not in ids and c.source not in sources)


def citation_line(c: Citation, deleted: frozenset[str] = frozenset()) -> str:
    """``[1] guide.md, page 3 (Install)``, with `` — document deleted`` when its document is gone."""
    head = f"[{c.number}] " if c.number else ""
    return head + source_label(c.source, c.page, c.section) + (f" — {DELETED}" if c.doc_id in deleted else "")


def source_lines(answer: Answer, deleted: frozenset[str] = frozenset()) -> list[str]:
    """The cited passages of an answer, each with its evidence sentences (or a snippet), as terminal lines."""
    lines = [f"(left out, no passage supports it: {s})" for s in answer.unsupported]
    words = [answer.text[a:b] for a, b in unverified_ranges(answer)]
    if words:
        lines.append(f"(not found in the cited passage: {', '.join(dict.fromkeys(words))})")
    cited = answer.citations
    if not cited and answer.abstained and answer.passages:  # "the nearest passages are listed below"
        lines.append("Nearest passages:")
        cited = tuple(citation(n, h, inferred=True) for n, h in enumerate(answer.passages, 1))
    for c in cited:
        lines.append(citation_line(c, deleted))
        for h in c.highlights:
            lines.append(f"    > {' '.join(c.text[h.start:h.end].split())}")
        if not c.highlights:
            lines.append(f"    {' '.join(c.snippet.split())[:120]!r}")
    return lines


def to_markdown(info: ConversationInfo, turns: Sequence[tuple[str, Answer]], deleted: frozenset[str]) -> str:
    """The conversation as Markdown: each question, its answer, its sources with their evidence quoted."""
    out = [f"# {info.title}", "", f"Knowledge base: {info.kb} · {plural(len(turns), 'turn')} · conversation {info.id}", ""]
    for n, (question, answer) in enumerate(turns, 1):
        out += [f"## {n}. {' '.join(question.split())}", ""]
        if answer.error:
            out += [f"*No generated answer: {answer.error}*", ""]
        out += [answer.text.strip() or "*(no answer text)*", ""]
        if answer.unsupported:
            out += ["Left out (no passage supports them):", *[f"- {s}" for s in answer.unsupported], ""]
        if answer.citations:
            out += ["**Sources**", ""]
            for c in answer.citations:
                out.append(f"- {citation_line(c, deleted)}")
                quotes = [c.text[h.start:h.end] for h in c.highlights] or [c.snippet]
                out += [f"  > {' '.join(q.split())}" for q in quotes]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def to_json(info: ConversationInfo, turns: Sequence[StoredTurn]) -> dict[str, Any]:
    """The conversation with every stored turn, as read back by :func:`from_json`."""
    return {"format": FORMAT, "version": VERSION, "conversation": info.to_dict(), "turns": [t.to_dict() for t in turns]}


def from_json(data: str | bytes | dict[str, Any]) -> tuple[ConversationInfo, list[StoredTurn]]:
    """A JSON export read back; a file that is not one is a one-line error."""
    try:
        d = json.loads(data) if isinstance(data, (str, bytes)) else data
        if d.get("format") != FORMAT:
            raise ValueError(f"format is {d.get('format')!r}, not {FORMAT!r}")
        c = d["conversation"]
        info = ConversationInfo(str(c["id"]), str(c["title"]), str(c["kb"]), str(c["owner"]), float(c["created"]),
                                float(c["updated"]), len(d["turns"]))
        turns = [StoredTurn(int(t["n"]), str(t["question"]), dict(t["answer"]), dict(t.get("settings", {})),
                            dict(t.get("trace", {})), float(t["created"])) for t in d["turns"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"not a hoprag conversation export ({exc}): export one with "
                          "hoprag conversations export ID --format json") from None
    return info, turns
