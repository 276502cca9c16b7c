"""CLI command modules: each module here adds its commands to the apps of :mod:`rag.commands.common` on import.

Keeping one concern per module (eval retrieval, bench ingest, serve, ...) lets
each feature own its command without touching the others.
"""

from __future__ import annotations

import importlib
import pkgutil


def register_all() -> None:
    """Import every module in this package (each registers its commands)."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
