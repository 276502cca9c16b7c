"""Without their extra installed, the adapters and the server fail naming the extra to install."""

from __future__ import annotations

import importlib
import sys

import pytest

from rag.errors import MissingExtraError


@pytest.mark.parametrize(
    "module, dependency, extra",
    [
        ("rag.integrations.langchain", "langchain_core", "langchain"),
        ("rag.integrations.llama_index", "llama_index.core", "llamaindex"),
        ("rag.server", "fastapi", "api"),
    ],
)
def test_missing_dependency_names_the_extra(monkeypatch, module, dependency, extra):
    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setitem(sys.modules, dependency, None)  # makes "import dependency" fail
    with pytest.raises(MissingExtraError, match=rf"pip install 'hoprag\[{extra}\]'"):
        importlib.import_module(module)
