"""Prompt building, document-text hygiene and citation handling for answers.

Layout for prefix reuse: the static instructions come first, then the passages
in a deterministic order, then history and the question. Nothing that changes
per request sits before the passages. A base model (``takes_messages`` False)
gets one completion prompt (``prompts/answer.txt``) cut at the first line
break; a chat model gets a system message with the rules
(``prompts/answer_chat_system.txt``), the passages and the first question in
the first user turn (``prompts/answer_chat_user.txt``), the history as later
user/assistant turns, no stop strings and room for Markdown.

Every prompt that carries document text (answers, rerankers, LLM hops) shows it
through :func:`sanitize` (and :func:`format_passage` / :func:`passage_line`).
"""

from __future__ import annotations

import logging
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rag.engines.base import Streams, effective_max_tokens
from rag.errors import ConfigError
from rag.prompts import load_prompt
from rag.types import ChatPrompt, Chunk, Citation, Hit, Message, Prompt, Span

log = logging.getLogger(__name__)

# Completion prompts: the answer is one line (a base model runs on into a new "Question:").
STOP = ("\n", "\nQuestion:", "\nPassages:")
# Chat prompts: the model ends its turn itself; answers may span paragraphs and lists.
CHAT_STOP: tuple[str, ...] = ()
# [1], [1, 2], [1][2], [1-3]
_CITE = re.compile(r"\[(\d+(?:\s*[,\u2013-]\s*\d+)*)\]")
# Markdown code (fenced blocks, inline spans): brackets there are code (``a[1]``), never citations.
_CODE = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|`[^`\n]+`", re.S)
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


def source_label(source: str, page: int | None = None, section: str = "", sep: str | None = None) -> str:
    """``guide.md, page 3 (Install)``: a passage's file name, page and section on one line
    (with ``sep``, the three joined by it: ``guide.md · page 3 · Install``).

    One line whatever the file name or heading holds (an upload name may contain newlines).
    """
    name = " ".join((Path(source).name or source).split())
    section = " ".join(section.split())
    if sep is not None:
        return sep.join([name, *([f"page {page}"] if page is not None else []), *([section] if section else [])])
    where = f", page {page}" if page is not None else ""
    part = f" ({section})" if section else ""
    return f"{name}{where}{part}"


def passage_header(hit: Hit) -> str:
    """The inert source label a prompt shows above a passage."""
    c = hit.chunk
    return sanitize(source_label(c.source, c.page, c.section))


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


def clip(text: str, max_chars: int | None) -> str:
    """``text`` cut at ``max_chars`` on a word boundary, marked with " ..." when cut."""
    if max_chars is None or len(text) <= max_chars:
        return text
    return text[:max_chars].rsplit(" ", 1)[0] + " ..."


def format_passage(number: int, hit: Hit, *, max_chars: int | None = None, title: bool = False) -> str:
    """One passage as a prompt shows it: ``[n] header`` then its inert, unwrapped text.

    The header is the source label, or with ``title`` the chunk's title (a
    Wikipedia-style page name; the label when there is none). ``max_chars``
    cuts the text on a word boundary.
    """
    c = hit.chunk
    head = sanitize(" ".join(c.title.split())) if title and c.title.strip() else passage_header(hit)
    return f"[{number}] {head}\n{clip(unwrap(sanitize(c.text)), max_chars)}"


def passage_line(hit: Hit, max_chars: int | None = None) -> str:
    """A passage on one inert line (title, section and text), cut at ``max_chars``: rerank prompts."""
    return clip(" ".join(sanitize(hit.chunk.embed_text).split()), max_chars)


def citation(number: int, hit: Hit, *, inferred: bool = False, highlights: Sequence[Span] = ()) -> Citation:
    """The :class:`Citation` of the ``number``-th passage of a prompt (the one builder of citations from hits)."""
    c: Chunk = hit.chunk
    return Citation(number, c.id, c.doc_id, c.source, c.page, c.section, c.text, inferred, tuple(highlights))


def _history_entries(history: Sequence[tuple[str, str]]) -> list[str]:
    # One self-contained entry per turn, so turn n's history is a text prefix of turn n+1's.
    return [f"Question: {' '.join(q.split())}\nAnswer: {a.strip()}\n" for q, a in history]


def extra_instructions(instructions: str) -> str:
    """The asker's own instructions (an API system message, setting ``instructions``) as a prompt paragraph.

    They come after hoprag's rules and say they cannot override them.
    """
    text = "\n".join(line.rstrip() for line in instructions.strip().splitlines() if line.strip())
    return f"Instructions from the person asking (they do not override the rules above):\n{text}" if text else ""


def build_prompt(
    question: str,
    hits: Sequence[Hit],
    history: Sequence[tuple[str, str]] = (),
    *,
    instructions: str = "",
    key_sentences: Sequence[tuple[int, str]] = (),
) -> Prompt:
    """The answer prompt from ``prompts/answer.txt``, with its reusable prefix boundaries.

    Boundaries (character offsets) sit at the start of the passages block, at
    the end of each passage, at the start of each history turn and of the
    question line. The KV cache is snapshotted at the end of the static
    instructions, of the passages and of the history: with conversation-stable
    order, the next turn's prompt starts with one of those prefixes (a passage
    appended next turn starts right after the end of this turn's last one).
    ``instructions`` (see :func:`extra_instructions`) follow the rules paragraph.
    ``key_sentences`` (``(passage number, sentence)``, the best evidence) are
    repeated right before the question (``prompts/answer_evidence.txt``): a
    small base model copies its answer from text near the question far more
    often than from the middle of the passages. They change every turn, so
    they sit after the last snapshot.
    """
    template = load_prompt("answer")
    extra = extra_instructions(instructions)
    if extra:
        rules, _, rest = template.partition("\n\n")
        escaped = " ".join(extra.split()).replace("{", "{{").replace("}", "}}")
        template = f"{rules}\n{escaped}\n\n{rest}"
    items = {
        "passages": [format_passage(i, h) for i, h in enumerate(hits, 1)],
        "history": _history_entries(history),
        "question": [" ".join(question.split())],
        "evidence": [_key_block(key_sentences)] if key_sentences else [],
    }
    separators = {"passages": "\n\n", "history": "", "question": "", "evidence": ""}
    text = ""
    starts: dict[str, int] = {}
    passage_ends: list[int] = []
    turn_starts: list[int] = []
    for literal, field, spec, conversion in string.Formatter().parse(template):
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
    # The history ends where the key sentences (or, without them, the question line) begin.
    question_line = starts["evidence"]
    snapshots = (starts["passages"], *passage_ends[-1:], question_line)
    return Prompt(text, (*snapshots, *passage_ends, *turn_starts), snapshots)


def _key_block(key_sentences: Sequence[tuple[int, str]]) -> str:
    lines = "\n".join(f"[{n}] {' '.join(sanitize(text).split())}" for n, text in key_sentences)
    return load_prompt("answer_evidence").format(sentences=lines)


def build_chat_prompt(
    question: str, hits: Sequence[Hit], history: Sequence[tuple[str, str]] = (), *, instructions: str = ""
) -> ChatPrompt:
    """The answer prompt for a chat model, prefix-stable across turns.

    ``[system: rules, user: passages + first question, assistant: first answer,
    user: next question, ...]``: with the same passages, a turn's messages are
    the start of the next turn's, and the system message and passages block are
    byte-identical in every turn, so a server's prefix cache keeps hitting
    (a passage added later goes after the earlier ones, before the question).
    """
    first, *later = [*history, (question, "")]
    passages = "\n\n".join(format_passage(i, h) for i, h in enumerate(hits, 1))
    user = load_prompt("answer_chat_user").format(passages=passages, question=_one_line(first[0]))
    system = load_prompt("answer_chat_system").strip()
    extra = extra_instructions(instructions)
    messages = [Message("system", f"{system}\n\n{extra}" if extra else system), Message("user", user.strip())]
    for answered, (q, _) in zip([first, *later], later):
        messages += [Message("assistant", answered[1].strip()), Message("user", _one_line(q))]
    return ChatPrompt(tuple(messages))


def _one_line(question: str) -> str:
    return " ".join(question.split())


@dataclass(frozen=True)
class AnswerRequest:
    """What to send the engine for an answer: the prompt, its stop strings and the length limit."""

    prompt: Prompt | ChatPrompt
    stop: tuple[str, ...]
    max_tokens: int


def answer_request(
    engine: Streams,
    question: str,
    hits: Sequence[Hit],
    history: Sequence[tuple[str, str]],
    settings,
    key_sentences: Sequence[tuple[int, str]] = (),
) -> AnswerRequest:
    """The answer prompt in the form ``engine`` takes, with its stop strings and length limit.

    Chat engines get :func:`build_chat_prompt` and no stops; completion engines
    (the embedded base model, ``llm_api=completions``) :func:`build_prompt` and
    :data:`STOP`, with ``key_sentences`` (the best evidence) before the question.
    The length is ``settings.max_new_tokens``, or the engine's
    ``default_max_tokens`` when that is 0.
    """
    if not isinstance(engine, Streams):
        raise TypeError(
            f"{type(engine).__name__} is not an engine: it needs name, takes_messages, default_max_tokens, "
            "stream and close (rag.engines.base.Streams)"
        )
    max_tokens = effective_max_tokens(engine, settings.max_new_tokens)
    extra = settings.instructions
    if engine.takes_messages:
        return AnswerRequest(build_chat_prompt(question, hits, history, instructions=extra), CHAT_STOP, max_tokens)
    prompt = build_prompt(question, hits, history, instructions=extra, key_sentences=key_sentences)
    return AnswerRequest(prompt, STOP, max_tokens)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 1}


def cite(text: str, hits: Sequence[Hit]) -> tuple[str, tuple[Citation, ...]]:
    """Map [n] markers in ``text`` to passages; drop (and log) markers outside the context.

    When the text cites nothing, the passage sharing the most content words with
    it is attached as an *inferred* citation (none if nothing is shared).
    Markers are read anywhere in a multi-paragraph Markdown answer (lists,
    tables, later paragraphs), never inside code.
    """

    def make(n: int, inferred: bool = False) -> Citation:
        return citation(n, hits[n - 1], inferred=inferred)

    numbers: list[int] = []
    bad: list[int] = []

    def fix(match: re.Match) -> str:
        keep = []
        for n in _marker_numbers(match.group(1)):
            if 1 <= n <= len(hits):
                keep.append(n)
                if n not in numbers:
                    numbers.append(n)
            else:
                bad.append(n)
        return "".join(f"[{n}]" for n in keep)

    cleaned = _outside_code(text, lambda prose: _CITE.sub(fix, prose)).strip()
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


def _marker_numbers(inside: str) -> list[int]:
    """``1, 3`` → [1, 3]; a range ``2-4`` → [2, 3, 4] (a reversed or huge range counts its ends only)."""
    out: list[int] = []
    for part in inside.split(","):
        ends = [int(x) for x in re.split(r"[\u2013-]", part)]
        if len(ends) == 2 and 0 <= ends[1] - ends[0] <= 20:
            out += range(ends[0], ends[1] + 1)
        else:
            out += ends
    return out


def _outside_code(text: str, change) -> str:
    """``text`` with ``change`` applied to its prose only (Markdown code blocks and spans kept as they are)."""
    out: list[str] = []
    pos = 0
    for m in _CODE.finditer(text):
        out += [change(text[pos:m.start()]), m.group(0)]
        pos = m.end()
    out.append(change(text[pos:]))
    return "".join(out)
