"""``llm``: the language model locates the answer sentence.

- On an engine that exposes attention (the embedded model): ICR-style. One
  prompt holds every sentence of the passages, then the question; the
  attention the question's tokens pay to each sentence (summed over heads and
  the layers ``rerank_icr_layers`` selects, calibrated against a content-free
  query) is its score. One forward pass over the passages, no text generated.
- On a server (an engine that scores next tokens): each sentence is judged on
  its own, "Does the sentence answer the question? yes/no", and its score is
  P(yes) from the yes/no log-probabilities (the question comes first, so the
  shared prefix is computed once).

Prompts are ``prompts/evidence_attention.txt`` and ``prompts/evidence_yesno.txt``;
all document text goes through :func:`rag.generate.sanitize`.
"""

from __future__ import annotations

import math
from typing import Sequence

from rag.engines.base import CAPABILITY_NAMES, ExposesAttention, ScoresNextTokens, engines_with
from rag.errors import CapabilityError
from rag.evidence.base import SCORERS, ScorerContext, Sentence
from rag.generate import sanitize
from rag.prompts import load_prompt
from rag.types import Hit


def _one_line(text: str) -> str:
    return " ".join(sanitize(text).split())


@SCORERS.register("llm", reads={"rerank_icr_layers"})
class LLMScorer:
    """Attention mass per sentence on the local engine; yes/no log-probabilities on servers."""

    name = "llm"

    def __init__(self, ctx: ScorerContext, settings=None) -> None:
        self._engine = ctx.engine
        self.layers = getattr(settings, "rerank_icr_layers", "global@6") if settings is not None else "global@6"

    def score(self, question: str, sentences: Sequence[Sentence], hits: Sequence[Hit]) -> list[float]:
        if not sentences:
            return []
        engine = self._engine()
        if isinstance(engine, ExposesAttention):
            return self._attention(engine, question, sentences, hits)
        if isinstance(engine, ScoresNextTokens):
            return self._yes_no(engine, question, sentences, hits)
        able = sorted(set(engines_with(ExposesAttention)) | set(engines_with(ScoresNextTokens)))
        raise CapabilityError(
            f"evidence scorer 'llm' needs {CAPABILITY_NAMES[ExposesAttention]} or "
            f"{CAPABILITY_NAMES[ScoresNextTokens]} from the LLM engine, which engine "
            f"{getattr(engine, 'name', type(engine).__name__)!r} cannot provide; use engine "
            f"{' or '.join(repr(a) for a in able) or '(none available)'} or set evidence_scorer to another scorer"
        )

    def _attention(self, engine, question: str, sentences: Sequence[Sentence], hits: Sequence[Hit]) -> list[float]:
        head, rest = load_prompt("evidence_attention").split("{passages}", 1)
        mid, tail = rest.split("{question}", 1)
        segments = [head]
        index: list[int] = []  # segment index of each sentence
        last_hit = None
        for s in sentences:
            if s.hit != last_hit:
                title = _one_line(hits[s.hit].chunk.title)
                segments.append(f"\n[{s.hit + 1}] {title}:" if title else f"\n[{s.hit + 1}]")
                last_hit = s.hit
            index.append(len(segments))
            segments.append(" " + _one_line(s.text))
        segments.append(mid.rstrip(" "))
        scores = engine.attention_scores(
            segments, " " + _one_line(question), tail, layers=self.layers, score_segments=index
        )
        return [float(scores[i]) for i in index]

    def _yes_no(self, engine, question: str, sentences: Sequence[Sentence], hits: Sequence[Hit]) -> list[float]:
        template = load_prompt("evidence_yesno")
        prompts = [
            template.format(
                question=_one_line(question), title=_one_line(hits[s.hit].chunk.title) or "-", sentence=_one_line(s.text)
            )
            for s in sentences
        ]
        out = []
        for lp in engine.next_token_logprobs_batch(prompts, ["yes", "no"]):
            diff = lp["yes"] - lp["no"]
            out.append(1.0 / (1.0 + math.exp(-max(min(diff, 50.0), -50.0))))
        return out
