"""Candidate evidence sentences: the retrieved passages cut into sentences, with offsets.

Sentence boundaries come from BlingFire (a finite-state sentence breaker, about
a microsecond per sentence). Passages extracted from PDFs need more than a
sentence breaker: their lines are hard-wrapped, and headings, option lists,
bullets and code sit on lines of their own without any full stop. So a chunk is
first cut into *blocks* of lines:

- a line break is a soft wrap (the block continues) when the line before it is
  nearly as long as the text's long lines, or ends with a hyphen or a comma, and
  the next line does not open a list item or a numbered heading;
- any other line break (a short line: heading, option name, code; a blank
  line; a bullet) ends the block.

Each block is broken into sentences by BlingFire (its line breaks read as
spaces, so offsets map one to one); short fragments without a full stop (an
option name such as ``--quiet`` above its description, a heading, a code line)
are joined to the sentence that follows them, up to :data:`MAX_CHARS`, so a
sentence carries the context it needs to be read alone. Every
:class:`Sentence` is a ``[start:end]`` slice of ``hit.chunk.text``.

Splitting is cached per chunk text (an LRU of :data:`CACHE_SIZE` chunks).
"""

from __future__ import annotations

import functools
import re
from typing import Sequence

from rag.evidence.base import Sentence
from rag.types import Hit

MAX_CHARS = 400  # a longer "sentence" (a table, a run-on list) is cut at line breaks or spaces
FRAGMENT_CHARS = 40  # a block shorter than this without a full stop is joined to the next sentence
CACHE_SIZE = 4096
JOIN_CHARS = 120  # a run of fragments longer than this (or of JOIN_FRAGMENTS) stands alone (code)
JOIN_FRAGMENTS = 3

# A line that opens a new item: bullets, numbered items/headings ("2.7.2 Block Comments", "3) ..."),
# Markdown headings, table rows and quotes.
_ITEM = re.compile(r"^\s*(?:[-*+\u2022\u25aa\u25cf\u2013\u2014>|#]\s|\d+(?:\.\d+)*[.)]?\s+\S|\(\w{1,3}\)\s)")
_END = re.compile(r"[.!?:][\"'\u2019\u201d)\]]*$")
_SOFT_END = re.compile(r"(?:[-\u00ad\ufffe,]|\w-)$")


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line without its newline."""
    out, pos = [], 0
    for line in text.split("\n"):
        out.append((pos, pos + len(line)))
        pos += len(line) + 1
    return out


def _blocks(text: str) -> list[tuple[int, int]]:
    """Spans of ``text`` that hold running prose or one stand-alone line (see the module doc)."""
    lines = [(s, e) for s, e in _lines(text)]
    lengths = sorted(len(text[s:e].rstrip()) for s, e in lines if text[s:e].strip())
    if not lengths:
        return []
    # The text's "full" line length: long lines of hard-wrapped prose are near it.
    full = lengths[int(0.9 * (len(lengths) - 1))]
    wrap_at = max(0.7 * full, 35) if full >= 45 else float("inf")
    blocks: list[tuple[int, int]] = []
    start = None
    prev, prev_end = "", 0
    for s, e in lines:
        line = text[s:e]
        stripped = line.strip()
        if not stripped:  # blank line: paragraph break
            if start is not None:
                blocks.append((start, prev_end))
            start, prev = None, ""
            continue
        lead = s + (len(line) - len(line.lstrip()))
        tail = s + len(line.rstrip())
        continues = (
            start is not None
            and not _ITEM.match(line)
            and not _END.search(prev)  # a line ending a sentence may end the block: no sentence is cut
            and (len(prev) >= wrap_at or bool(_SOFT_END.search(prev)))
        )
        if not continues:
            if start is not None:
                blocks.append((start, prev_end))
            start = lead
        prev, prev_end = stripped, tail
    if start is not None:
        blocks.append((start, prev_end))
    return blocks


def _break_long(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Cut a span longer than MAX_CHARS at line breaks, else spaces."""
    out = []
    while end - start > MAX_CHARS:
        window = text[start : start + MAX_CHARS]
        cut = window.rfind("\n")
        if cut < MAX_CHARS // 4:
            cut = window.rfind(" ")
        if cut < MAX_CHARS // 4:
            cut = MAX_CHARS
        out.append((start, start + cut))
        start += cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        out.append((start, end))
    return out


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    import blingfire

    raw: list[tuple[int, int]] = []
    for b0, b1 in _blocks(text):
        block = text[b0:b1].replace("\n", " ").replace("\r", " ").replace("\t", " ")
        try:
            _, offsets = blingfire.text_to_sentences_and_offsets(block)
        except Exception:  # noqa: BLE001 - BlingFire rejects some control characters; keep the block whole
            offsets = [(0, len(block))]
        for s, e in offsets or [(0, len(block))]:
            # BlingFire counts UTF-8 bytes in some builds: clamp and re-strip on the Python string.
            s, e = max(0, min(s, len(block))), max(0, min(e, len(block)))
            piece = block[s:e]
            if not piece.strip():
                continue
            s += len(piece) - len(piece.lstrip())
            e -= len(piece) - len(piece.rstrip())
            raw.append((b0 + s, b0 + e))
    # Join fragments (short, no full stop: an option name, a heading, a code line) to the sentence
    # that follows them; a longer run of fragments stands on its own (a code block).
    joined: list[tuple[int, int]] = []
    pending: tuple[int, int] | None = None
    count = 0  # fragments in pending
    for s, e in raw:
        fragment = e - s < FRAGMENT_CHARS and not _END.search(text[s:e])
        if pending is not None:
            if pending[1] - pending[0] > JOIN_CHARS or count >= JOIN_FRAGMENTS:
                joined.append(pending)
                count = 0
            else:
                s = pending[0]
            pending = None
        if fragment:
            pending = (s, e)
            count += 1
        else:
            joined.append((s, e))
            count = 0
    if pending is not None:
        if joined and pending[1] - pending[0] < FRAGMENT_CHARS and pending[1] - joined[-1][0] <= MAX_CHARS:
            joined[-1] = (joined[-1][0], pending[1])  # a trailing fragment stays with the sentence before it
        else:
            joined.append(pending)
    out: list[tuple[int, int]] = []
    for s, e in joined:
        out.extend(_break_long(text, s, e))
    return out




@functools.lru_cache(maxsize=CACHE_SIZE)
def split_spans(text: str) -> tuple[tuple[int, int], ...]:
    """The sentence spans ``(start, end)`` of ``text`` (cached per text)."""
    return tuple(_sentence_spans(text))


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (convenience for tests and tools)."""
    return [text[s:e] for s, e in split_spans(text)]


def candidate_sentences(hits: Sequence[Hit]) -> list[Sentence]:
    """Every sentence of every hit's chunk text, in hit order then text order."""
    out: list[Sentence] = []
    for i, hit in enumerate(hits):
        text = hit.chunk.text
        out.extend(Sentence(i, s, e, text[s:e]) for s, e in split_spans(text))
    return out
