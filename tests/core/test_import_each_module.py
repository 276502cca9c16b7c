"""Every module of rag/ and ingest/ imports alone in a fresh interpreter: no import cycles, no hidden import order."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CYCLE = ("partially initialized module", "circular import")


def modules() -> list[str]:
    """Dotted names of every module and package under rag/ and ingest/ (``__main__`` runs a program: left out)."""
    names = []
    for package in ("rag", "ingest"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "__pycache__" in parts or parts[-1] == "__main__":
                continue
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def import_alone(module: str) -> str:
    """'' if ``module`` imports in a fresh interpreter, else the end of its traceback."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", f"import importlib; importlib.import_module({module!r})"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    return "" if proc.returncode == 0 else proc.stderr.strip()[-1500:]


def test_the_check_sees_a_cycle(tmp_path, monkeypatch):
    (tmp_path / "cyc").mkdir()
    (tmp_path / "cyc" / "__init__.py").write_text("")
    (tmp_path / "cyc" / "a.py").write_text("from cyc.b import B\nA = 1\n")
    (tmp_path / "cyc" / "b.py").write_text("from cyc.a import A\nB = 2\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    error = import_alone("cyc.a")
    assert any(marker in error for marker in CYCLE), error


def test_each_module_imports_alone():
    names = modules()
    assert "rag.store" in names and "ingest.pipeline" in names
    with ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2))) as pool:
        errors = dict(zip(names, pool.map(import_alone, names)))
    failed = {name: error for name, error in errors.items() if error}
    cycles = [name for name, error in failed.items() if any(marker in error for marker in CYCLE)]
    assert not cycles, "import cycles:\n" + "\n\n".join(f"{name}:\n{failed[name]}" for name in cycles)
    assert not failed, "modules that do not import alone:\n" + "\n\n".join(f"{n}:\n{e}" for n, e in failed.items())
