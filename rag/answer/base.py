"""Answer modes: how the answer text is made from the retrieved passages and their evidence.

A mode gets an :class:`AnswerJob` (the question, the passages in prompt order,
the ranked evidence sentences, a lazy engine) and yields text pieces as they
are produced, then one :class:`Draft`. The pipeline turns the draft into the
public :class:`~rag.types.Answer`. A new mode is one file plus its
``@MODES.register`` line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, Protocol, Sequence, runtime_checkable

from rag.config import Settings
from rag.answer.abstain import Abstention, Mentions, abstention
from rag.evidence import pick
from rag.evidence.base import Evidence
from rag.generate import citation
from rag.registry import Registry
from rag.types import AnswerSentence, Citation, Hit, Span, TraceStep, Usage

# Said when no evidence clears the abstain threshold.
ABSTAIN_TEXT = "The documents do not answer this question. The nearest passages are listed below."
# Said when the question names something the knowledge base never mentions ({names}: quoted, joined).
ABSTAIN_UNKNOWN_TEXT = "The documents never mention {names}, so they do not answer this question. " \
    "The nearest passages are listed below."
# Lead of an answer that only quotes the documents (grounded mode's fallback).
QUOTE_LEAD = "The documents say:"


@dataclass(frozen=True)
class Draft:
    """What a mode produced: the text with its citations, sentence checks and cost."""

    text: str
    citations: tuple[Citation, ...] = ()
    sentences: tuple[AnswerSentence, ...] = ()
    usage: Usage = Usage()
    error: str = ""
    abstained: bool = False
    unsupported: tuple[str, ...] = ()
    steps: tuple[TraceStep, ...] = ()


@dataclass
class AnswerJob:
    """Everything a mode needs for one question.

    ``hits`` are the passages in prompt order ([n] is ``hits[n-1]``);
    ``evidence()`` ranks their sentences (computed once, on first use);
    ``mentions`` says whether the knowledge base names something anywhere
    (for abstaining, :mod:`rag.answer.abstain`; None: not asked).
    """

    question: str
    hits: Sequence[Hit]
    history: Sequence[tuple[str, str]]
    settings: Settings
    session: str | None
    engine: Callable[[], object]
    rank_evidence: Callable[[], list[Evidence]]
    mentions: Mentions | None = None
    _evidence: list[Evidence] | None = field(default=None, repr=False)

    def evidence(self) -> list[Evidence]:
        if self._evidence is None:
            self._evidence = self.rank_evidence()
        return self._evidence


@runtime_checkable
class AnswerMode(Protocol):
    name: str
    uses_llm: bool

    def stream(self, job: AnswerJob) -> Iterator[str | Draft]: ...


MODES: Registry[AnswerMode] = Registry("answer mode", package="rag.answer")


def spans(evidence: Sequence[Evidence]) -> tuple[Span, ...]:
    """Evidence sentences as spans of their passage's text (in the given order)."""
    return tuple(Span(e.sentence.start, e.sentence.end, round(float(e.score), 4)) for e in evidence)


def with_highlights(
    citations: Sequence[Citation], hits: Sequence[Hit], evidence: Sequence[Evidence], chosen: Sequence[Evidence] = ()
) -> tuple[Citation, ...]:
    """Citations with their evidence: the ``chosen`` sentences of that passage, else its best one."""
    index = {h.chunk.id: i for i, h in enumerate(hits)}
    out = []
    for c in citations:
        i = index.get(c.chunk_id)
        if i is None:
            out.append(c)
            continue
        picked = [e for e in chosen if e.sentence.hit == i] or [e for e in evidence if e.sentence.hit == i][:1]
        out.append(replace(c, highlights=spans(picked)))
    return tuple(out)


_FENCE = re.compile(r"^\s*(```|~~~)")


def answer_sentences(text: str) -> list[tuple[int, int]]:
    """Checkable sentences of an answer as (start, end) offsets: line by line, code blocks left out.

    Markdown structure (list markers, headings, table rows) stays outside the
    spans, so a sentence can be dropped without breaking a list.
    """
    from rag.evidence.sentences import split_spans

    out: list[tuple[int, int]] = []
    pos, in_code = 0, False
    for line in text.splitlines(keepends=True):
        start, body = pos, line.rstrip("\n")
        pos += len(line)
        if _FENCE.match(body):
            in_code = not in_code
            continue
        if in_code or not body.strip() or body.lstrip().startswith("|"):
            continue
        lead = len(body) - len(_LINE_LEAD.sub("", body, count=1))
        for a, b in split_spans(body[lead:]):
            if body[lead + a : lead + b].strip():
                out.append((start + lead + a, start + lead + b))
    return out


_LINE_LEAD = re.compile(r"^\s*(?:[-*+>]\s+|\d+[.)]\s+|#+\s+)?")


def quote(job: AnswerJob, lead: str = "") -> Draft:
    """The best evidence sentences quoted with their [n] markers (an extractive answer)."""
    s = job.settings
    ranked = job.evidence()
    chosen = pick(ranked, s.evidence_sentences, s.evidence_chars)
    if not chosen:
        return Draft("", ())
    marks = []
    text = f"{lead} " if lead else ""
    for e in chosen:
        piece = " ".join(e.sentence.text.split())
        start = len(text) + 1
        text += f"\u201c{piece}\u201d [{e.sentence.hit + 1}] "
        marks.append(AnswerSentence(start, start + len(piece), True, round(float(e.score), 4), (e.sentence.hit + 1,)))
    numbers = list(dict.fromkeys(e.sentence.hit for e in chosen))
    citations = tuple(citation(i + 1, job.hits[i], highlights=spans([e for e in chosen if e.sentence.hit == i]))
                      for i in numbers)
    return Draft(text.strip(), citations, tuple(marks))


def abstains(job: AnswerJob) -> Abstention | None:
    """Why the documents do not answer (None: they may): a name of the question is nowhere in the knowledge
    base, or no evidence sentence clears the calibrated threshold (or there is no evidence at all); see
    :mod:`rag.answer.abstain`."""
    return abstention(job.question, job.evidence(), job.settings.abstain_threshold, job.mentions)


def abstain_draft(why: Abstention) -> Draft:
    """The answer that says the documents do not answer, naming what they never mention (a misspelt or
    unknown name is then plain to see)."""
    if not why.unknown:
        return Draft(ABSTAIN_TEXT, (), abstained=True)
    names = [f"\u201c{n}\u201d" for n in why.unknown[:3]]
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return Draft(ABSTAIN_UNKNOWN_TEXT.format(names=joined), (), abstained=True)


def evidence_step(ranked: Sequence[Evidence], hits: Sequence[Hit], seconds: float, scorer: str) -> TraceStep:
    """The trace step of evidence ranking: the best sentences, their passage and score."""
    top = list(ranked[:5])
    return TraceStep(
        "evidence",
        hits=tuple((hits[e.sentence.hit].chunk.id, round(float(e.score), 4)) for e in top),
        seconds=seconds,
        detail={
            "scorer": scorer,
            "sentences": len(ranked),
            "best": [f"[{e.sentence.hit + 1}] {' '.join(e.sentence.text.split())[:200]}" for e in top[:3]],
        },
    )
