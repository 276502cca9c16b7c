"""End to end: ``hoprag eval retrieval`` and ``hoprag eval answers`` on the tiny dataset in tests/fixtures."""

from __future__ import annotations

import json
import math

import pytest
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


def test_eval_retrieval_refuses_bad_options(tiny_dir, tmp_path):
    result = CliRunner().invoke(app, ["eval", "retrieval", "--dataset", str(tiny_dir), "--strategy", "magic",
                                      "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "hybrid" in result.output
    result = CliRunner().invoke(app, ["eval", "retrieval", "--dataset", str(tiny_dir), "--k", "0,x",
                                      "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "--k" in result.output


class ScriptedEngine:
    """An Engine replying from a script, in call order (the configs' questions, then the oracle's)."""

    name = "scripted"
    capabilities = frozenset({"text"})

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)

    def stream(self, prompt, *, max_tokens, stop=(), temperature=0.0, session=None):
        from rag.types import Usage

        yield self.replies.pop(0)
        yield Usage(prompt_tokens=len(prompt.split()), ttft_s=0.01, total_s=0.02)

    def close(self) -> None:
        pass


def test_eval_answers_limit_2_hand_computed(tiny_dir, tmp_path, shared_models, monkeypatch):
    shared_models(ScriptedEngine("To crack open shellfish [1].", "Sicily [2].", "shellfish [1]", "Mount Etna [1][2]"))
    monkeypatch.setenv("HOPRAG_TOP_K", "2")
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
