"""The hoprag exception tree.

Every error a user can cause or fix is a :class:`HopragError`; its message is one
line that says what was wrong and what to do. The original exception is kept as
``__cause__`` (raise ... from exc) for debugging.
"""

from __future__ import annotations


class HopragError(Exception):
    """Base class of every error hoprag raises on purpose."""


class ConfigError(HopragError):
    """A setting has a bad value, or a config file cannot be read."""


class MissingExtraError(HopragError):
    """An optional dependency is not installed."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"this feature needs the '{extra}' extra (module '{module}' is not installed): "
            f"run  pip install 'hoprag[{extra}]'"
        )
        self.extra = extra
        self.module = module


class IngestError(HopragError):
    """A document could not be read, parsed or stored."""


class StoreError(HopragError):
    """The vector store or the document manifest failed."""


class EngineError(HopragError):
    """The LLM or embedding engine failed (unreachable server, bad reply, ...)."""


class EngineUnavailable(EngineError):
    """The engine cannot be reached at all; a retrieval-only answer is still possible."""


class CapabilityError(HopragError):
    """A component needs something the current engine cannot provide."""
