"""Packing passages into documents and mapping chunk spans back to passages."""

from __future__ import annotations

import pytest

from rag import ConfigError
from rag.eval.dataset import Passage
from rag.eval.packing import PackedIndex, pack_passages
from rag.types import Chunk, Hit

PASSAGES = [Passage("p3", "Gamma", "Third text."), Passage("p1", "Alpha", "First text."),
            Passage("p2", "Beta\nsplit", "Second text.")]


def _hit(source: str, start: int, end: int) -> Hit:
    return Hit(Chunk(id=f"{source}:{start}", doc_id="d", text="", source=source, start=start, end=end), score=1.0)


def test_passages_are_packed_in_id_order_under_headings():
    docs = pack_passages(PASSAGES, 2)
    assert [d.name for d in docs] == ["pack-00001.md", "pack-00002.md"]
    assert docs[0].text == "## Alpha\n\nFirst text.\n\n## Beta split\n\nSecond text.\n"
    assert docs[1].text == "## Gamma\n\nThird text.\n"
    # Each span is exactly its passage's block: heading and text.
    assert [(docs[0].text[s.start:s.end], s.passage_id) for s in docs[0].spans] == [
        ("## Alpha\n\nFirst text.", "p1"), ("## Beta split\n\nSecond text.", "p2")]
    with pytest.raises(ConfigError, match="--pack 0"):
        pack_passages(PASSAGES, 0)


def test_chunk_spans_map_to_overlapped_passages_in_first_appearance_order():
    docs = pack_passages(PASSAGES, 2)
    first, second = docs[0].spans
    index = PackedIndex(docs)
    assert docs[0].passages_in(first.start, first.end) == ["p1"]
    assert docs[0].passages_in(first.end, second.start) == []  # only the blank line between blocks
    assert docs[0].passages_in(first.end - 1, second.start + 1) == ["p1", "p2"]
    ranking = index.passage_ids([
        _hit("pack-00001.md", second.start + 3, second.end),  # inside Beta
        _hit("pack-00002.md", 0, 5),  # Gamma's heading
        _hit("pack-00001.md", 0, second.start + 1),  # straddles Alpha and Beta: Beta is already ranked
    ])
    assert ranking == ["p2", "p3", "p1"]
    with pytest.raises(ConfigError, match="not a packed document"):
        index.passage_ids([_hit("other.md", 0, 5)])
