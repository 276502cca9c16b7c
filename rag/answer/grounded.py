"""``grounded``: the LLM answers, then every sentence is checked against the passages.

With the embedded base model, unsupported sentences are left out of the answer
(and listed in ``Answer.unsupported`` so the reader sees what was removed); with
a chat model they stay in place, marked ``supported=False`` (its paraphrases
are often true and its Markdown must keep its shape). When no sentence is
supported, the answer quotes the best evidence under a plain lead ("The
documents say:"). When no evidence clears the abstain threshold, the LLM is
not asked at all.
"""

from __future__ import annotations

from typing import Iterator

from rag.answer.base import (
    MODES, QUOTE_LEAD, AnswerJob, Draft, abstain_draft, abstains, answer_sentences, quote, with_highlights,
)
from rag.answer.generative import generate_step, generate_text, retrieval_only
from rag.answer.support import check
from rag.generate import citation, cite
from rag.engines.base import Streams
from rag.types import AnswerSentence


@MODES.register("grounded")
class Grounded:
    name = "grounded"
    uses_llm = True

    def stream(self, job: AnswerJob) -> Iterator[str | Draft]:
        why = abstains(job)
        if why:
            draft = abstain_draft(why)
            yield draft.text
            yield draft
            return
        raw, usage, error = yield from generate_text(job)
        if error:
            yield retrieval_only(job, usage, error)
            return
        engine = job.engine()
        # A chat model's answer keeps its shape (lists, paragraphs): its unsupported sentences are marked,
        # not removed. A base model's are removed: at 270M they are noise more often than paraphrase.
        yield self.check(job, raw, usage, mark=isinstance(engine, Streams) and engine.takes_messages)

    def check(self, job: AnswerJob, raw: str, usage, mark: bool = False) -> Draft:
        text, citations = cite(raw, job.hits)
        candidates = [e.sentence for e in job.evidence()]
        verdicts = [(a, b, check(text[a:b], job.question, candidates)) for a, b in answer_sentences(text)]
        dropped = tuple(" ".join(text[a:b].split()) for a, b, v in verdicts if not v.supported)
        steps = (generate_step(usage),)
        if len(dropped) == len(verdicts):  # nothing supported (or nothing said): quote the evidence
            fallback = quote(job, lead=QUOTE_LEAD)
            return Draft(fallback.text, fallback.citations, fallback.sentences, usage,
                         unsupported=dropped or ((" ".join(raw.split()),) if raw.strip() else ()), steps=steps)
        if mark:
            marks = tuple(
                AnswerSentence(a, b, v.supported, v.score, _numbers(v.hits), _shift(v.unverified, a))
                for a, b, v in verdicts
            )
            return Draft(text, with_highlights(citations, job.hits, job.evidence()), marks, usage, steps=steps)
        # The text without the dropped sentences; kept sentences keep their exact words (offsets recorded).
        out, kept, last = "", [], 0
        for a, b, v in verdicts:
            gap = text[last:a]
            out += gap.lstrip(" \t") if not out or out[-1] in " \t\n" else gap
            if v.supported:
                kept.append(AnswerSentence(len(out), len(out) + b - a, True, v.score, _numbers(v.hits),
                                           _shift(v.unverified, len(out))))
                out += text[a:b]
            last = b
        tail = text[last:]
        out = (out + (tail.lstrip(" \t") if out[-1:] in (" ", "\t", "\n") else tail)).rstrip()
        _, citations = cite(out, job.hits)
        extra = sorted({n for s in kept for n in s.citations} - {c.number for c in citations})
        citations = (*citations, *(citation(n, job.hits[n - 1], inferred=True) for n in extra))
        return Draft(out, with_highlights(citations, job.hits, job.evidence()), tuple(kept), usage,
                     unsupported=dropped, steps=steps)


def _shift(spans: tuple[tuple[int, int], ...], by: int) -> tuple[tuple[int, int], ...]:
    """Sentence offsets as offsets into the answer text (the sentence starts at ``by``)."""
    return tuple((a + by, b + by) for a, b in spans)


def _numbers(hits: tuple[int, ...]) -> tuple[int, ...]:
    """Passage indices as the [n] numbers the answer uses."""
    return tuple(h + 1 for h in hits)
