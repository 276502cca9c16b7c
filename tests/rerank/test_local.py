"""Each reranker on the real local Gemma-3-270M: the relevant passage, ranked last by the first stage, comes first."""

from __future__ import annotations

import pytest

from rag.config import Settings
from rag.rerank import make_reranker
from tests.rerank.conftest import QUERY, RELEVANT


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pointwise", "first", "listwise", "icr"])
def test_relevant_passage_moves_to_the_top(engine, hits, name):
    out, step = make_reranker(name, engine, Settings()).rerank(QUERY, hits, 2)
    assert [h.chunk.id for h in out][0] == RELEVANT, step.detail
    assert len(out) == 2 and [h.rank for h in out] == [1, 2]
    assert step.name == f"rerank:{name}"
    assert step.detail["before"] == ["c0", "c1", "c2", "c3"]
    assert step.detail["after"][0] == RELEVANT and sorted(step.detail["after"]) == step.detail["before"]
    assert set(step.detail["scores"]) == {"c0", "c1", "c2", "c3"}
    if name == "pointwise":  # P(yes) vs P(no): probabilities, the relevant passage highest
        scores = step.detail["scores"]
        assert all(0.0 < s < 1.0 for s in scores.values()) and scores[RELEVANT] == max(scores.values())


@pytest.mark.slow
def test_first_reads_one_forward_per_window(engine, hits):
    calls = []
    handle = engine.model.register_forward_pre_hook(
        lambda mod, args, kwargs: calls.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    try:
        _, step = make_reranker("first", engine, Settings(rerank_window=3, rerank_step=2)).rerank(QUERY, hits, 4)
    finally:
        handle.remove()
    assert step.detail["calls"] == 2 and len(calls) == 2  # windows (1, 4) and (0, 3): no decoding loop


@pytest.mark.slow
def test_icr_second_pass_reuses_the_passages_cache(engine, hits):
    """The passages run once; the query and the "N/A" calibration run on copies of their KV cache."""
    calls: list[int] = []
    # On the decoder stack: ICR skips the output layer, generation does not.
    handle = engine.model.model.register_forward_pre_hook(
        lambda mod, args, kwargs: calls.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    try:
        _, step = make_reranker("icr", engine, Settings()).rerank(QUERY, hits, 4)
    finally:
        handle.remove()
    tokens = step.detail["forward_tokens"]
    prompt_tokens = tokens["passages"] + tokens["query"]
    assert calls == [tokens["passages"], tokens["query"], tokens["calibration"]]
    assert tokens["passages"] > 50 and tokens["query"] < 15 and tokens["calibration"] < 8
    # Without reuse, the two passes would cost two full prompts.
    assert sum(calls) < 1.3 * prompt_tokens < 2 * prompt_tokens
    assert step.detail["layers"] == [5] and step.detail["depth"] == 6  # the default: the first global layer


@pytest.mark.slow
def test_icr_calibration_is_switchable(engine, hits):
    from rag.rerank.icr import ICRReranker

    calls: list[int] = []
    # On the decoder stack: ICR skips the output layer, generation does not.
    handle = engine.model.model.register_forward_pre_hook(
        lambda mod, args, kwargs: calls.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    try:
        _, step = ICRReranker(engine, Settings(), layers="all", calibrate=False).rerank(QUERY, hits, 4)
    finally:
        handle.remove()
    assert len(calls) == 2 and step.detail["layers"] == list(range(18)) and step.detail["calibrated"] is False


@pytest.mark.slow
def test_icr_at_a_depth_runs_only_the_layers_it_reads(engine, hits):
    """``global@6`` reads layer 5, the first full-attention layer: layers 6-17 never run; the engine is left whole."""
    from rag.rerank.icr import ICRReranker

    runs = {5: 0, 6: 0}
    hooks = [engine.model.model.layers[i].register_forward_pre_hook(lambda *a, i=i: runs.__setitem__(i, runs[i] + 1))
             for i in runs]
    try:
        out, step = ICRReranker(engine, Settings(rerank_icr_layers="global@6")).rerank(QUERY, hits, 4)
    finally:
        for h in hooks:
            h.remove()
    assert step.detail["layers"] == [5] and step.detail["depth"] == 6
    assert runs == {5: 3, 6: 0}  # passages, query, calibration
    assert out[0].chunk.id == RELEVANT, step.detail
    assert len(engine.model.model.layers) == 18 and engine.model.config._attn_implementation == "sdpa"


@pytest.mark.slow
def test_insertrank_puts_first_stage_scores_in_the_prompt(engine, hits):
    from rag.rerank.first import FirstReranker
    from rag.rerank.listwise import ListwiseReranker

    for cls in (ListwiseReranker, FirstReranker):
        with_scores = cls(engine, Settings(rerank_with_scores=True)).prompt(QUERY, hits)
        plain = cls(engine, Settings()).prompt(QUERY, hits)
        assert "(retrieval score 0.90) " in with_scores and "(retrieval score 0.60) " in with_scores
        assert "retrieval score" not in plain
