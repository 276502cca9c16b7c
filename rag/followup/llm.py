"""``llm``: the engine rewrites the follow-up from the last turns.

A completion model gets ``prompts/followup_rewrite.txt``; a chat model
(``takes_messages``) the instructions as a system message
(``prompts/followup_rewrite_chat_system.txt``) and the turns as the user's
(``prompts/followup_rewrite_chat_user.txt``): sent as one user message, the
270M chat model repeats the instructions. One short greedy reply (at most
:data:`MAX_TOKENS` tokens, one line). The
earlier turns go through the same sanitiser as every prompt with document text
(answers quote documents). An engine error, an empty reply or a runaway one
falls back to the question as typed (the trace step says why), and so does a
reply that repeats a line of the instructions. Meant for chat
servers; the 270M embedded model is measured too (see the README table).
"""

from __future__ import annotations

import logging
import re

from rag.errors import EngineError
from rag.followup.base import REWRITERS, FollowupContext, Rewrite, is_followup, unchanged

log = logging.getLogger(__name__)

MAX_TOKENS = 48
TURNS = 2  # earlier turns shown
ANSWER_CHARS = 400  # each earlier answer is cut to this many characters
_PREFIX = re.compile(r"^\s*(?:rewritten(?: question)?|question|standalone(?: question)?)\s*:\s*", re.I)


def history_block(history, turns: int = TURNS, answer_chars: int = ANSWER_CHARS) -> str:
    """The last ``turns`` turns as the prompt shows them: inert, one line each, answers cut short."""
    from rag.generate import clip, sanitize

    lines = []
    for question, answer in list(history)[-turns:]:
        lines.append(f"Earlier question: {' '.join(sanitize(question).split())}")
        lines.append(f"Earlier answer: {clip(' '.join(sanitize(answer).split()), answer_chars)}")
    return "\n".join(lines)


def parse_rewrite(reply: str, question: str, instructions: str = "") -> str | None:
    """The rewritten question in the reply (its first line), or None when it is empty, runs away or
    repeats ``instructions``."""
    line = reply.strip().splitlines()[0] if reply.strip() else ""
    line = _PREFIX.sub("", line).strip().strip("\"'\u201c\u201d").strip()
    if len(line) < 3 or len(line) > 3 * len(question) + 120:
        return None
    if len(line) >= 10 and line.lower() in instructions.lower():
        return None
    if len(re.findall(r"[^\W\d_]{2,}", line)) < 2:  # not a question: "<</SYS>>", "1897."
        return None
    return line


def rewrite_prompt(history, question: str, chat: bool):
    """The prompt for ``question`` after ``history`` (chat messages for a chat model) and its instructions."""
    from rag.prompts import load_prompt
    from rag.types import ChatPrompt, Message

    fields = {"history": history_block(history), "question": " ".join(question.split())}
    if not chat:
        template = load_prompt("followup_rewrite")
        return template.format(**fields), template
    system = load_prompt("followup_rewrite_chat_system").strip()
    user = load_prompt("followup_rewrite_chat_user").format(**fields).strip()
    return ChatPrompt((Message("system", system), Message("user", user))), system


class LLMRewriter:
    name = "llm"

    def rewrite(self, ctx: FollowupContext) -> Rewrite:
        if ctx.engine is None:
            return unchanged(ctx, self.name, reason="no engine")
        from rag.engines.base import generate

        followup = is_followup(ctx.question, ctx.history)
        try:
            engine = ctx.engine()
            chat = bool(engine.takes_messages)
            prompt, instructions = rewrite_prompt(ctx.history, ctx.question, chat)
            # A chat model may open its turn with a line break: its first non-empty line is read instead.
            reply, _ = generate(engine, prompt, max_tokens=MAX_TOKENS, stop=() if chat else ("\n",), temperature=0.0)
        except EngineError as exc:
            log.warning("follow-up rewrite failed, retrieving the question as typed: %s", exc)
            return unchanged(ctx, self.name, followup=followup, error=str(exc))
        query = parse_rewrite(reply, ctx.question, instructions)
        if query is None:
            return unchanged(ctx, self.name, followup=followup, reason="empty or runaway reply", reply=reply[:200])
        return Rewrite(ctx.question, query, self.name, followup=followup, detail={"reply": reply[:200]})


@REWRITERS.register("llm")
def _llm(settings) -> LLMRewriter:
    return LLMRewriter()
