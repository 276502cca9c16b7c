"""Answer modes (extractive, generative, grounded) behind :data:`MODES`; see :mod:`rag.answer.base`."""

from __future__ import annotations

from rag.answer.base import MODES, AnswerJob, AnswerMode, Draft
from rag.config import Settings


def resolve_mode(settings: Settings) -> str:
    """The mode ``settings.answer_mode`` names; ``auto`` is ``grounded`` (see the README's answer-mode table)."""
    return "grounded" if settings.answer_mode == "auto" else settings.answer_mode


def make_mode(settings: Settings) -> AnswerMode:
    return MODES.create(resolve_mode(settings))


__all__ = ["MODES", "AnswerJob", "AnswerMode", "Draft", "make_mode", "resolve_mode"]
