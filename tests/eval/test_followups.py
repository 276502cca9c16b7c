"""``hoprag eval retrieval --followups``: conversations from decompositions, and the command's JSON."""

from __future__ import annotations

import json

import pytest
from fakes import ScriptedEngine
from typer.testing import CliRunner

from rag.cli import app
from rag.eval.dataset import load_dataset, passage_key
from rag.eval.followups import load_followups, referent, with_pronoun

PARAGRAPHS = [
    ("Journal of Psychotherapy Integration", "The Journal of Psychotherapy Integration is an academic journal "
     "published by the American Psychological Association."),
    ("American Psychological Association", "G. Stanley Hall was the first president of the American "
     "Psychological Association, founded in 1892 at Clark University."),
    ("Dracula", "Dracula is an 1897 Gothic horror novel by the Irish author Bram Stoker."),
    ("Bram Stoker", "Abraham Stoker was born on 8 November 1847 at 15 Marino Crescent, Clontarf, Dublin."),
    ("President of the United States", "George Washington was the first president of the United States."),
    ("Mary Shelley", "Mary Shelley was born in Somers Town, London, in 1797 and wrote Frankenstein."),
]


def _question(qid, hops, gold_idx):
    return {
        "id": qid, "question": "q", "answer": hops[-1]["answer"], "answer_aliases": [],
        "question_decomposition": hops,
        "paragraphs": [{"idx": i, "title": t, "paragraph_text": x, "is_supporting": i in gold_idx}
                       for i, (t, x) in enumerate(PARAGRAPHS)],
    }


@pytest.fixture
def followup_dir(tmp_path):
    root = tmp_path / "followups"
    root.mkdir()
    (root / "corpus.json").write_text(json.dumps([{"title": t, "text": x} for t, x in PARAGRAPHS]))
    questions = [
        _question("q1", [
            {"question": "What company publishes the Journal of Psychotherapy Integration?",
             "answer": "American Psychological Association", "paragraph_support_idx": 0},
            {"question": "Who was the first president of #1 ?", "answer": "G. Stanley Hall",
             "paragraph_support_idx": 1}], {0, 1}),
        _question("q2", [
            {"question": "Dracula >> author", "answer": "Bram Stoker", "paragraph_support_idx": 2},
            {"question": "#1 >> place of birth", "answer": "Clontarf", "paragraph_support_idx": 3}], {2, 3}),
        # A second hop that does not refer to the first answer is not a follow-up: left out.
        _question("q3", [
            {"question": "Who wrote Frankenstein?", "answer": "Mary Shelley", "paragraph_support_idx": 5},
            {"question": "Who was the first president of the United States?", "answer": "George Washington",
             "paragraph_support_idx": 4}], {4, 5}),
    ]
    (root / "questions.json").write_text(json.dumps(questions))
    return root


@pytest.mark.parametrize("template, kind, expected", [
    ("Who was the first president of #1 ?", "it", "Who was the first president of it?"),
    ("When did #1 fall?", "that place", "When did that place fall?"),
    ("who scored #1 's first goal last season", "they", "Who scored their first goal last season"),
    ("The #1 has what character?", "it", "It has what character?"),
    ("Who is the mother of #1 ?", "he", "Who is the mother of him?"),
    ("#1 >> place of birth", "she", "What is her place of birth?"),
    ("Arrondissement of #1 >> country", "that place", "What is the country of Arrondissement of that place?"),
])
def test_with_pronoun(template, kind, expected):
    assert with_pronoun(template, kind) == expected


def test_referent_by_the_first_answers_type():
    assert referent("What is the country of Bubye River?", "Zimbabwe") == "that place"
    assert referent("Who made The Oddventures of Mr. Cool?", "Francis Magalona") == "he"
    assert referent("What is the author of Alexander?", "Judith Viorst") == "she"
    assert referent("What is the member of sports team of Barry Wesson?", "Houston Astros") == "they"
    assert referent("What company published the journal?", "Rank Organisation") == "it"
    assert referent("What fictional work does Van Helsing exist in?", "Dracula") == "it"


def test_load_followups(followup_dir):
    items = load_followups(followup_dir, load_dataset(followup_dir))
    assert [i.id for i in items] == ["q1", "q2"]
    first, second = items
    assert first.question == "Who was the first president of it?"
    assert first.oracle == "Who was the first president of American Psychological Association ?"
    assert first.gold == passage_key(*PARAGRAPHS[1])
    assert (second.first, second.question) == ("What is the author of Dracula?", "What is his place of birth?")
    assert second.oracle == "What is the place of birth of Bram Stoker?"


def test_eval_followups_json(followup_dir, tmp_path, shared_models):
    shared_models(ScriptedEngine(default="Who was the first president of American Psychological Association?"))
    args = ["eval", "retrieval", "--followups", "--dataset", str(followup_dir), "--data-dir", str(tmp_path),
            "--strategy", "single", "--k", "1", "--rewrite-modes", "entities,llm,none", "--json"]
    for previous in ("gold", "extractive"):
        result = CliRunner().invoke(app, [*args, "--previous-answer", previous])
        assert result.exit_code == 0, (result.output, result.exception)
        out = json.loads(result.stdout.strip().splitlines()[-1])
        assert out["questions"] == 2 and out["previous_answer"] == previous and out["strategy"] == "single"
        assert list(out["followups"]) == ["raw", "entities", "llm", "none", "oracle"]
        for row in out["followups"].values():
            assert {"recall@1", "recall@5", "p50_ms", "p95_ms"} <= set(row) and row["p50_ms"] > 0
        rows = out["followups"]
        assert rows["oracle"]["recall@1"] == 1.0
        assert rows["raw"]["recall@1"] == rows["none"]["recall@1"] < 1.0
        # With the gold first answer the pronoun resolves to it: the oracle's ranking; extractive answers
        # quote two passages (two candidate names), at least as good as the question as typed.
        assert rows["entities"]["recall@1"] >= (1.0 if previous == "gold" else rows["raw"]["recall@1"])
        assert rows["none"]["rewritten"] == 0.0 and rows["entities"]["rewritten"] == 1.0
        # Six passages: every mode finds its passage in the top 5, so there is no raw→oracle gap to close.
        assert rows["raw"]["recall@5"] == rows["oracle"]["recall@5"] and rows["entities"]["gap_closed"] is None
    assert out["previous_answer_has_gold"] == 1.0  # the extractive answers quote the first hop's passage


def test_rewritten_follow_ups_are_retrieved_with_their_alternatives_as_the_pipeline_does():
    # A unit with a stand-in pipeline: the eval must fuse a rewrite's alternatives, as RAG.stream does.
    from rag.eval.followups import FollowUp, evaluate_followups
    from rag.followup import Rewrite

    class Recorder:
        def __init__(self):
            self.calls = []

        def rewrite(self, question, history, session=None, followup_rewrite=None):
            return Rewrite(question, "rewritten", followup_rewrite, alternatives=(("other", 0.5),))

        def retrieve(self, query, k, strategy=None, alternatives=()):
            self.calls.append((query, tuple(alternatives)))
            return []

    rag = Recorder()
    item = FollowUp("q1", "first?", "A", "Who founded it?", "Who founded A?", "gold", "it")
    evaluate_followups(rag, [item], ["entities"], strategy="single", previous="gold")
    assert ("rewritten", (("other", 0.5),)) in rag.calls
    assert ("Who founded it?", ()) in rag.calls and ("Who founded A?", ()) in rag.calls  # raw, oracle
