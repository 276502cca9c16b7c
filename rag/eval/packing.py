"""Packed evaluation corpora: N passages per Markdown document, segmented like user files.

MuSiQue passages (~100 words) are shorter than a chunk, so with one passage per
document every segmenter returns the passage itself and comparing segmenters
says nothing. Packing N passages into one Markdown document, each under a
``## title`` heading, makes the configured segmenter (and chunk size) decide
where chunks start and end. Passages are ordered by their id (a hash of title
and text): deterministic, and unlike corpus order (grouped by question in
MuSiQue) it does not put a question's passages next to each other.

A retrieved chunk stands for every passage whose block (heading and text) its
character span overlaps; a ranking of chunks becomes a ranking of passages in
order of first appearance, so passage-level metrics apply unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from rag.errors import ConfigError
from rag.types import Hit


@dataclass(frozen=True)
class PassageSpan:
    """Where one passage's block (its heading and text) sits in a packed document."""

    start: int
    end: int
    passage_id: str


@dataclass(frozen=True)
class PackedDoc:
    """One packed document: ``name`` is the source it is ingested under."""

    name: str
    text: str
    spans: tuple[PassageSpan, ...]

    def passages_in(self, start: int, end: int) -> list[str]:
        """Ids of the passages whose blocks overlap the character span ``[start, end)``, in document order."""
        return [s.passage_id for s in self.spans if s.start < end and start < s.end]


def pack_passages(passages: Sequence, n: int) -> list[PackedDoc]:
    """Pack ``passages`` (objects with ``id``, ``title``, ``text``) ``n`` per Markdown document."""
    if n < 1:
        raise ConfigError(f"--pack {n} must be at least 1 (passages per document)")
    ordered = sorted(passages, key=lambda p: p.id)
    docs: list[PackedDoc] = []
    for first in range(0, len(ordered), n):
        parts: list[str] = []
        spans: list[PassageSpan] = []
        offset = 0
        for p in ordered[first:first + n]:
            # One line per title: a newline in a title would end the heading early.
            block = f"## {' '.join(p.title.split()) or p.id}\n\n{p.text.strip()}"
            spans.append(PassageSpan(offset, offset + len(block), p.id))
            parts.append(block)
            offset += len(block) + 2  # the blank line between blocks
        # The name becomes the document title (the file stem); no '# ' heading, so no
        # passage title is prepended to every chunk of the document.
        docs.append(PackedDoc(f"pack-{first // n + 1:05d}.md", "\n\n".join(parts) + "\n", tuple(spans)))
    return docs


class PackedIndex:
    """Maps retrieved chunks of a packed knowledge base back to passages."""

    def __init__(self, docs: Iterable[PackedDoc]) -> None:
        self.docs = {d.name: d for d in docs}

    def passage_ids(self, hits: Iterable[Hit]) -> list[str]:
        """Passages of ``hits`` in order of first appearance, each once."""
        seen: dict[str, None] = {}
        for hit in hits:
            doc = self.docs.get(hit.chunk.source)
            if doc is None:
                raise ConfigError(
                    f"chunk {hit.chunk.id} comes from {hit.chunk.source!r}, not a packed document of this dataset"
                )
            for pid in doc.passages_in(hit.chunk.start, hit.chunk.end):
                seen.setdefault(pid, None)
        return list(seen)
