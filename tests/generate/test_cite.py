"""Citation mapping: [n] markers map to the n-th passage of the prompt; others are dropped and logged."""

from __future__ import annotations

import logging

from rag.conversation import Conversation
from rag.generate import build_prompt, cite
from rag.types import Chunk, Hit


def _hit(i: int, text: str, page: int | None = None, section: str = "") -> Hit:
    chunk = Chunk(id=f"k{i}", doc_id=f"doc{i}", text=text, source=f"/kb/file{i}.pdf", page=page, section=section)
    return Hit(chunk, score=1.0)


HITS = [
    _hit(1, "Otters crack shellfish with stones.", page=3, section="Tools"),
    _hit(2, "Etna is a volcano in Sicily. " * 20, page=7),
]


def test_markers_map_to_source_page_section_and_snippet():
    text, cites = cite("Otters use stones [1]. Etna is in Sicily [2].", HITS)
    assert text == "Otters use stones [1]. Etna is in Sicily [2]."
    first, second = cites
    assert (first.number, first.chunk_id, first.doc_id, first.source, first.page, first.section) == (
        1, "k1", "doc1", "/kb/file1.pdf", 3, "Tools"
    )
    assert not first.inferred and first.snippet == HITS[0].chunk.text
    assert second.page == 7 and len(second.snippet) <= 240 and second.snippet.endswith("...")
    assert second.to_dict()["snippet"] == second.snippet


def test_out_of_context_markers_are_dropped_and_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="rag.generate"):
        text, cites = cite("Stones [1, 3]. Lava [0]. Sicily [2][12].", HITS)
    assert [c.number for c in cites] == [1, 2]
    assert "[3]" not in text and "[0]" not in text and "[12]" not in text
    assert "[1]" in text and "[2]" in text
    assert "not in the context: [0, 3, 12]" in caplog.text


def test_repeated_markers_give_one_citation_each_in_first_use_order():
    _, cites = cite("Sicily [2]. Stones [1]. Again [2, 1].", HITS)
    assert [c.number for c in cites] == [2, 1]


def test_only_invalid_markers_fall_back_to_an_inferred_citation(caplog):
    text, cites = cite("Etna is a volcano in Sicily [5].", HITS)
    assert text == "Etna is a volcano in Sicily ."
    assert len(cites) == 1 and cites[0].number == 2 and cites[0].inferred
    assert cite("Anything [1].", [])[1] == ()


def test_numbers_follow_the_conversation_stable_prompt_order():
    """After reordering, [n] still means the n-th passage shown in the prompt."""
    conv = Conversation(max_passages=4)
    conv.arrange([HITS[0]])
    context = conv.arrange([HITS[1], HITS[0]])  # relevance puts Etna first; the prompt keeps otters first
    prompt = build_prompt("Where is Etna?", context)
    assert prompt.text.index("[1] file1.pdf") < prompt.text.index("[2] file2.pdf")
    _, cites = cite("In Sicily [2].", context)
    assert cites[0].chunk_id == "k2"
