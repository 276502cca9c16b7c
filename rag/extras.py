"""Import helpers for optional dependencies: a missing extra names what to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from rag.errors import MissingExtraError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(extra, module) from exc
