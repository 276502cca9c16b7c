"""``hoprag bench cache`` on a two-turn conversation with the shared engine: figures and identical answers."""

from __future__ import annotations

import pytest

from rag.commands.bench_cache import QUESTIONS, bench

pytestmark = pytest.mark.slow


def test_bench_reports_ttft_off_and_on_with_identical_answers(engine, embedder, settings):
    saved = engine.kv_cache
    result = bench(settings.replace(top_k=2, max_new_tokens=4), engine=engine, embedder=embedder,
                   questions=QUESTIONS[:2])
    assert engine.kv_cache is saved
    for key in ("ttft_off_s", "ttft_on_s", "ttft_speedup", "answers_identical", "turns"):
        assert key in result
    assert result["answers_identical"] is True
    first, follow = result["turns"]
    assert first["prefilled_off"] == first["prompt_tokens"]
    assert follow["cached_tokens_on"] > 0 and follow["prefilled_on"] < follow["prefilled_off"]
    assert result["ttft_off_s"] > 0 and result["ttft_on_s"] > 0
    assert result["cache"]["hits"] >= 1
