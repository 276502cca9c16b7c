"""``hoprag eval rerank`` and its evaluation function on a tiny MuSiQue-style dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli import app
from rag.config import Settings
from rag.eval.dataset import eval_kb, load_dataset
from rag.eval.rerank import evaluate_rerank
from rag.rerank import make_reranker

TINY = Path(__file__).parent / "fixtures" / "tiny_musique"
KEYS = {"ndcg@10", "recall@5", "all_found@5"}


def test_cli_json_for_the_baseline(tmp_path):
    result = CliRunner().invoke(
        app, ["eval", "rerank", "--dataset", str(TINY), "--reranker", "none", "--candidates", "6", "--json",
              "--data-dir", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["reranker"] == "none" and out["questions"] == 2 and out["candidates"] == 6
    assert set(out["before"]) == set(out["after"]) == KEYS
    assert out["before"] == out["after"]  # the baseline changes nothing
    assert out["p50_ms"] >= 0


def test_cli_refuses_an_unknown_reranker(tmp_path):
    result = CliRunner().invoke(
        app, ["eval", "rerank", "--dataset", str(TINY), "--reranker", "bogus", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 1 and "choose from: first, icr, listwise, none, pointwise" in result.output


@pytest.mark.slow
def test_evaluate_rerank_with_the_local_model(tmp_path, embedder, engine):
    settings = Settings(data_dir=str(tmp_path))
    ds = load_dataset(TINY)
    with eval_kb(ds, settings, embedder=embedder, engine=engine) as rag:
        out = evaluate_rerank(rag, ds, make_reranker("icr", engine, settings), candidates=5)
    assert out["reranker"] == "icr" and out["questions"] == 2 and out["p50_ms"] > 0
    for side in ("before", "after"):
        assert set(out[side]) == KEYS and all(0.0 <= v <= 1.0 for v in out[side].values())
    # Five candidates hold every gold passage of this easy set, so recall@5 cannot change with the order.
    assert out["before"]["recall@5"] == out["after"]["recall@5"] == 1.0


class Reverse:
    """Puts the first stage's order upside down (a deliberately bad reranker)."""

    name = "reverse"

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def rerank(self, query, hits, k):
        self.log.append(query)
        return list(reversed(hits))[:k], None


def test_several_rerankers_take_turns_on_the_same_candidates(tmp_path, embedder):
    from rag.eval.rerank import evaluate_rerankers

    settings = Settings(data_dir=str(tmp_path))
    ds = load_dataset(TINY)
    calls: list[str] = []
    with eval_kb(ds, settings, embedder=embedder) as rag:
        none = make_reranker("none", None, settings)
        out = evaluate_rerankers(rag, ds, {"none": none, "rev": Reverse(calls)}, candidates=6)
    assert list(out) == ["none", "rev"] and calls == [q.question for q in ds.questions]
    assert out["none"]["before"] == out["rev"]["before"] == out["none"]["after"]
    assert out["rev"]["after"]["ndcg@10"] < out["none"]["after"]["ndcg@10"]
    assert out["rev"]["reranker"] == "reverse" and out["rev"]["questions"] == 2
