"""The README's Python example runs (or docs/api_example.py until the README has the section)."""

from __future__ import annotations

import re
from pathlib import Path

import rag.pipeline

ROOT = Path(__file__).resolve().parents[2]


def example_code() -> tuple[str, str]:
    """The ```python block under '## Python API' in README.md, else docs/api_example.py."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Python API\s*$(.*?)(?=^## |\Z)", readme, re.M | re.S)
    if section:
        block = re.search(r"```python\n(.*?)```", section.group(1), re.S)
        assert block, "README's '## Python API' section has no ```python block"
        return block.group(1), "README.md"
    path = ROOT / "docs" / "api_example.py"
    return path.read_text(encoding="utf-8"), str(path)


class _Shared:
    """The session engine, handed to the example without letting it close it."""

    def __init__(self, engine) -> None:
        self._engine = engine

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def close(self) -> None:
        pass


def test_python_example_runs(monkeypatch, tmp_path, capsys, embedder, engine):
    code, origin = example_code()
    # The example opens its own RAG: hand it the already loaded models.
    monkeypatch.setattr(rag.pipeline, "make_embedder", lambda settings: embedder)
    monkeypatch.setattr(rag.pipeline, "make_engine", lambda settings: _Shared(engine))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, origin, "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert "added" in out and "otters.md" in out, out
