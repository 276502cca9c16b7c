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
        takes_messages = False
        default_max_tokens = 96

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


def test_a_toy_engine_defined_in_this_file_reranks_pointwise(hits, monkeypatch):
    """A new engine needs no edit in rag/rerank: it provides the capability and registers itself."""
    import rag.engines.base as base
    from rag.engines.base import ENGINES, ScoresNextTokens, engines_with, load_engines, provides
    from rag.registry import Registry
    from tests.rerank.conftest import QUERY, RELEVANT

    class ToyEngine:
        name = "toy"
        takes_messages = False
        default_max_tokens = 8

        def stream(self, prompt, **kwargs):  # pragma: no cover - pointwise reads logprobs only
            raise AssertionError

        def close(self) -> None:
            pass

        def next_token_logprobs_batch(self, prompts, candidates):
            # "yes" for the passage that names the capital.
            return [{"yes": -0.1 if "Paris" in p else -4.0, "no": -1.0} for p in prompts]

    load_engines()
    registry = Registry("engine")
    for name in ENGINES.names():
        registry.register(name)(ENGINES.get(name))
    registry.register("toy")(provides(ToyEngine)(lambda settings: ToyEngine()))
    monkeypatch.setattr(base, "ENGINES", registry)

    assert isinstance(ToyEngine(), ScoresNextTokens) and "toy" in engines_with(ScoresNextTokens)
    out, step = make_reranker("pointwise", registry.create("toy", Settings()), Settings()).rerank(QUERY, hits, 2)
    assert out[0].chunk.id == RELEVANT and step.detail["calls"] == 4
    scores = step.detail["scores"]  # sigmoid(yes - no)
    assert scores[RELEVANT] > 0.7 and max(v for k, v in scores.items() if k != RELEVANT) < 0.05

    class TextOnly:
        name = "textonly"
        takes_messages = False
        default_max_tokens = 8

        def stream(self, prompt, **kwargs):  # pragma: no cover
            raise AssertionError

        def close(self) -> None:
            pass

    # The engines that could serve it are read from the registry: the toy one is named too.
    with pytest.raises(CapabilityError, match="use engine 'local' or 'openai' or 'toy' or 'vllm'"):
        make_reranker("first", TextOnly(), Settings())
