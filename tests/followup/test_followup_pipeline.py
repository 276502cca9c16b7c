"""A pronoun follow-up on a tiny knowledge base: ``entities`` retrieves what the oracle query retrieves,
``none`` does not; the trace shows the rewritten query and the prompt keeps the user's words."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import ScriptedEngine

# Each passage is one small Markdown document (one chunk). The follow-up "Who was its first president?"
# leans on the first turn's answer (the American Psychological Association).
DOCS = {
    "journal.md": "# Journal of Psychotherapy Integration\n\nThe Journal of Psychotherapy Integration is a quarterly "
    "academic journal published by the American Psychological Association.",
    "apa.md": "# American Psychological Association\n\nG. Stanley Hall was the first president of the American "
    "Psychological Association when it was founded in 1892 at Clark University.",
    "usa.md": "# President of the United States\n\nGeorge Washington was the first president of the United States; "
    "he took office in 1789 after the first presidential election.",
    "club.md": "# Riverside Football Club\n\nThe first president of the Riverside Football Club was a local "
    "baker who also founded the town's brass band.",
    "otters.md": "# Sea otter\n\nSea otters use stones as tools to crack open shellfish while floating on their backs.",
}
FIRST = "Who publishes the Journal of Psychotherapy Integration?"
FIRST_ANSWER = "The journal is published by the American Psychological Association [1]."
FOLLOWUP = "Who was its first president?"
ORACLE = "Who was the first president of the American Psychological Association?"
HISTORY = [(FIRST, FIRST_ANSWER)]


@pytest.fixture
def kb(docs_kb):
    return lambda **changes: docs_kb(DOCS, **changes)


def sources(hits) -> list[str]:
    return [Path(h.chunk.source).name for h in hits]


def test_entities_retrieves_what_the_oracle_retrieves_and_none_does_not(kb):
    rag = kb(top_k=1)
    oracle = sources(rag.retrieve(ORACLE))
    assert oracle == ["apa.md"]
    entities = rag.rewrite(FOLLOWUP, HISTORY, followup_rewrite="entities")
    assert entities.followup and "American Psychological Association" in entities.query
    assert sources(rag.retrieve(entities.query)) == oracle
    none = rag.rewrite(FOLLOWUP, HISTORY, followup_rewrite="none")
    assert none.query == FOLLOWUP
    assert sources(rag.retrieve(none.query)) != oracle
    # Through the whole answer path (no LLM: extractive), with and without rewriting.
    answered = rag.ask(FOLLOWUP, HISTORY, answer_mode="extractive", followup_rewrite="entities")
    assert sources(answered.passages) == oracle and "G. Stanley Hall" in answered.text
    as_typed = rag.ask(FOLLOWUP, HISTORY, answer_mode="extractive", followup_rewrite="none")
    assert sources(as_typed.passages) != oracle


def test_the_trace_shows_the_rewrite_and_the_prompt_keeps_the_users_words(kb):
    engine = ScriptedEngine(default="G. Stanley Hall [1].")
    rag = kb(engine=engine, top_k=2)
    answer = rag.ask(FOLLOWUP, HISTORY, answer_mode="generative", followup_rewrite="entities")
    step = answer.trace.steps[0]
    assert step.name == "followup" and step.detail["mode"] == "entities" and step.detail["rewritten"]
    assert step.query.startswith("Who was American Psychological Association's first president?")
    assert step.detail["question"] == FOLLOWUP
    assert answer.trace.steps[1].query == step.query  # retrieval searched the rewritten query
    prompt = str(engine.prompts[-1])
    assert FOLLOWUP in prompt and step.query not in prompt
    assert answer.question == FOLLOWUP and "apa.md" in sources(answer.passages)


def test_auto_is_entities_and_llm_asks_the_engine(kb):
    chat = ScriptedEngine(default=ORACLE, takes_messages=True)
    rag = kb(engine=chat)
    assert rag.rewrite(FOLLOWUP, HISTORY).mode == "entities" and not chat.prompts  # auto: no LLM call
    rewritten = rag.rewrite(FOLLOWUP, HISTORY, followup_rewrite="llm")
    assert rewritten.mode == "llm" and rewritten.query == ORACLE and len(chat.prompts) == 1
    answer = rag.ask(FOLLOWUP, HISTORY, answer_mode="extractive", followup_rewrite="llm")
    assert answer.trace.steps[0].query == ORACLE and "apa.md" in sources(answer.passages)


def test_a_first_question_is_retrieved_as_typed_without_a_trace_step(kb):
    rag = kb(engine=ScriptedEngine(takes_messages=True))  # no replies: the rewriter must not call it
    assert rag.rewrite(FOLLOWUP).query == FOLLOWUP
    answer = rag.ask(FIRST, answer_mode="extractive", followup_rewrite="llm")
    assert all(s.name != "followup" for s in answer.trace.steps)
