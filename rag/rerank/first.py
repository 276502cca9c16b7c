"""``first``: FIRST single-token listwise ranking — order a window by the logits of the first generated label."""

from __future__ import annotations

import string
import time

from rag.engines.base import ScoresNextTokens
from rag.rerank.base import RERANKERS, WindowedReranker, finish, rank_scores, windows
from rag.types import Hit, TraceStep

LABELS = string.ascii_uppercase  # single tokens in the common vocabularies


@RERANKERS.register("first", reads=WindowedReranker.reads)
class FirstReranker(WindowedReranker):
    """Labels the passages of a window A, B, C... and asks which is most relevant.

    Instead of generating a permutation, one forward pass reads the next-token
    log-probability of every label and sorts the window by it (FIRST, arXiv
    2406.15657). Windows slide from the bottom up as in RankGPT.
    """

    name = "first"
    needs = (ScoresNextTokens,)
    template_name = "rerank_first"

    def prompt(self, query: str, hits: list[Hit]) -> str:
        return self.template.format(passages=self.passage_lines(LABELS, hits), query=query)

    def rerank(self, query: str, hits: list[Hit], k: int) -> tuple[list[Hit], TraceStep]:
        t0 = time.perf_counter()
        order = list(range(len(hits)))
        calls = 0
        for start, end in windows(len(hits), self.window, self.step) if len(hits) > 1 else []:
            part = order[start:end]
            labels = list(LABELS[: len(part)])
            prompt = self.prompt(query, [hits[i] for i in part])
            logprobs = self.engine.next_token_logprobs_batch([prompt], labels)[0]
            calls += 1
            # Stable sort: equal values (e.g. labels below a server's top-k floor) keep their order.
            ranked = sorted(range(len(part)), key=lambda j: -logprobs[labels[j]])
            order[start:end] = [part[j] for j in ranked]
        return finish(self.name, query, hits, order, rank_scores(order), k, t0, calls=calls)
