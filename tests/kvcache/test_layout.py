"""Conversation-stable prompt layout: the prompt prefix is byte-identical across turns."""

from __future__ import annotations

from pathlib import Path

from fakes import ScriptedEngine

from rag.conversation import Conversation, Conversations
from rag.generate import build_prompt
from rag.types import Chunk, Hit, Prompt

DOCS = Path(__file__).resolve().parent.parent / "fixtures" / "kvcache"


def _hit(i: int, score: float = 1.0) -> Hit:
    return Hit(Chunk(id=f"c{i}", doc_id=f"d{i}", text=f"Passage number {i} says something.", source=f"doc{i}.md"), score)


def test_old_passages_keep_positions_and_new_ones_are_appended():
    conv = Conversation(max_passages=5)
    first = conv.arrange([_hit(1), _hit(2), _hit(3)])
    second = conv.arrange([_hit(4), _hit(2), _hit(1)])  # new relevance order, one new passage
    assert [h.chunk.id for h in first] == ["c1", "c2", "c3"]
    assert [h.chunk.id for h in second] == ["c1", "c2", "c3", "c4"]
    # Over the limit: passages this turn did not retrieve are dropped, the rest keep their order.
    third = conv.arrange([_hit(5), _hit(6), _hit(1), _hit(4)])
    assert [h.chunk.id for h in third] == ["c1", "c4", "c5", "c6"]
    # Without a session the relevance order is kept.
    assert [h.chunk.id for h in Conversations().arrange(None, [_hit(2), _hit(1)], 4)] == ["c2", "c1"]


def test_prompt_prefix_is_byte_identical_across_turns():
    conv = Conversation(max_passages=10)
    turn1 = build_prompt("What is one?", conv.arrange([_hit(1), _hit(2)]))
    turn2 = build_prompt("And three?", conv.arrange([_hit(3), _hit(1)]), [("What is one?", "One [1].")])
    turn3 = build_prompt(
        "And two?", conv.arrange([_hit(2), _hit(3)]), [("What is one?", "One [1]."), ("And three?", "Three [3].")]
    )
    assert isinstance(turn1, Prompt)
    # Turn 1's instructions and passages are a prefix of turn 2 (its passage 3 is appended after them).
    end_of_passages_1 = turn1.snapshots[1]
    assert turn2.text.startswith(turn1.text[:end_of_passages_1])
    # Turn 3 retrieves nothing new: everything up to turn 2's question line is reused.
    question_line_2 = turn2.snapshots[-1]
    assert turn3.text.startswith(turn2.text[:question_line_2])
    assert turn3.text[question_line_2:].startswith("Question: And three?\nAnswer: Three [3].\n")
    # Snapshots: end of the instructions, of the passages, of the history (all segment boundaries).
    for p in (turn1, turn2, turn3):
        assert set(p.snapshots) <= set(p.boundaries)
        assert p.snapshots[0] == p.text.rindex("Passages:\n") + len("Passages:\n")  # end of the static instructions
        assert p.text[p.snapshots[-1]:].startswith("Question: ")


def test_rag_stream_keeps_the_prefix_stable_within_a_session(make_rag):
    # Records the prompts RAG sends (the prompt layout is under test, not the LLM).
    engine = ScriptedEngine(default="It is in the passages [1].")
    rag = make_rag(engine=engine, top_k=2)
    assert rag.ingest([DOCS]).ok
    questions = ["What guided sailors into Alexandria?", "What causes tides?", "How long is a lunar day?"]
    history: list[tuple[str, str]] = []
    answers = []
    for q in questions:
        answer = rag.ask(q, history, session="s1")
        answers.append(answer)
        history.append((q, answer.text))
    p = engine.prompts
    assert engine.sessions == ["s1"] * 3
    for before, after in zip(p, p[1:]):
        # The earlier turn's passages block is a byte-identical prefix of the next prompt.
        assert after.text.startswith(before.text[: before.snapshots[1]])
    # Earlier passages kept their numbers, so citations of later turns still map to them.
    first_ids = [h.chunk.id for h in answers[0].passages]
    assert [h.chunk.id for h in answers[-1].passages][: len(first_ids)] == first_ids
    # order="relevance" (and no session) does not keep earlier passages.
    plain = make_rag(engine=engine, top_k=2, order="relevance")
    last = plain.ask(questions[-1], session="s2")
    assert len(last.passages) == 2
