"""LLM-driven hops: the engine writes the next sub-question or stops; works with any Engine."""

from __future__ import annotations

import functools

import pytest
from corpora import BRIDGE, BRIDGE_QUESTION, build_kb, open_rag
from fakes import ScriptedEngine as _Scripted

from rag.strategies.llm_hops import parse_follow_up

# Out of script, the LLM says it has enough.
ScriptedEngine = functools.partial(_Scripted, default="Enough")


@pytest.mark.parametrize(
    "reply, expected",
    [
        (" What instrument did Mirela Vantongeren play?\nmore", "What instrument did Mirela Vantongeren play?"),
        ("Follow-up: Who founded it?", "Who founded it?"),
        ("Enough", None),
        (" enough.", None),
        ("", None),
    ],
)
def test_parse_follow_up(reply, expected):
    assert parse_follow_up(reply) == expected


@pytest.fixture(scope="module")
def bridge_kb(tmp_path_factory, embedder):
    return build_kb(tmp_path_factory, embedder, BRIDGE)


@pytest.fixture
def run(bridge_kb, embedder):
    def go(engine, k=3, **overrides):
        with open_rag(bridge_kb, embedder, engine=engine, strategy="llm-hops", **overrides) as rag:
            hits, steps = rag._retrieve(BRIDGE_QUESTION, k, None, rag.settings)
        return [h.chunk.id for h in hits], steps

    return go


def test_follow_up_question_reaches_the_bridge(run):
    engine = ScriptedEngine("What instrument did Mirela Vantongeren play?")
    ids, steps = run(engine)
    assert ids[:2] == ["zorblax", "mirela"] and len(ids) == 3
    assert "Zorblax Records is an independent record label" in engine.prompts[0]
    assert steps[1].query == "What instrument did Mirela Vantongeren play?" and steps[1].detail["hop"] == 2


def test_enough_stops_with_first_hop_evidence(run):
    engine = ScriptedEngine("Enough")
    ids, steps = run(engine, hops=4)
    assert len(engine.prompts) == 1
    assert steps[-1].detail["stop"] == "enough"
    assert ids == [cid for cid, _ in steps[0].hits]


def test_repeated_query_stops(run):
    engine = ScriptedEngine(BRIDGE_QUESTION)
    _, steps = run(engine, hops=4)
    assert len(engine.prompts) == 1 and steps[-1].detail["stop"] == "repeat"


def test_hop_limit_and_budget(run):
    engine = ScriptedEngine("Who is Mirela Vantongeren?", "What do sea otters use stones for?", "never asked")
    ids, steps = run(engine, k=4, hops=3)
    assert len(engine.prompts) == 2 and len(ids) == 4
    assert len(set(ids)) == 4
    engine = ScriptedEngine("never asked")
    run(engine, hops=1)
    assert engine.prompts == []


@pytest.mark.slow
def test_real_local_engine(run, engine):
    ids, steps = run(engine, k=1, hops=2)
    assert len(ids) == 1 and len(steps) == 2
    assert steps[1].detail["reply"] is not None
