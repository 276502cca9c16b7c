"""Prompt building and citation handling for answers.

Layout for prefix reuse: the static instructions come first, then the passages
in a deterministic order, then history and the question. Nothing that changes
per request sits before the passages.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Sequence

from rag.prompts import load_prompt
from rag.types import Citation, Hit

log = logging.getLogger(__name__)

STOP = ("\n", "\nQuestion:", "\nPassages:")
_CITE = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    "a an the of and or in on at to for is are was were be by with as it its this that from how what which who "
    "i you do does did not no yes can".split()
)
# Lines in a passage that mimic the prompt's own structure are neutralised so a
# document cannot start a fake question or answer.
_ROLE_LINE = re.compile(r"^(\s*)(question|answer|passages)\s*:", re.I | re.M)


def passage_header(hit: Hit) -> str:
    c = hit.chunk
    name = Path(c.source).name or c.source
    where = f", page {c.page}" if c.page is not None else ""
    section = f" ({c.section})" if c.section else ""
    return f"{name}{where}{section}"


def sanitize(text: str) -> str:
    return _ROLE_LINE.sub(lambda m: f"{m.group(1)}{m.group(2)} -", text.replace("\r", "")).strip()


def format_passages(hits: Sequence[Hit]) -> str:
    return "\n\n".join(f"[{i}] {passage_header(h)}\n{sanitize(h.chunk.text)}" for i, h in enumerate(hits, 1))


def format_history(history: Sequence[tuple[str, str]]) -> str:
    lines = []
    for q, a in history:
        lines.append(f"Question: {q.strip()}\nAnswer: {a.strip()}\n")
    return "\n".join(lines)


def build_prompt(question: str, hits: Sequence[Hit], history: Sequence[tuple[str, str]] = ()) -> str:
    """The answer prompt from ``prompts/answer.txt``."""
    return load_prompt("answer").format(
        passages=format_passages(hits),
        history=format_history(history),
        question=" ".join(question.split()),
    )


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 1}


def cite(text: str, hits: Sequence[Hit]) -> tuple[str, tuple[Citation, ...]]:
    """Map [n] markers in ``text`` to passages; drop (and log) markers outside the context.

    When the text cites nothing, the passage sharing the most content words with
    it is attached as an *inferred* citation (none if nothing is shared).
    """

    def make(n: int, inferred: bool = False) -> Citation:
        c = hits[n - 1].chunk
        return Citation(n, c.id, c.doc_id, c.source, c.page, c.section, c.text, inferred)

    numbers: list[int] = []
    bad: list[int] = []

    def fix(match: re.Match) -> str:
        keep = []
        for part in match.group(1).split(","):
            n = int(part)
            if 1 <= n <= len(hits):
                keep.append(n)
                if n not in numbers:
                    numbers.append(n)
            else:
                bad.append(n)
        return "".join(f"[{n}]" for n in keep)

    cleaned = _CITE.sub(fix, text).strip()
    if bad:
        log.warning("dropped citations to passages not in the context: %s", sorted(set(bad)))
    if numbers:
        return cleaned, tuple(make(n) for n in numbers)
    words = _words(cleaned)
    if not words or not hits:
        return cleaned, ()
    overlap = [len(words & _words(h.chunk.text)) for h in hits]
    best = max(range(len(hits)), key=lambda i: (overlap[i], -i))
    return cleaned, ((make(best + 1, inferred=True),) if overlap[best] > 0 else ())
