"""Follow-up rewriting for retrieval (``none``, ``entities``, ``llm``) behind :data:`REWRITERS`; see
:mod:`rag.followup.base`."""

from __future__ import annotations

from rag.followup.base import (
    REWRITERS, FollowupContext, Rewrite, fuse, is_followup, resolve_mode, retrieve_fused, rewrite,
)

__all__ = [
    "REWRITERS", "FollowupContext", "Rewrite", "fuse", "is_followup", "resolve_mode", "retrieve_fused", "rewrite",
]
