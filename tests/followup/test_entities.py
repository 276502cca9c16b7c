"""The LLM-free rewriter: follow-up detection, candidate names, substitution."""

from __future__ import annotations

import pytest

from rag.followup.base import FollowupContext, is_followup
from rag.followup.entities import EntityRewriter, candidates, spans, substitute
from rag.strategies.hops import NameIndex
from rag.types import Chunk, Hit

HISTORY = [("What company published the Journal of Psychotherapy Integration?",
            "The Journal of Psychotherapy Integration is published by the American Psychological Association.")]


@pytest.mark.parametrize("question, expected", [
    ("Who was the first president of it?", True),
    ("When did she die?", True),
    ("What is its capital?", True),
    ("Who lived in that place?", True),
    ("When was that?", True),
    ("And the population?", True),
    ("What about Lyon?", True),
    ("Is there a museum in Lyon?", False),  # existential "there"
    ("Who founded the company that makes the iPhone?", False),  # relative "that"
    ("Who was the first president of the United States?", False),
])
def test_followups_are_detected(question, expected):
    assert is_followup(question, HISTORY) is expected
    assert is_followup(question, []) is False  # no history: nothing to lean on


def test_spans_drop_sentence_words_numbers_and_table_rows():
    assert spans("Several Friends met. Kansas in 1902 was dry. The American Psychological Association [2] grew.") == [
        "Friends", "Kansas", "American Psychological Association"]
    assert spans("What is the capital of France?") == ["France"]
    assert spans("State Sport Year Adopted Designation Alaska Dog Mushing Colorado Pack Burro Racing") == []


@pytest.mark.parametrize("question, expected", [
    ("Who was the first president of it?", "Who was the first president of APA?"),
    ("What is its capital?", "What is APA's capital?"),
    ("When did he die and where was he buried?", "When did APA die and where was APA buried?"),
    ("What happened in that place?", "What happened in APA?"),
    ("What is the weather like there?", "What is the weather like in APA?"),
    ("And the population?", "And the population? APA"),  # elliptic: the name is appended
])
def test_substitute(question, expected):
    assert substitute(question, "APA") == expected


def test_the_answer_name_beats_the_previous_questions_subject():
    found = [name for name, _ in candidates(FollowupContext("Who was its first president?", HISTORY))]
    assert found[0] == "American Psychological Association"
    assert found.index("Journal of Psychotherapy Integration") > 0


def test_a_name_the_knowledge_base_has_a_page_about_wins():
    # Two new names in the answer, as rare as each other; the second has its own passage (a title): the
    # entity meant, although the first comes first.
    history = [("Which state is Dodge City Regional Airport in?",
                "Dodge City Regional Airport is in Ford County, Kansas.")]
    index = NameIndex.build([
        Chunk(id="k", doc_id="k", text="Kansas is a state.", source="kansas.md", title="Kansas"),
        Chunk(id="f", doc_id="f", text="Ford County lies in Kansas.", source="dodge.md", title="Dodge City"),
        Chunk(id="o", doc_id="o", text="Ford County has no otters.", source="otter.md", title="Sea otter"),
    ])
    assert index.idf["kansas"] == index.idf["ford county"]
    found = candidates(FollowupContext("What is the population of that place?", history), index)
    assert found[0][0] == "Kansas"


def test_cited_passage_titles_are_candidates():
    passages = [Hit(Chunk(id="a", doc_id="a", text="...", source="a.md", title="Bram Stoker"), 1.0)]
    history = [("Who wrote the novel?", "it was written in 1897 [1].")]
    rewrite = EntityRewriter().rewrite(FollowupContext("Where was he born?", history, passages))
    assert rewrite.query.startswith("Where was Bram Stoker born?") and rewrite.anchors[0] == "Bram Stoker"


def test_not_a_followup_or_no_names_leaves_the_question_as_typed():
    rewriter = EntityRewriter()
    plain = rewriter.rewrite(FollowupContext("Who founded the Royal Society?", HISTORY))
    assert plain.query == plain.question and not plain.followup
    nameless = rewriter.rewrite(FollowupContext("Where is it?", [("what is this", "nothing much")]))
    assert nameless.query == "Where is it?" and nameless.followup and nameless.detail["reason"]
    step = nameless.step()
    assert step.name == "followup" and step.query == "Where is it?" and step.detail["mode"] == "entities"
