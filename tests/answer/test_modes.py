"""Answer modes through the public API: extractive (no LLM), generative, grounded, and abstaining."""

from __future__ import annotations

import pytest
from fakes import FailingEngine, ScriptedEngine
from kb_fixture import OTTER_QUESTION, build_kb

from rag import RAG
from rag.answer.base import ABSTAIN_TEXT, QUOTE_LEAD
from rag.errors import EngineError


@pytest.fixture(scope="module")
def kb(tmp_path_factory, embedder):
    return build_kb(tmp_path_factory.mktemp("modes"), embedder)


def _open(kb, embedder, engine, **changes) -> RAG:
    return RAG(kb.replace(**changes) if changes else kb, embedder=embedder, engine=engine)


def highlighted(citation) -> list[str]:
    return [citation.text[h.start : h.end] for h in citation.highlights]


def test_extractive_quotes_the_evidence_without_the_llm(kb, embedder):
    with _open(kb, embedder, FailingEngine()) as rag:
        answer = rag.ask(OTTER_QUESTION, answer_mode="extractive")
    assert answer.mode == "extractive" and not answer.error and not answer.abstained
    cited = answer.citations[0]
    assert "stones" in answer.text and f"[{cited.number}]" in answer.text
    assert "otters" in cited.source
    assert any("stones as tools" in h for h in highlighted(cited))
    # Capped: at most 2 sentences / 400 characters of quoted evidence.
    assert len(answer.sentences) <= 2 and sum(s.end - s.start for s in answer.sentences) <= 400
    flat = " ".join(cited.text.split())
    for s in answer.sentences:  # each quoted sentence is the passage's own words
        assert s.supported is True and answer.text[s.start : s.end] in flat
    assert [step.name for step in answer.trace.steps][-1] == "evidence"
    assert "evidence_s" in answer.timings
    data = answer.to_dict()
    assert data["mode"] == "extractive" and data["citations"][0]["highlights"][0]["end"] > 0


def test_abstains_below_the_threshold_and_lists_the_nearest_passages(kb, embedder):
    with _open(kb, embedder, FailingEngine(), abstain_threshold=1.01) as rag:
        for mode in ("extractive", "grounded"):
            answer = rag.ask(OTTER_QUESTION, answer_mode=mode)
            assert answer.abstained and answer.text == ABSTAIN_TEXT
            assert answer.passages and not answer.citations


def test_generative_keeps_the_llm_text_and_adds_highlights(kb, embedder):
    engine = ScriptedEngine("They use stones as tools to crack open shells [1].")
    with _open(kb, embedder, engine) as rag:
        answer = rag.ask(OTTER_QUESTION, answer_mode="generative")
    assert answer.text == "They use stones as tools to crack open shells [1]."
    assert answer.mode == "generative" and [s.supported for s in answer.sentences] == [None]
    assert answer.citations and answer.citations[0].highlights


def test_the_embedded_engine_gets_the_best_evidence_before_the_question(kb, embedder):
    engine = ScriptedEngine("They use stones [1].")
    with _open(kb, embedder, engine) as rag:
        answer = rag.ask(OTTER_QUESTION, answer_mode="grounded")
    (prompt,) = engine.prompts
    keys = prompt.text.rsplit("Key sentences:\n", 1)[1].split("\nQuestion:")[0].splitlines()
    (evidence,) = [s for s in answer.trace.steps if s.name == "evidence"]
    assert 1 <= len(keys) <= 2 and keys == evidence.detail["best"][: len(keys)]  # "[n] sentence", best first
    chat = ScriptedEngine("They use stones [1].", takes_messages=True)
    with _open(kb, embedder, chat) as rag:
        rag.ask(OTTER_QUESTION, answer_mode="generative")
    assert "Key sentences" not in str(chat.prompts[0])


def test_grounded_drops_unsupported_sentences(kb, embedder):
    reply = "Sea otters use stones as tools to crack open shells [1]. They learned it from Captain Nemo in 1870."
    with _open(kb, embedder, ScriptedEngine(reply)) as rag:
        answer = rag.ask(OTTER_QUESTION, answer_mode="grounded")
    assert answer.mode == "grounded"
    assert answer.text == "Sea otters use stones as tools to crack open shells [1]."
    assert answer.unsupported == ("They learned it from Captain Nemo in 1870.",)
    (sentence,) = answer.sentences
    assert sentence.supported and answer.text[sentence.start : sentence.end] == answer.text
    assert sentence.citations and answer.citations[0].number == 1


def test_grounded_names_the_words_the_passage_does_not_have(kb, embedder):
    from rag.client import answer_from_dict

    reply = "Sea otters use stones as tools to crack open shells and coconuts [1]."
    with _open(kb, embedder, ScriptedEngine(reply)) as rag:
        answer = rag.ask(OTTER_QUESTION, answer_mode="grounded")
    assert answer.text == reply
    (sentence,) = answer.sentences
    assert sentence.supported and [answer.text[a:b] for a, b in sentence.unverified] == ["coconuts"]
    assert answer.to_dict()["sentences"][0]["unverified"] == [list(sentence.unverified[0])]
    assert answer_from_dict(answer.to_dict()).sentences == answer.sentences  # the HTTP client reads it back


def test_grounded_falls_back_to_the_quote_when_nothing_is_supported(kb, embedder):
    with _open(kb, embedder, ScriptedEngine("It uses the same strategy as the LR.")) as rag:
        answer = rag.ask(OTTER_QUESTION, answer_mode="grounded")
    assert answer.text.startswith(QUOTE_LEAD) and "stones" in answer.text
    assert answer.unsupported == ("It uses the same strategy as the LR.",)
    assert answer.citations and answer.citations[0].highlights


def test_auto_is_grounded(kb, embedder):
    with _open(kb, embedder, ScriptedEngine("I don't know.")) as rag:
        answer = rag.ask(OTTER_QUESTION)
    assert answer.mode == "grounded" and answer.text.startswith(QUOTE_LEAD)


def test_engine_failure_is_retrieval_only_with_highlights(kb, embedder):
    with _open(kb, embedder, FailingEngine(EngineError("LLM server is down"))) as rag:
        answer = rag.ask(OTTER_QUESTION, answer_mode="grounded")
    assert answer.error and answer.text == ""
    assert len(answer.citations) == len(answer.passages) and answer.citations[0].highlights


@pytest.mark.slow
def test_grounded_with_the_embedded_model_shows_only_supported_text(kb, embedder, engine):
    from rag.answer.support import check
    from rag.evidence import candidate_sentences

    with _open(kb, embedder, engine) as rag:
        answer = rag.ask(OTTER_QUESTION, answer_mode="grounded")
    assert answer.mode == "grounded" and not answer.error
    if answer.text.startswith(QUOTE_LEAD):
        assert "stones" in answer.text
    else:
        candidates = candidate_sentences(answer.passages)
        for s in answer.sentences:
            assert check(answer.text[s.start : s.end], OTTER_QUESTION, candidates).supported


def test_grounded_marks_instead_of_dropping_for_a_chat_model(kb, embedder):
    reply = "Sea otters use stones as tools to crack open shells [1].\n\n- They learned it from Captain Nemo in 1870."
    with _open(kb, embedder, ScriptedEngine(reply, takes_messages=True)) as rag:
        answer = rag.ask(OTTER_QUESTION, answer_mode="grounded")
    assert answer.text == reply and not answer.unsupported
    verdicts = [(answer.text[s.start : s.end], s.supported) for s in answer.sentences]
    assert verdicts == [("Sea otters use stones as tools to crack open shells [1].", True),
                        ("They learned it from Captain Nemo in 1870.", False)]
