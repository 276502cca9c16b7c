"""``pointwise``: relevance = P("yes") vs P("no") for each (query, passage) prompt (monoT5 / Qwen3-Reranker form)."""

from __future__ import annotations

import math
import time

from rag.config import Settings
from rag.engines.base import ScoresNextTokens
from rag.prompts import load_prompt
from rag.generate import passage_line
from rag.rerank.base import RERANKERS, finish
from rag.types import Hit, TraceStep


@RERANKERS.register("pointwise", reads={"rerank_passage_chars"})
class PointwiseReranker:
    """Scores each passage alone: ``sigmoid(logit_yes - logit_no)`` at the answer position.

    All prompts go to the engine in one batch. The instruction and the query
    come first and the passage last, so the prompts share a prefix that the
    local engine runs once and servers with prefix caching reuse.
    """

    name = "pointwise"
    needs = (ScoresNextTokens,)

    def __init__(self, engine, settings: Settings) -> None:
        self.engine = engine
        self.max_chars = settings.rerank_passage_chars
        self.template = load_prompt("rerank_pointwise").rstrip("\n")

    def rerank(self, query: str, hits: list[Hit], k: int) -> tuple[list[Hit], TraceStep]:
        t0 = time.perf_counter()
        prompts = [self.template.format(query=query, passage=passage_line(h, self.max_chars)) for h in hits]
        logprobs = self.engine.next_token_logprobs_batch(prompts, ["yes", "no"]) if prompts else []
        scores = [1.0 / (1.0 + math.exp(lp["no"] - lp["yes"])) for lp in logprobs]
        # Stable: ties keep the first-stage order.
        order = sorted(range(len(hits)), key=lambda i: -scores[i])
        return finish(self.name, query, hits, order, scores, k, t0, calls=len(prompts))
