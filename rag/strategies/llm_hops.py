"""LLM-driven multi-hop retrieval (IRCoT / self-ask style): the LLM writes the next sub-question.

Each hop shows the LLM the question and the evidence so far
(``prompts/next_query.txt``); it answers with one follow-up question, which is
retrieved next, or with "Enough" (the stop rule). It also stops when the
follow-up repeats an earlier query, finds nothing new, or after ``hops``
rounds. The evidence budget is fixed: the hops' rankings are merged round-robin
(each sub-question keeps its best passages) and cut to k.
"""

from __future__ import annotations

import logging
import re
import time

from rag.engines.base import generate
from rag.errors import ConfigError
from rag.generate import format_passage
from rag.prompts import load_prompt
from rag.retrieve import RETRIEVERS, Filters, RetrievalContext, trace_step
from rag.types import Hit, TraceStep

log = logging.getLogger(__name__)

_ENOUGH = re.compile(r"^\W*(enough|none|no follow-?up|i don'?t know)\b", re.I)
_PASSAGE_CHARS = 400


def _format(hits: list[Hit]) -> str:
    """The evidence so far: titled, sanitised passages (the answer prompt's formatter), cut short."""
    return "\n".join(format_passage(i, h, max_chars=_PASSAGE_CHARS, title=True) for i, h in enumerate(hits, 1))


def parse_follow_up(text: str) -> str | None:
    """The follow-up question in the LLM's reply, or None when it says it has enough."""
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    line = re.sub(r"^(follow-?up|question)\s*:\s*", "", line, flags=re.I).strip()
    if not line or _ENOUGH.match(line):
        return None
    return line


class LLMHopRetriever:
    """Dense retrieval per sub-question; the engine decides the next sub-question or stops."""

    def __init__(self, ctx: RetrievalContext, hops: int = 2, max_tokens: int = 40, min_score: float = 0.0) -> None:
        if ctx.engine is None:
            raise ConfigError("strategy 'llm-hops' needs an LLM engine; choose another strategy or configure one")
        self.ctx = ctx
        self.hops = hops
        self.max_tokens = max_tokens
        self.min_score = min_score

    def _search(self, query: str, k: int, filters: Filters | None, seen: set[str]) -> list[Hit]:
        vec = self.ctx.embedder.embed([query])[0]
        hits = self.ctx.store.query(vec, k + len(seen), where=filters.where() if filters else None)
        return [h for h in hits if h.chunk.id not in seen and h.score >= self.min_score][:k]

    def retrieve(self, query: str, k: int, filters: Filters | None = None) -> tuple[list[Hit], list[TraceStep]]:
        t0 = time.perf_counter()
        first = self._search(query, k, filters, set())
        rankings = [first]
        steps = [trace_step("hop", query, first, t0, hop=1)]
        queries = {query.lower()}
        for hop in range(2, self.hops + 1):
            t1 = time.perf_counter()
            evidence = _merge(rankings, k)
            prompt = load_prompt("next_query").format(question=" ".join(query.split()), passages=_format(evidence))
            reply, _ = generate(self.ctx.engine(), prompt, max_tokens=self.max_tokens, stop=("\n",), temperature=0.0)
            follow_up = parse_follow_up(reply)
            if follow_up is None or follow_up.lower() in queries:
                stop = "enough" if follow_up is None else "repeat"
                steps.append(trace_step("hop", follow_up or "", [], t1, hop=hop, stop=stop, reply=reply))
                break
            queries.add(follow_up.lower())
            seen = {h.chunk.id for r in rankings for h in r}
            new = self._search(follow_up, k, filters, seen)
            steps.append(trace_step("hop", follow_up, new, t1, hop=hop, reply=reply))
            if not new:
                break
            rankings.append(new)
        return _merge(rankings, k), steps


def _merge(rankings: list[list[Hit]], k: int) -> list[Hit]:
    """Round-robin over the hops' rankings, first occurrence wins, at most ``k``."""
    out: list[Hit] = []
    seen: set[str] = set()
    depth = max((len(r) for r in rankings), default=0)
    for i in range(depth):
        for ranking in rankings:
            if i < len(ranking) and ranking[i].chunk.id not in seen:
                seen.add(ranking[i].chunk.id)
                out.append(ranking[i])
                if len(out) == k:
                    return out
    return out


@RETRIEVERS.register("llm-hops", reads={"hops", "min_score"})
def _llm_hops(ctx: RetrievalContext, settings) -> LLMHopRetriever:
    return LLMHopRetriever(ctx, hops=settings.hops, min_score=settings.min_score)
