"""ICR's layer spec: one parser for the setting and the reranker, checked against the model's layer types."""

from __future__ import annotations

import pytest

from rag.config import Settings
from rag.errors import ConfigError
from rag.engines.local import select_layers

# Gemma-3-270M: every 6th of 18 layers is global.
GEMMA_TYPES = ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(18)]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("global", [5, 11, 17]),
        ("global@12", [5, 11]),
        ("all@3", [0, 1, 2]),
        ("all@99", list(range(18))),
    ],
)
def test_select_layers(spec: str, expected: list[int]) -> None:
    assert select_layers(spec, GEMMA_TYPES, 18) == expected


def test_model_without_sliding_windows_reads_every_layer_as_global() -> None:
    assert select_layers("global@4", [], 8) == [0, 1, 2, 3]


@pytest.mark.parametrize("spec", ["local", "global@", "global@0", "all@-1", "global@x"])
def test_bad_spec_is_refused_by_settings_and_reranker(spec: str) -> None:
    with pytest.raises(ConfigError, match="'global' or 'all'"):
        Settings(rerank_icr_layers=spec)
    with pytest.raises(ConfigError, match=f"rerank_icr_layers={spec!r}"):
        select_layers(spec, GEMMA_TYPES, 18)


def test_spec_that_selects_no_layer_names_the_model_size() -> None:
    with pytest.raises(ConfigError, match="selects no layer of this model \\(18 layers\\)"):
        select_layers("global@5", GEMMA_TYPES, 18)
