"""LLM-free hops: the bridge passage is reached only through the first hop; stop and pruning rules."""

from __future__ import annotations

import pytest
from corpora import BRIDGE, BRIDGE_QUESTION, RESIDUAL, UNLINKED, build_kb, open_rag

from rag.strategies.hops import NameIndex, names, title_head
from rag.types import Chunk


@pytest.fixture(scope="module")
def bridge_kb(tmp_path_factory, embedder):
    return build_kb(tmp_path_factory, embedder, BRIDGE)


@pytest.fixture
def bridge_rag(bridge_kb, embedder):
    with open_rag(bridge_kb, embedder, strategy="hops") as rag:
        yield rag


def _hops(rag, question, k, **overrides):
    hits, steps = rag._retrieve(question, k, None, rag.settings.replace(**overrides))
    return [h.chunk.id for h in hits], [s for s in steps if s.name == "hop"]


def _scores(rag, question, k, **overrides):
    hits, steps = rag._retrieve(question, k, None, rag.settings.replace(**overrides))
    return {h.chunk.id: h.score for h in hits}, [s for s in steps if s.name == "hop"]


def test_names_are_capitalised_spans_and_their_words():
    found = names("Zorblax Records is a label founded in 1987 by Mirela Vantongeren. It has 200 albums.")
    assert {"zorblax records", "zorblax", "records", "mirela vantongeren", "mirela", "vantongeren", "1987"} <= found
    assert not {"is", "it", "label", "albums"} & found


def test_names_drop_possessives_and_stay_on_one_line():
    found = names("Kansas\nGisvi's home is Dodge City, Kansas.")
    assert {"kansas", "gisvi", "dodge city"} <= found
    assert not any("\n" in n or "'s" in n for n in found)  # no "kansas\ngisvi's home"
    assert title_head("West Chicago, Illinois") == "west chicago"
    assert title_head("Brother (Pearl Jam song)") == "brother"


def test_a_link_to_the_chunk_titled_by_the_name_weighs_more():
    chunks = [Chunk(id=i, doc_id=i, text=t, source="s", title=title) for i, title, t in [
        ("p", "Signmark", "Signmark competed for Finland in 2009."),
        ("f", "Finland", "Finland is a country in northern Europe."),
        ("m", "Music", "Finland had many entries."),
        ("x", "Other", "Nothing here."),
    ]]
    index = NameIndex.build(chunks)
    plain = index.links("p", exclude=set(), max_df=1.0)
    titled = index.links("p", exclude=set(), max_df=1.0, title_weight=0.5)
    assert plain["f"] == plain["m"]
    assert titled["f"] == pytest.approx(1.5 * titled["m"]) and titled["m"] == plain["m"]


def test_links_skip_question_names_and_common_names():
    chunks = [Chunk(id=str(i), doc_id=str(i), text=t, source="s") for i, t in enumerate(
        ["Alpha met Bravo in Paris.", "Bravo lives in Paris.", "Paris is big.", "Paris again.", "Charlie."]
    )]
    index = NameIndex.build(chunks)
    # 'paris' is in 4 of 5 chunks: above max_df it links nothing; 'bravo' links 0 and 1.
    assert set(index.links("0", exclude=set(), max_df=0.5)) == {"1"}
    assert index.links("0", exclude={"bravo"}, max_df=0.5) == {}


def test_second_hop_reaches_the_bridge_passage(bridge_rag):
    single = [h.chunk.id for h in bridge_rag.retrieve(BRIDGE_QUESTION, 3, strategy="single")]
    assert "mirela" not in single  # not reachable in one shot
    ids, steps = _hops(bridge_rag, BRIDGE_QUESTION, 3)
    assert ids[0] == "zorblax" and "mirela" in ids
    assert len(ids) == 3
    assert steps[1].detail["hop"] == 2 and "mirela" in steps[1].detail["new"]
    assert all(s.seconds >= 0 and s.hits for s in steps)
    # Name links alone (no lexical queries) put the bridge right after the passage that names it.
    ids, _ = _hops(bridge_rag, BRIDGE_QUESTION, 3, hop_lexical_weight=0.0)
    assert ids[:2] == ["zorblax", "mirela"]


@pytest.fixture(scope="module")
def residual_kb(tmp_path_factory, embedder):
    return build_kb(tmp_path_factory, embedder, RESIDUAL)


@pytest.fixture
def residual_rag(residual_kb, embedder):
    # Seven chunks: names in up to three of them count as rare.
    with open_rag(residual_kb, embedder, strategy="hops", hop_max_df=0.5) as rag:
        yield rag


def test_the_residual_question_ranks_the_answering_bridge_first(residual_rag):
    links_only, _ = _scores(residual_rag, BRIDGE_QUESTION, 7, hop_residual_weight=0.0, hop_lexical_weight=0.0)
    residual, _ = _scores(residual_rag, BRIDGE_QUESTION, 7, hop_lexical_weight=0.0)
    # Both are linked through the founder's name; only "bassoon" has the words the label's passage lacks.
    assert links_only["bassoon"] - links_only["festival"] < 0.05
    assert residual["bassoon"] - residual["festival"] > 0.1
    assert residual["festival"] == pytest.approx(links_only["festival"], abs=1e-6)


def test_a_lexical_query_reaches_a_chunk_no_name_links(residual_rag):
    single = {h.chunk.id: h.score for h in residual_rag.retrieve(BRIDGE_QUESTION, 7, strategy="single")}
    assert "orchestra" not in list(single)[:3]
    off, _ = _scores(residual_rag, BRIDGE_QUESTION, 7, hop_lexical_weight=0.0)
    on, steps = _scores(residual_rag, BRIDGE_QUESTION, 7)
    assert off["orchestra"] == pytest.approx(single["orchestra"], abs=1e-6)  # nothing links it
    assert on["orchestra"] > off["orchestra"] + 0.1
    query = steps[1].detail["queries"]["zorblax"]
    assert "vantongeren" in query and "instrument" in query and "zorblax" not in query.split()
    ids, _ = _hops(residual_rag, BRIDGE_QUESTION, 3)
    assert "orchestra" in ids


@pytest.mark.parametrize("k", [1, 2, 4])
def test_evidence_budget(bridge_rag, k):
    ids, _ = _hops(bridge_rag, BRIDGE_QUESTION, k, hops=3)
    assert len(ids) == k


def test_branches_are_the_true_top_by_score(bridge_rag):
    _, steps = _hops(bridge_rag, BRIDGE_QUESTION, 3, hop_branches=2)
    first = [cid for cid, _ in steps[0].hits]
    scores = [score for _, score in steps[0].hits]
    assert scores == sorted(scores, reverse=True)
    assert steps[1].detail["branches"] == first[:2]


def test_expanded_passages_spawn_nothing_again(bridge_rag):
    _, steps = _hops(bridge_rag, BRIDGE_QUESTION, 3, hops=3, hop_branches=2)
    assert len(steps) == 3
    assert not set(steps[1].detail["branches"]) & set(steps[2].detail["branches"])


def test_stops_when_nothing_links(tmp_path_factory, embedder):
    rag = open_rag(build_kb(tmp_path_factory, embedder, UNLINKED), embedder, strategy="hops")
    single = [h.chunk.id for h in rag.retrieve("Which fruit is dried to make prunes?", 2, strategy="single")]
    ids, steps = _hops(rag, "Which fruit is dried to make prunes?", 2, hops=5)
    assert ids == single
    assert [s.detail["hop"] for s in steps] == [1, 2]  # hop 2 found no link: stop


def test_linked_passages_respect_filters(bridge_rag):
    hits = bridge_rag.retrieve(BRIDGE_QUESTION, 3, filters={"source": "zorblax.txt"})
    assert [h.chunk.id for h in hits] == ["zorblax"]
