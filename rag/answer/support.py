"""Is an answer sentence supported by the passages? A lexical check a reader can follow.

A sentence is supported when its content words (question words and stopwords
aside) are found in one evidence window of a passage (a sentence and its
neighbour), and so is every number and capitalised name it states. Small
models invent names and figures; this catches exactly those.

A supported sentence can still add a word the passage does not have ("crabs,
clams and other sea animals"). :attr:`Support.unverified` gives the character
spans of those words, so the reader sees which words no passage backs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from rag.evidence.base import Sentence

# "born" / "borne", "films" / "film": compare words by their first letters.
STEM = 5
MIN_COVERAGE = 0.6
_TOKEN = re.compile(r"[^\W_]+(?:[.,'][^\W_]+)*", re.U)
_MARKER = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
_STOP = frozenset(
    """a an the of and or but in on at to for from by with as is are was were be been being it its this that these
    those there their they them he she his her him who whom whose which what when where why how do does did done
    not no yes can could would should will may might must has have had having than then so such also only just very
    about into over under after before between during while if else i you we our your my me us one ones any some
    all each other more most many much same both either neither according passage passages document documents say
    says said answer question""".split()
)


def _norm(word: str) -> str:
    w = word.lower().replace(",", "")
    return w if w.replace(".", "").isdigit() else w[:STEM]


def content_words(text: str) -> list[str]:
    """The words of ``text`` that carry content (no stopwords, no citation markers)."""
    return [text[a:b] for a, b in content_spans(text)]


def content_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of the content words of ``text`` (citation markers blanked, so offsets stay those of ``text``)."""
    blanked = _MARKER.sub(lambda m: " " * len(m.group()), text)
    return [
        m.span() for m in _TOKEN.finditer(blanked)
        if m.group().lower() not in _STOP and (len(m.group()) > 1 or m.group().isdigit())
    ]


def _strict(words: Sequence[str], first: str) -> set[str]:
    """Numbers and names (capitalised words not at the sentence start) must appear in the evidence."""
    out = set()
    for w in words:
        if any(ch.isdigit() for ch in w) or (w[:1].isupper() and w != first):
            out.add(_norm(w))
    return out


@dataclass(frozen=True)
class Support:
    supported: bool
    score: float  # share of the sentence's new content words found in the best window
    hits: tuple[int, ...]  # passages (indices) whose window supports it
    # (start, end) offsets in the sentence of its content words that the best window does not contain
    unverified: tuple[tuple[int, int], ...] = ()


def check(sentence: str, question: str, sentences: Sequence[Sentence]) -> Support:
    """Check one answer sentence against the passages' sentences (``Sentence.hit`` groups them by passage)."""
    spans = content_spans(sentence)
    words = [sentence[a:b] for a, b in spans]
    asked = {_norm(w) for w in content_words(question)}
    new = [w for w in words if _norm(w) not in asked]
    if not new:
        # Nothing beyond the question's own words (or "I don't know."): it states nothing checkable.
        return Support(False, 0.0, ())
    need = {_norm(w) for w in new}
    strict = _strict(new, words[0] if words else "")
    best, where, best_window = 0.0, [], set()
    by_hit: dict[int, list[set[str]]] = {}
    for s in sentences:
        by_hit.setdefault(s.hit, []).append({_norm(w) for w in content_words(s.text)})
    for hit, bags in by_hit.items():
        for i, bag in enumerate(bags):
            window = bag | (bags[i + 1] if i + 1 < len(bags) else set()) | (bags[i - 1] if i else set())
            if not strict <= window:
                continue
            score = len(need & window) / len(need)
            if score > best + 1e-9:
                best, where, best_window = score, [hit], window
            elif abs(score - best) <= 1e-9 and score > 0 and hit not in where:
                where.append(hit)
    if best < MIN_COVERAGE:
        return Support(False, round(best, 4), ())
    known = asked | best_window
    unverified = tuple((a, b) for a, b in spans if _norm(sentence[a:b]) not in known)
    return Support(True, round(best, 4), tuple(where), unverified)
