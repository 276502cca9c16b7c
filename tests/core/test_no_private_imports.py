"""No module imports a private name (``_x``) from another module: a private name is free to change."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def sources() -> list[Path]:
    """Every module of rag/ and ingest/, and app.py."""
    files = [p for package in ("rag", "ingest") for p in sorted((ROOT / package).rglob("*.py"))]
    return [p for p in files if "__pycache__" not in p.parts] + [ROOT / "app.py"]


def private_imports(source: str) -> list[str]:
    """``line: statement`` for each import of ``source`` that names a private module or name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            names = [a.name for a in node.names]
            parts = (node.module or "").split(".") + names
            statement = f"from {module} import {', '.join(names)}"
        elif isinstance(node, ast.Import):
            parts = [part for a in node.names for part in a.name.split(".")]
            statement = f"import {', '.join(a.name for a in node.names)}"
        else:
            continue
        if any(p.startswith("_") and not (p.startswith("__") and p.endswith("__")) for p in parts):
            found.append(f"{node.lineno}: {statement}")
    return found


def test_the_check_finds_private_imports():
    sample = (
        "from __future__ import annotations\nimport json\nfrom rag.cli import EXIT_OK, _run\n"
        "from . import _helpers\nimport a._b\nfrom a._b import c\nfrom rag import __version__\n"
    )
    assert private_imports(sample) == [
        "3: from rag.cli import EXIT_OK, _run", "4: from . import _helpers", "5: import a._b", "6: from a._b import c"
    ]


def test_no_module_imports_a_private_name():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}" for path in sources() for line in private_imports(path.read_text("utf-8"))
    ]
    assert offenders == [], "private names imported across modules (make them public or move them):\n" + "\n".join(
        offenders
    )
