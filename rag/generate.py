"""Prompt building and citation handling for answers.

Layout for prefix reuse: the static instructions come first, then the passages
in a deterministic order, then history and the question. Nothing that changes
per request sits before the passages.
"""

from __future__ import annotations

import logging
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rag.errors import ConfigError
from rag.prompts import load_prompt
from rag.types import Citation, Hit, Prompt

log = logging.getLogger(__name__)

STOP = ("\n", "\nQuestion:", "\nPassages:")
_CITE = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    "a an the of and or in on at to for is are was were be by with as it its this that from how what which who "
    "i you do does did not no yes can".split()
)
# Lines in a passage that mimic the prompt's own structure are neutralised so a
# document cannot start a fake question, answer or role turn.
_ROLE_LINE = re.compile(
    r"^(\s*)(question|answer|passages|example|system|user|assistant|human|model|instructions?)\s*:", re.I | re.M
)
# "[3]" is the prompt's passage label and citation syntax: inside a passage it
# becomes "(3)", so a document cannot open a fake passage or pre-write citations.
_LABEL = re.compile(r"\[(\s*\d+(?:\s*,\s*\d+)*\s*)\]")
# Chat-template control tokens (Gemma, ChatML, Llama) that a tokenizer would
# read as real special tokens if they appeared verbatim in a document.
_SPECIAL_TOKEN = re.compile(
    r"<(?=/?(?:start_of_turn|end_of_turn|bos|eos|pad|s)>)|<(?=\|[^|<>\n]{1,40}\|>)", re.I
)


def passage_header(hit: Hit) -> str:
    c = hit.chunk
    # One line whatever the file name or heading holds (an upload name may contain newlines).
    name = " ".join((Path(c.source).name or c.source).split())
    where = f", page {c.page}" if c.page is not None else ""
    section = f" ({' '.join(c.section.split())})" if c.section else ""
    return sanitize(f"{name}{where}{section}")


def sanitize(text: str) -> str:
    """Passage text made inert: no role lines, no [n] labels, no chat control tokens."""
    text = _SPECIAL_TOKEN.sub("\u2039", text.replace("\r", ""))
    text = _LABEL.sub(lambda m: f"({m.group(1)})", text)
    return _ROLE_LINE.sub(lambda m: f"{m.group(1)}{m.group(2)} -", text).strip()


# A single line break inside a paragraph (hard-wrapped text, PDF lines) that does
# not start a list item or table row.
_WRAP = re.compile(r"(?<=\S)[ \t]*\n(?![ \t]*(?:\n|[-*+|>]\s|\d+[.)]\s|#))[ \t]*")


def unwrap(text: str) -> str:
    """Join hard-wrapped lines: a model that copies a wrapped sentence would stop at the break."""
    return _WRAP.sub(" ", text)


def format_passage(number: int, hit: Hit) -> str:
    """One passage as the prompt shows it: ``[n] header`` then its inert, unwrapped text."""
    return f"[{number}] {passage_header(hit)}\n{unwrap(sanitize(hit.chunk.text))}"



def _history_entries(history: Sequence[tuple[str, str]]) -> list[str]:
    # One self-contained entry per turn, so turn n's history is a text prefix of turn n+1's.
    return [f"Question: {' '.join(q.split())}\nAnswer: {a.strip()}\n" for q, a in history]


def format_history(history: Sequence[tuple[str, str]]) -> str:
    return "".join(_history_entries(history))


def build_prompt(question: str, hits: Sequence[Hit], history: Sequence[tuple[str, str]] = ()) -> Prompt:
    """The answer prompt from ``prompts/answer.txt``, with its reusable prefix boundaries.

    Boundaries (character offsets) sit at the start of the passages block, at
    the end of each passage, at the start of each history turn and of the
    question line. The KV cache is snapshotted at the end of the static
    instructions, of the passages and of the history: with conversation-stable
    order, the next turn's prompt starts with one of those prefixes (a passage
    appended next turn starts right after the end of this turn's last one).
    """
    items = {
        "passages": [format_passage(i, h) for i, h in enumerate(hits, 1)],
        "history": _history_entries(history),
        "question": [" ".join(question.split())],
    }
    separators = {"passages": "\n\n", "history": "", "question": ""}
    text = ""
    starts: dict[str, int] = {}
    passage_ends: list[int] = []
    turn_starts: list[int] = []
    for literal, field, spec, conversion in string.Formatter().parse(load_prompt("answer")):
        text += literal
        if field is None:
            continue
        if spec or conversion:
            raise ConfigError(f"prompt template 'answer': placeholder {{{field}}} must not carry a format spec")
        starts[field] = len(text)
        for j, item in enumerate(items[field]):
            if j:
                text += separators[field]
            if field == "history":
                turn_starts.append(len(text))
            text += item
            if field == "passages":
                passage_ends.append(len(text))
    # The template file ends with a newline; the answer must start right after "Answer:".
    text = text.rstrip()
    # The question line ("Question: ...") begins where the history ends.
    question_line = text.rfind("\n", 0, starts["question"]) + 1
    snapshots = (starts["passages"], *passage_ends[-1:], question_line)
    return Prompt(text, (*snapshots, *passage_ends, *turn_starts), snapshots)


@dataclass(frozen=True)
class AnswerRequest:
    """What to send the engine for an answer: the prompt, its stop strings and the length limit."""

    prompt: Prompt
    stop: tuple[str, ...]
    max_tokens: int


def answer_request(engine, question: str, hits: Sequence[Hit], history: Sequence[tuple[str, str]], settings) -> AnswerRequest:
    """The answer prompt for ``engine`` (completion style for base models), with stops and length."""
    return AnswerRequest(build_prompt(question, hits, history), STOP, settings.max_new_tokens or 96)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 1}


def cite(text: str, hits: Sequence[Hit]) -> tuple[str, tuple[Citation, ...]]:
    """Map [n] markers in ``text`` to passages; drop (and log) markers outside the context.

    When the text cites nothing, the passage sharing the most content words with
    it is attached as an *inferred* citation (none if nothing is shared).
    """

    def make(n: int, inferred: bool = False) -> Citation:
        c = hits[n - 1].chunk
        return Citation(n, c.id, c.doc_id, c.source, c.page, c.section, c.text, inferred)

    numbers: list[int] = []
    bad: list[int] = []

    def fix(match: re.Match) -> str:
        keep = []
        for part in match.group(1).split(","):
            n = int(part)
            if 1 <= n <= len(hits):
                keep.append(n)
                if n not in numbers:
                    numbers.append(n)
            else:
                bad.append(n)
        return "".join(f"[{n}]" for n in keep)

    cleaned = _CITE.sub(fix, text).strip()
    if bad:
        log.warning("dropped citations to passages not in the context: %s", sorted(set(bad)))
    if numbers:
        return cleaned, tuple(make(n) for n in numbers)
    words = _words(cleaned)
    if not words or not hits:
        return cleaned, ()
    overlap = [len(words & _words(h.chunk.text)) for h in hits]
    best = max(range(len(hits)), key=lambda i: (overlap[i], -i))
    return cleaned, ((make(best + 1, inferred=True),) if overlap[best] > 0 else ())
