"""Component names come from the registries only, and each component reads exactly the settings it declares."""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
import textwrap
from dataclasses import fields
from pathlib import Path

import pytest

import rag.config
import rag.rerank.base
from rag import components
from rag.config import Settings
from rag.errors import ConfigError
from rag.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
FIELDS = {f.name for f in fields(Settings)}
# Settings properties and the fields they are made of.
PROPERTIES = {"models_dir": {"cache_dir"}, "index_dir": {"data_dir"}, "kb_dir": {"data_dir", "kb"}}
BUILT_WITH_SETTINGS = ("engine", "embedder", "strategy", "reranker", "evidence_scorer")


def settings_read(factory: object) -> set[str]:
    """The settings a factory's source reads (``settings.x``, ``getattr(settings, "x")``), for a class its methods'
    and its rag base classes'; ``<passed on>`` when it hands ``settings`` whole to something else."""
    sources = [k for k in factory.__mro__ if k.__module__.startswith("rag.")] if inspect.isclass(factory) else [factory]
    found: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(source)))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "settings":
                found |= PROPERTIES.get(node.attr, {node.attr})
            elif isinstance(node, ast.Call):
                args = [*node.args, *(k.value for k in node.keywords)]
                named = [a for a in args if isinstance(a, ast.Name) and a.id == "settings"]
                if isinstance(node.func, ast.Name) and node.func.id == "getattr" and named:
                    found.add(node.args[1].value)
                elif named:
                    found.add("<passed on>")
    return found


def test_the_reader_sees_attributes_getattr_and_hand_offs():
    def factory(ctx, settings):
        return (settings.top_k, settings.models_dir, getattr(settings, "hops", 2), ctx)

    def hands_off(settings):
        return Settings.replace(settings)

    assert settings_read(factory) == {"top_k", "cache_dir", "hops"}
    assert settings_read(hands_off) == {"<passed on>"}


@pytest.mark.parametrize("setting", BUILT_WITH_SETTINGS)
def test_each_component_reads_what_it_declares(setting):
    registry = components.registry(setting)
    for name in registry.names():
        declared = registry.reads(name)
        assert declared <= FIELDS, f"{setting} {name!r} declares unknown settings {sorted(declared - FIELDS)}"
        assert settings_read(registry.get(name)) == declared, f"{setting} {name!r}"


def test_validation_asks_the_registries(monkeypatch):
    for setting in components.REGISTRIES:
        assert getattr(Settings(), setting) in components.choices(setting)
    with pytest.raises(ConfigError, match="setting reranker='toy' is not allowed; choose one of: first, icr"):
        Settings(reranker="toy")
    toy = Registry("reranker")
    for name in rag.rerank.base.RERANKERS.names():
        toy.register(name)(rag.rerank.base.RERANKERS.get(name))
    toy.register("toy")(lambda engine, settings: None)
    monkeypatch.setattr(rag.rerank.base, "RERANKERS", toy)
    assert Settings(reranker="toy").reranker == "toy"  # registered in the test alone: allowed


def test_evidence_scorer_and_segmenter_are_validated():
    with pytest.raises(ConfigError, match="evidence_scorer='magic' is not allowed; choose one of: embedding, hybrid"):
        Settings(evidence_scorer="magic")
    with pytest.raises(ConfigError, match="segmenter='magic' is not allowed; choose one of: structure, fixed"):
        Settings(segmenter="magic")
    assert components.choices("answer_mode") == ("auto", "extractive", "generative", "grounded")


def test_config_lists_no_component_names():
    for tuple_name in ("ENGINES", "EMBEDDERS", "SEGMENTERS", "ANSWER_MODES", "STRATEGIES", "RERANKERS"):
        assert not hasattr(rag.config, tuple_name)
    assert "llm-hops" in components.choices("strategy") and "icr" in components.choices("reranker")


def test_model_cache_keys_cover_what_builds_the_model():
    assert components.engine_settings("local") == {"engine", "cache_dir", "kv_cache", "kv_cache_mb"}
    assert {"engine", "llm_base_url", "llm_model", "llm_api_key", "llm_api", "llm_timeout_s"} <= (
        components.engine_settings("openai")
    )
    assert {"embedder", "cache_dir", "embed_backend", "embed_batch_tokens"} <= components.embedder_settings("local")
    assert {"embed_base_url", "embed_model", "llm_timeout_s"} <= components.embedder_settings("openai")


def test_loading_every_registry_imports_nothing_heavy():
    code = (
        "import sys\nfrom rag import components\n"
        "for s in components.REGISTRIES: components.choices(s)\n"
        "from rag.config import Settings\nSettings()\n"
        "heavy = [m for m in ('torch', 'transformers', 'onnxruntime', 'llama_cpp', 'chromadb', 'vllm') "
        "if m in sys.modules]\nassert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
