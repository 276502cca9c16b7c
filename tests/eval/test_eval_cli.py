"""End to end: ``hoprag eval retrieval`` and ``hoprag eval answers`` on the tiny dataset in tests/fixtures."""

from __future__ import annotations

import json
import math

import pytest
from fakes import ScriptedEngine
from typer.testing import CliRunner

from rag.cli import app


def _invoke(args):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_eval_retrieval_metrics_match_hand_computed(tiny_dir, tmp_path, shared_models):
    out = _invoke(
        ["eval", "retrieval", "--dataset", str(tiny_dir), "--strategy", "single,hybrid,hops",
         "--k", "1,2", "--json", "--data-dir", str(tmp_path), "--plot", str(tmp_path / "curves.png")]
    )
    single = out["strategies"]["single"]
    # Dense ranks, by construction of the fixture:
    #   q1 otters: gold {otter} at rank 1
    #   q2 Etna island + height: gold {location, height} at ranks 1-2
    #   q3 Zorblax founder's instrument: gold {label, founder} at ranks 1-2
    #   q4 Etna height: gold {location} at rank 2 (the height passage is not gold)
    assert single["recall@1"] == pytest.approx((1 + 0.5 + 0.5 + 0) / 4)
    assert single["all_found@1"] == pytest.approx(1 / 4)
    assert single["recall@2"] == pytest.approx(1.0)
    assert single["all_found@2"] == pytest.approx(1.0)
    assert single["ndcg@10"] == pytest.approx((3 + 1 / math.log2(3)) / 4)
    assert single["p95_ms"] >= single["p50_ms"] > 0
    assert single["questions"] == 4
    assert set(out["strategies"]) == {"single", "hybrid", "hops"}
    for row in out["strategies"].values():
        assert {"recall@1", "all_found@1", "recall@2", "all_found@2", "ndcg@10", "p50_ms", "p95_ms"} <= set(row)
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_eval_retrieval_pack_maps_chunks_back_to_passages(tiny_dir, tmp_path, shared_models, monkeypatch):
    args = ["eval", "retrieval", "--dataset", str(tiny_dir), "--strategy", "single", "--k", "1,2,5", "--json",
            "--data-dir", str(tmp_path)]
    # All 6 passages in one document and a window wider than it: one chunk that overlaps every
    # passage, so the passage ranking is the packing order (by passage id), whatever the embedder:
    #   1 Sea otter, 2 Honey, 3 Mount Etna height, 4 Zorblax Records, 5 Mirela Vantongeren, 6 Mount Etna
    monkeypatch.setenv("HOPRAG_SEGMENTER", "fixed")
    monkeypatch.setenv("HOPRAG_CHUNK_TOKENS", "400")
    out = _invoke([*args, "--pack", "6"])
    assert out["kb"]["pack"] == 6 and out["kb"]["documents"] == 1 and out["kb"]["chunks"] == 1
    assert out["kb"]["segmenter"] == "fixed" and out["kb"]["embedded_tokens"] > 100
    single = out["strategies"]["single"]
    # q1 gold at 1; q2 gold at 3 and 6; q3 gold at 4 and 5; q4 gold at 6.
    assert single["recall@1"] == single["all_found@1"] == pytest.approx(1 / 4)
    assert single["recall@2"] == single["all_found@2"] == pytest.approx(1 / 4)
    assert single["recall@5"] == pytest.approx((1 + 0.5 + 1 + 0) / 4)
    assert single["all_found@5"] == pytest.approx(2 / 4)
    ideal2 = 1 + 1 / math.log2(3)
    assert single["ndcg@10"] == pytest.approx(
        (1 + (1 / math.log2(4) + 1 / math.log2(7)) / ideal2 + (1 / math.log2(5) + 1 / math.log2(6)) / ideal2
         + 1 / math.log2(7)) / 4
    )
    # Structure-aware segmenting at the passage headings gives one chunk per passage back:
    # the same figures as one passage per document (see the test above).
    monkeypatch.setenv("HOPRAG_SEGMENTER", "structure")
    monkeypatch.setenv("HOPRAG_CHUNK_TOKENS", "200")
    out = _invoke([*args, "--pack", "3"])
    assert (out["kb"]["documents"], out["kb"]["chunks"], out["kb"]["segmenter"]) == (2, 6, "structure")
    single = out["strategies"]["single"]
    assert single["recall@1"] == pytest.approx((1 + 0.5 + 0.5 + 0) / 4)
    assert single["all_found@2"] == pytest.approx(1.0)
    assert single["ndcg@10"] == pytest.approx((3 + 1 / math.log2(3)) / 4)
    # Each configuration has its own cached knowledge base.
    assert len(list((tmp_path / "eval").iterdir())) == 2


def test_eval_retrieval_refuses_bad_options(tiny_dir, tmp_path):
    result = CliRunner().invoke(app, ["eval", "retrieval", "--dataset", str(tiny_dir), "--strategy", "magic",
                                      "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "hybrid" in result.output
    result = CliRunner().invoke(app, ["eval", "retrieval", "--dataset", str(tiny_dir), "--k", "0,x",
                                      "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "--k" in result.output
    result = CliRunner().invoke(app, ["eval", "retrieval", "--dataset", str(tiny_dir), "--pack", "0",
                                      "--data-dir", str(tmp_path)])
    assert result.exit_code != 0 and "--pack" in result.output




def test_eval_answers_limit_2_hand_computed(tiny_dir, tmp_path, shared_models, monkeypatch):
    engine = ScriptedEngine("To crack open shellfish [1].", "Sicily [2].", "shellfish [1]", "Mount Etna [1][2]")
    shared_models(engine)
    monkeypatch.setenv("HOPRAG_TOP_K", "2")
    monkeypatch.setenv("HOPRAG_ANSWER_MODE", "generative")  # the scripted text is the answer, unchecked
    out = _invoke(["eval", "answers", "--dataset", str(tiny_dir), "--strategy", "single", "--limit", "2",
                   "--json", "--data-dir", str(tmp_path), "--plot", str(tmp_path / "answers.png")])
    row = out["configs"]["single+none+stable"]
    assert out["questions"] == 2 and row["questions"] == 2 and row["errors"] == 0
    # q1 cites the otter passage (its only gold); q2 cites the height passage (1 of its 2 gold).
    assert row["em"] == 1.0 and row["f1"] == 1.0
    assert row["citation_precision"] == 1.0
    assert row["citation_coverage"] == pytest.approx((1 + 0.5) / 2)
    assert row["answer_in_context"] == 1.0
    assert row["total_p50_s"] > 0 and row["ttft_p50_s"] > 0
    oracle = out["oracle"]
    # q1 "shellfish" vs alias "cracking shellfish": P=1, R=1/2, F1=2/3; q2 "Mount Etna" vs "Sicily": 0.
    assert oracle["em"] == 0.0
    assert oracle["f1"] == pytest.approx((2 / 3 + 0) / 2)
    assert oracle["citation_precision"] == 1.0 and oracle["citation_coverage"] == 1.0
    assert oracle["answer_in_context"] == 1.0
    assert (tmp_path / "answers.png").stat().st_size > 0
    # The oracle is the generative prompt on the gold passages: the same key sentences before the question.
    assert len(engine.prompts) == 4 and all("Key sentences:\n[" in str(p) for p in engine.prompts)
    assert "shellfish" in str(engine.prompts[2]).split("Key sentences:")[1]


# A scripted engine keeps the prompts it was given.
RecordingEngine = ScriptedEngine


def test_eval_answers_chat_asks_the_hops_first_in_one_session(tiny_dir, tmp_path, shared_models, monkeypatch):
    """q3 has two hops: they are asked first (the second with #1 filled in), then q3 itself is scored."""
    turns = [
        "To crack open shellfish [1].", "Sicily [1].", "Mirela Vantongeren [1].", "The bassoon [1].", "bassoon [1]",
    ]
    engine = RecordingEngine(*turns, *turns)
    shared_models(engine)
    monkeypatch.setenv("HOPRAG_TOP_K", "1")
    monkeypatch.setenv("HOPRAG_ANSWER_MODE", "generative")
    out = _invoke(["eval", "answers", "--dataset", str(tiny_dir), "--strategy", "single", "--limit", "3",
                   "--order", "relevance,stable", "--chat", "--no-oracle", "--json", "--data-dir", str(tmp_path)])
    assert out["chat"] is True and len(engine.prompts) == 10
    for order in ("relevance", "stable"):
        row = out["configs"][f"single+none+{order}"]
        assert row["questions"] == 3 and row["errors"] == 0 and row["em"] == 1.0
    relevance_q3, stable_q3 = str(engine.prompts[4]), str(engine.prompts[9])
    for prompt in (relevance_q3, stable_q3):
        # The hops are the conversation's history, the second with the first hop's answer filled in.
        assert "Who founded Zorblax Records?" in prompt and "Which instrument did Mirela Vantongeren play?" in prompt
    # Stable order keeps the passage an earlier hop found (the bassoon player's); relevance shows this turn's top 1.
    assert "[2] Mirela Vantongeren" in stable_q3 and "played the bassoon" in stable_q3
    assert "played the bassoon" not in relevance_q3


def test_eval_answers_modes_evidence_and_abstention(tiny_dir, tmp_path, shared_models, monkeypatch):
    """--answer-mode runs each mode; --unanswerable asks the first question again without its gold passage."""
    shared_models(ScriptedEngine(default="Sea otters use stones to crack open shellfish [1]."))
    monkeypatch.setenv("HOPRAG_TOP_K", "2")
    out = _invoke(["eval", "answers", "--dataset", str(tiny_dir), "--strategy", "single", "--limit", "2",
                   "--answer-mode", "extractive,grounded", "--unanswerable", "1", "--no-oracle", "--json",
                   "--data-dir", str(tmp_path)])
    quoted, grounded = out["configs"]["single+none+stable+extractive"], out["configs"]["single+none+stable+grounded"]
    for row in (quoted, grounded):
        assert set(row) >= {"em", "f1", "citation_precision", "answer_in_evidence", "evidence_chars",
                            "supported_rate", "abstain_rate", "abstain_correct", "abstain_false"}
        assert row["answer_in_evidence"] == 1.0 and 0 < row["evidence_chars"] <= 400
        assert row["unanswerable"] == 1
    assert quoted["answer_mode"] == "extractive" and quoted["supported_rate"] == 1.0  # quotes are the passages' words
    assert grounded["supported_rate"] == 1.0  # what grounded shows is supported


def test_eval_answers_on_a_document_set(tmp_path, shared_models, monkeypatch):
    from test_eval_evidence import PAGES, QUESTIONS  # the tiny PDF set of the evidence tests

    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in PAGES:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    (tmp_path / "docs").mkdir()
    pdf.output(str(tmp_path / "docs" / "manual.pdf"))
    (tmp_path / "questions").mkdir()
    (tmp_path / "questions" / "questions.json").write_text(json.dumps(QUESTIONS), encoding="utf-8")
    shared_models(ScriptedEngine(default="unused"))
    out = _invoke(["eval", "answers", "--dataset", str(tmp_path / "questions"), "--documents", str(tmp_path / "docs"),
                   "--answer-mode", "extractive", "--json", "--data-dir", str(tmp_path / "data")])
    row = out["configs"]["single+none+stable+extractive"]
    assert out["oracle"] is None and row["questions"] == 2
    assert row["page_hit@5"] == 1.0 and row["answer_in_passages@5"] == 1.0
    assert row["answer_in_evidence"] >= 0.5
