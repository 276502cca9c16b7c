"""The support check behind ``grounded`` answers: a sentence is supported when a passage states it."""

from __future__ import annotations

import pytest

from rag.answer.support import check, content_words
from rag.evidence.base import Sentence

PASSAGE = [
    Sentence(0, 0, 60, "The Eiffel Tower is in Paris. It was finished in 1889."),
    Sentence(0, 61, 120, "Gustave Eiffel's company designed and built the tower."),
    Sentence(1, 0, 50, "Sea otters use stones as tools to crack open shells."),
]
QUESTION = "When was the Eiffel Tower finished?"


@pytest.mark.parametrize(
    "sentence, supported",
    [
        ("The Eiffel Tower was finished in 1889 [1].", True),
        ("It was finished in 1889.", True),
        ("Gustave Eiffel's company built it.", True),
        ("The Eiffel Tower was finished in 1887 [1].", False),  # a number the passages do not state
        ("Victor Hugo finished the tower in 1889.", False),  # a name the passages do not state
        ("The tower was painted blue by volunteers.", False),  # words no passage has
        ("I don't know.", False),  # states nothing
        ("When was the Eiffel Tower finished?", False),  # only restates the question
    ],
)
def test_check(sentence, supported):
    verdict = check(sentence, QUESTION, PASSAGE)
    assert verdict.supported is supported, verdict
    if supported:
        assert verdict.hits == (0,) and verdict.score >= 0.6


def test_support_needs_one_window_not_the_whole_context():
    # "otters" and "1889" are both in the passages, but in no single window: not supported.
    assert not check("Otters were finished in 1889.", QUESTION, PASSAGE).supported


def test_content_words_ignore_markers_and_stopwords():
    assert content_words("It was finished in 1889 [1][2].") == ["finished", "1889"]


def test_supported_sentence_names_the_words_no_passage_has():
    # The observed failure: a supported sentence that adds "and other sea animals" to what the passage says.
    passage = [Sentence(0, 0, 99, "A sea otter eats mostly sea urchins, crabs and clams every day.")]
    sentence = "Sea otters eat sea urchins, crabs, clams, and other sea animals [1]."
    verdict = check(sentence, "What do sea otters eat?", passage)
    assert verdict.supported
    assert [sentence[a:b] for a, b in verdict.unverified] == ["animals"]
    assert check("Sea otters eat sea urchins and crabs [1].", "What do sea otters eat?", passage).unverified == ()
