"""An uncertain referent: the rewrite's alternatives (one search per candidate name, and the question as
typed) are retrieved and fused, so the passage about the name meant is found when the best-scoring name is
the wrong one (an extractive previous answer quotes passages full of names)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.followup.base import FollowupContext, fuse, retrieve_fused
from rag.followup.entities import AS_TYPED_WEIGHT, FUSE_CANDIDATES, EntityRewriter, candidates
from rag.strategies.hops import NameIndex
from rag.types import Chunk, Hit

# The first answer quotes passages, as the extractive answer mode does; the singer asked about is in the last
# quote, so the band's name scores best and the singer's too little to be appended to the query.
FIRST = "Who recorded the single Hello Love?"
FIRST_ANSWER = ("\u201cSwitchfoot recorded a song of that name in 2003.\u201d [2] "
                "\u201cLifehouse covered it.\u201d [3] "
                "\u201cDaughtry sang it live.\u201d [4] \u201cThe 1974 single was by Hank Snow.\u201d [1]")
FOLLOWUP = "What city did he live in when he died?"
DOCS = {
    "hello.md": "# Country singles of 1974\n\n\"Hello Love\" is a 1974 single by Hank Snow.",
    "song.md": "# Hello Love (Switchfoot song)\n\nSwitchfoot recorded a song of that name in 2003.",
    "snow.md": "# Hank Snow\n\nThe country singer spent his last years in Madison, Tennessee, the city where he "
    "lived when he died in 1999.",
    "switchfoot.md": "# Switchfoot\n\nSwitchfoot is an alternative rock band from San Diego whose songs are "
    "about love and doubt.",
    "tour.md": "# Switchfoot tour\n\nThe Switchfoot tour of 2009 took the band to every city where they had lived.",
    "otters.md": "# Sea otter\n\nSea otters use stones as tools to crack open shellfish while floating.",
}


def hit(cid: str, score: float = 1.0) -> Hit:
    return Hit(Chunk(id=cid, doc_id=cid, text=cid, source=f"{cid}.md"), score)


def names_of_docs() -> NameIndex:
    chunks = []
    for name, text in DOCS.items():
        title, body = text[2:].split("\n\n", 1)
        chunks.append(Chunk(id=name, doc_id=name, text=body, source=name, title=title))
    return NameIndex.build(chunks)


def test_the_rewrite_carries_one_search_per_best_name_and_the_question_as_typed():
    index = names_of_docs()
    ctx = FollowupContext(FOLLOWUP, [(FIRST, FIRST_ANSWER)], names=lambda: index)
    found = candidates(ctx, index)
    rewrite = EntityRewriter().rewrite(ctx)
    assert found[0][0] != "Hank Snow" and "Hank Snow" in [n for n, _ in found[:FUSE_CANDIDATES]]
    queries = dict(rewrite.alternatives)
    assert "What city did Hank Snow live in when Hank Snow died?" in queries
    assert len(rewrite.alternatives) == FUSE_CANDIDATES + 1 and queries[FOLLOWUP] == AS_TYPED_WEIGHT
    best = found[0][1]
    for name, score in found[:FUSE_CANDIDATES]:  # weighted by the name's score relative to the best
        assert any(name in q and w == pytest.approx(score / best) for q, w in rewrite.alternatives)
    assert rewrite.step().detail["alternatives"][-1] == [FOLLOWUP, AS_TYPED_WEIGHT]


def test_fusion_weights_searches_and_a_repeated_query_adds_its_weight():
    rankings = {"q": [hit("a"), hit("b")], "alt": [hit("c"), hit("a")]}
    calls = []

    def search(text, n, filters):
        calls.append((text, n))
        return rankings[text][:n], []

    fused, _ = retrieve_fused(search, "q", [("alt", 1.0)], 2)
    assert calls == [("q", 4), ("alt", 4)]  # each query searched once, deeper than k
    assert [h.chunk.id for h in fused] == ["a", "c"]  # "a" is in both rankings; "c" tops one
    calls.clear()
    fused, _ = retrieve_fused(search, "q", [("alt", 1.0), ("q", 1.0)], 2)
    assert calls == [("q", 4), ("alt", 4)] and [h.chunk.id for h in fused] == ["a", "b"]  # "q" counts twice
    fused, _ = retrieve_fused(search, "q", [("alt", 0.0)], 2)
    assert [h.chunk.id for h in fused] == ["a", "b"]  # a weightless alternative is not searched
    assert [h.chunk.id for h in fuse([rankings["q"], rankings["alt"]], [1.0, 0.0], 5)] == ["a", "b", "c"]


@pytest.fixture
def rag(docs_kb):
    return docs_kb(DOCS, top_k=2)


def names(hits) -> list[str]:
    return [Path(h.chunk.source).name for h in hits]


def test_the_passage_about_the_name_meant_is_found_through_the_fused_searches(rag):
    history = [(FIRST, FIRST_ANSWER)]
    rewrite = rag.rewrite(FOLLOWUP, history, followup_rewrite="entities")
    assert "Hank Snow" not in rewrite.query.split("?")[0]  # the best-scoring name is the wrong one
    assert "snow.md" not in names(rag.retrieve(rewrite.query))  # its query alone misses the passage
    assert "snow.md" in names(rag.retrieve(rewrite.query, alternatives=rewrite.alternatives))
    answer = rag.ask(FOLLOWUP, history, answer_mode="extractive", followup_rewrite="entities")
    assert "snow.md" in names(answer.passages) and "Madison" in answer.text
    step = answer.trace.steps[0]
    assert step.name == "followup" and step.detail["alternatives"]
