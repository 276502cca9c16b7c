"""The in-process vLLM engine: imported lazily, needs a GPU, reuses prefixes (enable_prefix_caching)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rag.config import Settings
from rag.errors import EngineError, MissingExtraError


def test_importing_rag_engines_does_not_import_vllm():
    code = (
        "import sys, rag, rag.engines, rag.engines.vllm, rag.engines.local, rag.engines.openai_compat\n"
        "heavy = [m for m in ('vllm', 'torch') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_without_a_gpu_the_engine_says_what_to_use_instead():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: the GPU test below covers the engine")
    from rag.engines import make_engine

    with pytest.raises(EngineError, match="needs a CUDA GPU"):
        make_engine(Settings(engine="vllm", llm_model="any"))


def test_vllm_reuses_the_prefix_on_a_follow_up(base_settings):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU (torch.cuda.is_available() is False): vLLM runs on GPUs only")
    try:
        from rag.engines.vllm import VLLMEngine
        from rag.models import llm_dir

        engine = VLLMEngine(str(llm_dir(base_settings.models_dir)))
    except MissingExtraError as exc:
        pytest.skip(f"vllm is not installed (pip install -e '.[vllm]'): {exc}")
    from rag.engines.base import generate

    prefix = "You answer questions from the passages.\n" + "Sea otters use stones to crack shellfish. " * 40
    first, u1 = generate(engine, prefix + "\nQuestion: What do otters use?\nAnswer:", max_tokens=8)
    second, u2 = generate(engine, prefix + "\nQuestion: What do otters crack?\nAnswer:", max_tokens=8)
    assert u1.prompt_tokens > 0 and u2.cached_tokens > 0


def test_engine_asks_vllm_for_prefix_caching_and_reports_cached_tokens(monkeypatch):
    """Without a GPU: a stand-in ``vllm`` module records what the engine asks for."""
    import types

    torch = pytest.importorskip("torch")
    seen: dict = {}

    class FakeLLM:
        def __init__(self, **kwargs):
            seen.update(kwargs)

        def generate(self, prompts, params):
            out = types.SimpleNamespace(text=" rocks", token_ids=[5, 6])
            return [types.SimpleNamespace(prompt_token_ids=[1, 2, 3, 4], outputs=[out], num_cached_tokens=3)]

    fake = types.SimpleNamespace(LLM=FakeLLM, SamplingParams=lambda **kw: kw)
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    from rag.engines.base import generate
    from rag.engines.vllm import VLLMEngine

    text, usage = generate(VLLMEngine("some/model"), "prompt", max_tokens=4)
    assert seen == {"model": "some/model", "enable_prefix_caching": True}
    assert text == " rocks" and (usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens) == (4, 3, 2)
