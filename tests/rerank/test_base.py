from __future__ import annotations

import pytest

from rag.config import Settings
from rag.engines.openai_compat import OpenAICompatEngine
from rag.errors import CapabilityError, ConfigError
from rag.rerank import RERANKERS, make_reranker
from rag.rerank.base import windows


def test_all_methods_registered():
    assert set(RERANKERS.names()) == {"none", "pointwise", "listwise", "first", "icr"}


def test_unknown_reranker_lists_choices():
    with pytest.raises(ConfigError, match="choose one of: first, icr, listwise, none, pointwise"):
        make_reranker("colbert", None, Settings())


def test_icr_on_a_server_engine_names_the_local_engine():
    engine = OpenAICompatEngine("http://127.0.0.1:9/v1", "m")  # never contacted
    with pytest.raises(CapabilityError) as err:
        make_reranker("icr", engine, Settings())
    msg = str(err.value)
    assert "'icr' needs attention" in msg and "engine 'openai'" in msg and "use engine 'local'" in msg
    # Logprob and text rerankers are fine on a server.
    for name in ("pointwise", "first", "listwise", "none"):
        assert make_reranker(name, engine, Settings()).name == name


def test_engine_without_logprobs_is_refused():
    class TextOnly:
        name = "textonly"
        capabilities = frozenset({"text"})

        def stream(self, *a, **k):  # pragma: no cover - never called
            raise AssertionError

    with pytest.raises(CapabilityError, match="needs logprobs.*use engine 'local' or 'openai' or 'vllm'"):
        make_reranker("pointwise", TextOnly(), Settings())


def test_none_keeps_first_stage_order(hits):
    out, step = make_reranker("none", None, Settings()).rerank("q", hits, 2)
    assert [h.chunk.id for h in out] == ["c0", "c1"]
    assert step.detail["before"] == step.detail["after"] == ["c0", "c1", "c2", "c3"]


def test_windows_slide_back_to_front():
    assert windows(5, 20, 10) == [(0, 5)]
    assert windows(100, 20, 10) == [(80, 100), (70, 90), (60, 80), (50, 70), (40, 60), (30, 50), (20, 40), (10, 30), (0, 20)]
    assert windows(25, 20, 10) == [(5, 25), (0, 15)]


@pytest.mark.parametrize("changes", [{"rerank_window": 1}, {"rerank_window": 30}, {"rerank_step": 0}, {"rerank_step": 21}])
def test_window_settings_are_validated(changes):
    with pytest.raises(ConfigError, match="rerank_(window|step)"):
        Settings(**changes)
