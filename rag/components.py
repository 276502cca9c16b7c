"""Which settings name a component, and what each component reads: asked of the registries, never listed twice.

:class:`~rag.config.Settings` validates ``engine``, ``reranker``... with
:func:`choices`; the UI keys its cached models with :func:`engine_settings` and
:func:`embedder_settings`. The registries are imported when first asked (their
modules are cheap: heavy imports happen when a component is built), so this
module imports nothing of them at load time and no import cycle goes through it.
"""

from __future__ import annotations

import importlib
from typing import Any

from rag.registry import Registry

# Setting → "module:attribute" of the registry (or tuple) of the names it takes.
REGISTRIES: dict[str, str] = {
    "engine": "rag.engines.base:ENGINES",
    "embedder": "rag.embed.base:EMBEDDERS",
    "strategy": "rag.retrieve:RETRIEVERS",
    "reranker": "rag.rerank.base:RERANKERS",
    "answer_mode": "rag.answer.base:MODES",
    "evidence_scorer": "rag.evidence.base:SCORERS",
    "segmenter": "ingest.segment:MODES",
    "followup_rewrite": "rag.followup.base:REWRITERS",
}
# Values a setting takes besides registered names ("auto" picks a mode from the engine).
EXTRA_CHOICES: dict[str, tuple[str, ...]] = {"answer_mode": ("auto",), "followup_rewrite": ("auto",)}


def registry(setting: str) -> Any:
    """The :class:`~rag.registry.Registry` (or name tuple) behind ``setting``."""
    module, attr = REGISTRIES[setting].split(":")
    return getattr(importlib.import_module(module), attr)


def choices(setting: str) -> tuple[str, ...]:
    """The values ``setting`` allows: the extra ones first, then the registered names (sorted)."""
    found = registry(setting)
    names = found.names() if isinstance(found, Registry) else tuple(found)
    return EXTRA_CHOICES.get(setting, ()) + tuple(names)


def reads(setting: str, name: str) -> frozenset[str]:
    """The settings component ``name`` of ``setting`` reads when it is built, and ``setting`` itself."""
    return registry(setting).reads(name) | {setting}


def engine_settings(name: str) -> frozenset[str]:
    """The settings that change what the LLM engine ``name`` is: a change means a new engine (a UI cache key)."""
    return reads("engine", name)


def embedder_settings(name: str) -> frozenset[str]:
    """The settings that change what the embedder ``name`` is: a change means a new embedder (a UI cache key)."""
    return reads("embedder", name)
