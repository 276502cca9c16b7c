"""End to end: ``hoprag eval evidence`` on the tiny MuSiQue-style fixture and on a tiny document-style set (a PDF)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rag.cli import app

PAGES = [
    "Installing the frobnicator. Run the installer from the command line. It asks for a licence key first.",
    "Starting quietly. The option --hush starts the frobnicator without the welcome banner. "
    "Other options are described in the reference chapter.",
    "Colours of the display. The background colour is set with setbg and defaults to teal.",
]
QUESTIONS = [
    {"id": "d1", "question": "Which flag skips the welcome banner at startup?", "file": "manual.pdf", "pages": [2],
     "answer": "--hush", "kind": "option"},
    {"id": "d2", "question": "What colour is the background by default?", "file": "manual.pdf", "pages": [3],
     "answer": "Defaults to TEAL", "kind": "lookup"},
]


def _invoke(args, code=0, env=None):
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == code, (result.output, result.exception)
    return result


def _last_json(result):
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def doc_set(tmp_path):
    """A document-style dataset: questions.json in one folder, the PDF it names in another."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in PAGES:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    docs = tmp_path / "docs"
    docs.mkdir()
    pdf.output(str(docs / "manual.pdf"))
    qdir = tmp_path / "questions"
    qdir.mkdir()
    (qdir / "questions.json").write_text(json.dumps(QUESTIONS), encoding="utf-8")
    return qdir, docs


def test_eval_evidence_on_a_musique_style_set(tiny_dir, tmp_path, shared_models):
    out = _last_json(_invoke(["eval", "evidence", "--dataset", str(tiny_dir), "--scorer", "lexical,hybrid",
                              "--json", "--data-dir", str(tmp_path)]))
    assert set(out["scorers"]) == {"lexical", "hybrid"}
    assert out["questions"] == 4 and out["top_k"] == 5
    for row in out["scorers"].values():
        assert 0 <= row["answer_in_top1"] <= row["answer_in_top2"] <= row["answer_in_top3"]
        assert row["answer_in_top3"] <= row["answer_in_passages@5"]
        assert row["p50_ms"] > 0 and row["questions"] == 4
        assert row["evidence_chars"] <= 400
    # Every gold answer of the fixture is in its passages, and 6 passages are all retrieved in the top 5 but one.
    assert out["scorers"]["hybrid"]["answer_in_passages@5"] == 1.0
    assert out["scorers"]["hybrid"]["answer_in_top2"] >= 0.5


def test_eval_evidence_on_a_document_set_ingests_the_pdf_once(doc_set, tmp_path, shared_models):
    qdir, docs = doc_set
    args = ["eval", "evidence", "--dataset", str(qdir), "--documents", str(docs), "--scorer", "lexical",
            "--json", "--data-dir", str(tmp_path)]
    out = _last_json(_invoke(args))
    row = out["scorers"]["lexical"]
    assert row["page_hit@5"] == 1.0 and row["answer_in_passages@5"] == 1.0
    # Both answers sit in the sentence that shares the question's rare words.
    assert row["answer_in_top1"] == 1.0
    built = list((tmp_path / "eval").glob("docs-*/ready.json"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime
    again = _last_json(_invoke(args))  # the cached knowledge base is reused, not rebuilt
    assert again["scorers"]["lexical"]["answer_in_top1"] == 1.0
    assert built[0].stat().st_mtime == stamp
    # Without the gold pages, the answers are gone from the passages.
    gone = _last_json(_invoke([*args, "--without-gold"]))
    assert gone["scorers"]["lexical"]["page_hit@5"] == 0.0
    assert gone["scorers"]["lexical"]["answer_in_top3"] == 0.0
    # With a threshold above any score every question abstains; the rate is reported per scorer.
    strict = _last_json(_invoke([*args, "--without-gold"], env={"HOPRAG_ABSTAIN_THRESHOLD": "1e9"}))
    assert strict["scorers"]["lexical"]["abstain_rate"] == 1.0


def test_document_set_needs_its_documents(doc_set, tmp_path, shared_models):
    qdir, docs = doc_set
    result = _invoke(["eval", "evidence", "--dataset", str(qdir), "--json", "--data-dir", str(tmp_path)], code=1)
    assert "document-style dataset" in result.output and "--documents DIR" in result.output
    (docs / "manual.pdf").unlink()
    result = _invoke(["eval", "evidence", "--dataset", str(qdir), "--documents", str(docs), "--json",
                      "--data-dir", str(tmp_path)], code=1)
    assert "lacks manual.pdf" in result.output


def test_unknown_scorer_is_refused(tiny_dir, tmp_path, shared_models):
    result = _invoke(["eval", "evidence", "--dataset", str(tiny_dir), "--scorer", "magic", "--json",
                      "--data-dir", str(tmp_path)], code=1)
    assert "--scorer 'magic' is not allowed" in result.output and "hybrid" in result.output
