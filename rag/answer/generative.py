"""``generative``: the LLM writes the answer from the passages; its [n] citations are checked."""

from __future__ import annotations

import logging
from typing import Generator, Iterator, Sequence

from rag.answer.base import MODES, AnswerJob, Draft, answer_sentences, with_highlights
from rag.engines.base import Streams
from rag.errors import ConfigError, EngineError, HopragError
from rag.evidence import pick
from rag.evidence.base import Evidence
from rag.generate import answer_request, citation, cite
from rag.types import AnswerSentence, TraceStep, Usage

log = logging.getLogger(__name__)


def generate_text(job: AnswerJob) -> Generator[str, None, tuple[str, Usage, str]]:
    """Stream the LLM's answer pieces; return ``(text, usage, error)`` (``raw, usage, error = yield from ...``).

    An engine that fails before its first piece gives an error instead (the
    answer becomes retrieval-only); one that fails mid-answer raises.
    A completion engine (the embedded base model) also gets the best evidence
    sentences before the question (:func:`key_sentences`); a chat model reads
    the passages well without them, and its prompt stays prefix-stable.
    """
    engine = job.engine()
    keys = () if isinstance(engine, Streams) and engine.takes_messages else key_sentences(job.evidence())
    request = answer_request(engine, job.question, job.hits, job.history, job.settings, keys)
    parts: list[str] = []
    usage, error = Usage(), ""
    try:
        for item in engine.stream(
            request.prompt,
            max_tokens=request.max_tokens,
            stop=request.stop,
            temperature=job.settings.temperature,
            session=job.session,
        ):
            if isinstance(item, Usage):
                usage = item
            else:
                parts.append(item)
                yield item
    except (EngineError, ConfigError, HopragError) as exc:
        if parts:
            raise
        error = str(exc)
        log.warning("generation failed, answering with sources only: %s", exc)
    return "".join(parts), usage, error


# Evidence sentences repeated before the question for a completion engine: 2 raised the embedded
# model's F1 on MuSiQue (README "Answer modes").
KEY_SENTENCES, KEY_CHARS = 2, 400


def key_sentences(ranked: Sequence[Evidence]) -> tuple[tuple[int, str], ...]:
    """The best of the ``ranked`` evidence sentences as ``(passage number, text)``, best first."""
    return tuple((e.sentence.hit + 1, e.sentence.text) for e in pick(ranked, KEY_SENTENCES, KEY_CHARS))


def generate_step(usage: Usage) -> TraceStep:
    return TraceStep(
        "generate",
        detail={
            "prompt_tokens": usage.prompt_tokens,
            "cached_tokens": usage.cached_tokens,
            "completion_tokens": usage.completion_tokens,
        },
        seconds=usage.total_s,
    )


def retrieval_only(job: AnswerJob, usage: Usage, error: str) -> Draft:
    """No answer text: every passage as a source, with its best evidence highlighted."""
    citations = tuple(citation(i, h, inferred=True) for i, h in enumerate(job.hits, 1))
    return Draft("", with_highlights(citations, job.hits, job.evidence()), usage=usage, error=error,
                 steps=(generate_step(usage),))


@MODES.register("generative")
class Generative:
    name = "generative"
    uses_llm = True

    def stream(self, job: AnswerJob) -> Iterator[str | Draft]:
        raw, usage, error = yield from generate_text(job)
        if error:
            yield retrieval_only(job, usage, error)
            return
        text, citations = cite(raw, job.hits)
        sentences = tuple(AnswerSentence(a, b) for a, b in answer_sentences(text))
        yield Draft(text, with_highlights(citations, job.hits, job.evidence()), sentences, usage,
                    steps=(generate_step(usage),))
