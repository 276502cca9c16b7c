"""Abstaining: a name of the question nowhere in the knowledge base, or no evidence above the threshold."""

from __future__ import annotations

import pytest
from fakes import FailingEngine
from kb_fixture import OTTER_QUESTION, build_kb

from rag import RAG
from rag.answer.abstain import IndexMentions, Mentions, question_names, should_abstain, unknown_names
from rag.answer.base import ABSTAIN_TEXT, ABSTAIN_UNKNOWN_TEXT
from rag.evidence.base import Evidence, Sentence


@pytest.fixture(scope="module")
def kb(tmp_path_factory, embedder):
    settings = build_kb(tmp_path_factory.mktemp("abstain"), embedder)
    extra = tmp_path_factory.mktemp("extra") / "painter.md"
    extra.write_text(
        "# Akinosh\u016b Kenji\n\n"
        "Akinosh\u016b Kenji was a painter born in Hiroshima in 1910 by the Tekez\u00e9 river.\n"
    )
    with RAG(settings, embedder=embedder) as rag:
        assert rag.ingest([extra]).ok
    return settings


class Known:
    """A knowledge base that mentions exactly these names."""

    def __init__(self, *names: str) -> None:
        self.names = set(names)

    def mentions(self, name: str) -> bool:
        return name.lower() in self.names


def test_question_names_are_name_words_and_multi_word_spans():
    q = "Where did the band form that made the live album Maiden Japan with Akinosh\u016b's help?"
    assert question_names(q) == ["Akinosh\u016b", "Japan", "Maiden", "Maiden Japan"]
    # A sentence's first word is no name; a span keeps "of"/"for" inside it.
    assert question_names("Who is the spouse of the director of Jump for Glory?") == ["Glory", "Jump", "Jump for Glory"]
    assert question_names("Saving Private Ryan starred whom?") == ["Private", "Ryan", "Private Ryan"]
    assert question_names("how do i compute the lu factorization of a matrix?") == []


def test_should_abstain_on_an_unknown_name_or_a_low_score():
    ev = [Evidence(Sentence(0, 0, 3, "abc"), 0.4)]
    q = "Who founded Zorblax Records?"
    assert isinstance(Known(), Mentions)
    assert should_abstain(q, [], 0.1)
    assert should_abstain(q, ev, 0.5) and not should_abstain(q, ev, 0.3) and not should_abstain(q, ev, 0.0)
    assert unknown_names(q, Known("records")) == ["Zorblax", "Zorblax Records"]
    assert should_abstain(q, ev, 0.0, Known("records"))
    assert not should_abstain(q, ev, 0.3, Known("records", "zorblax", "zorblax records"))
    # The words alone are not the name: "Zorblax" and "Records" apart do not make "Zorblax Records".
    assert should_abstain(q, ev, 0.0, Known("records", "zorblax"))


def test_index_mentions_reads_the_whole_knowledge_base(kb, embedder):
    with RAG(kb, embedder=embedder, engine=FailingEngine()) as rag:
        mentions = IndexMentions(rag.store.bm25_index)
        assert mentions.mentions("pacific") and mentions.mentions("pacific ocean")
        assert not mentions.mentions("ocean pacific")  # both words are there, not together
        assert not mentions.mentions("zorblax")
        # Accents: written as the documents write them, or left out where the documents leave them out.
        for name in ("Akinosh\u016b Kenji", "Akinoshu Kenji", "Akinoshu", "Kenji's", "Hir\u00f4shima", "Tekeze"):
            assert mentions.mentions(name), name
        # Chunks left out (evaluation without the gold passages) do not count.
        without = IndexMentions(rag.store.bm25_index, exclude=lambda chunk: "otters" in chunk.source)
        assert not without.mentions("pacific ocean") and not without.mentions("pacific")


def test_a_question_about_a_name_the_documents_never_mention_abstains(kb, embedder):
    with RAG(kb.replace(abstain_threshold=0.0), embedder=embedder, engine=FailingEngine()) as rag:
        known = rag.ask(OTTER_QUESTION, answer_mode="extractive")
        unknown = rag.ask("What do Zorblax otters use stones for?", answer_mode="extractive")
    assert not known.abstained and "stones" in known.text
    assert unknown.abstained and unknown.passages and not unknown.citations
    # The answer names what the documents never mention, so a misspelling is plain to see.
    assert unknown.text == ABSTAIN_UNKNOWN_TEXT.format(names="\u201cZorblax\u201d")
    with RAG(kb.replace(abstain_threshold=0.99), embedder=embedder, engine=FailingEngine()) as rag:
        low = rag.ask(OTTER_QUESTION, answer_mode="extractive")
    assert low.abstained and low.text == ABSTAIN_TEXT  # nothing unknown: the plain sentence
