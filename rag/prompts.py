"""Prompt templates are files in ``prompts/``; each is checked for its placeholders on load."""

from __future__ import annotations

import functools
import string
from pathlib import Path

from rag.errors import ConfigError

# Placeholders each template must contain (and may not exceed).
REQUIRED: dict[str, frozenset[str]] = {
    "answer": frozenset({"passages", "history", "evidence", "question"}),
    "answer_evidence": frozenset({"sentences"}),
    "answer_chat_system": frozenset(),
    "answer_chat_user": frozenset({"passages", "question"}),
    "next_query": frozenset({"passages", "question"}),
    "rerank_pointwise": frozenset({"query", "passage"}),
    "rerank_listwise": frozenset({"count", "passages", "query"}),
    "rerank_first": frozenset({"passages", "query"}),
    "rerank_icr": frozenset({"passages", "query"}),
    "evidence_attention": frozenset({"passages", "question"}),
    "evidence_yesno": frozenset({"question", "title", "sentence"}),
    "followup_rewrite": frozenset({"history", "question"}),
    "followup_rewrite_chat_system": frozenset(),
    "followup_rewrite_chat_user": frozenset({"history", "question"}),
}


def prompts_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "prompts", here.parent / "prompts"):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"prompt folder not found next to {here}; reinstall hoprag")


@functools.lru_cache(maxsize=None)
def load_prompt(name: str) -> str:
    """The template ``prompts/{name}.txt``, checked against its required placeholders."""
    path = prompts_dir() / f"{name}.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"prompt template {path} cannot be read: {exc}") from exc
    found = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
    need = REQUIRED.get(name)
    if need is not None and found != need:
        raise ConfigError(
            f"prompt template {path} has placeholders {sorted(found)}; it must have exactly {sorted(need)}"
        )
    return text
