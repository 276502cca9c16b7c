"""``listwise``: RankGPT — the LLM writes a permutation "[2] > [1] > ..." for a sliding window of passages."""

from __future__ import annotations

import logging
import re
import time

from rag.engines.base import Streams, generate
from rag.rerank.base import RERANKERS, WindowedReranker, finish, rank_scores, windows
from rag.types import Hit, TraceStep

log = logging.getLogger(__name__)

_BRACKETED = re.compile(r"\[\s*(\d+)\s*\]")
_NUMBER = re.compile(r"\d+")
# Digits are single tokens in Gemma/Llama vocabularies: "[12] > " is about 6 tokens.
_TOKENS_PER_ID = 6


def parse_permutation(text: str, count: int) -> list[int]:
    """The 0-based order of ``count`` passages that ``text`` describes.

    Reads bracketed ids ("[3] > [1]") or, when there are none, bare numbers;
    ignores ids out of range and repeats, and appends the ids the text left out
    in their original order, so the result is always a full permutation.
    """
    found = _BRACKETED.findall(text) or _NUMBER.findall(text)
    order: list[int] = []
    for raw in found:
        i = int(raw) - 1
        if 0 <= i < count and i not in order:
            order.append(i)
    return order + [i for i in range(count) if i not in order]


@RERANKERS.register("listwise", reads=WindowedReranker.reads)
class ListwiseReranker(WindowedReranker):
    """RankGPT sliding window: ``rerank_window`` passages per call, moving ``rerank_step`` from the bottom up."""

    name = "listwise"
    needs = (Streams,)
    template_name = "rerank_listwise"

    def prompt(self, query: str, hits: list[Hit]) -> str:
        labels = [str(i) for i in range(1, len(hits) + 1)]
        return self.template.format(count=len(hits), passages=self.passage_lines(labels, hits), query=query)

    def rerank(self, query: str, hits: list[Hit], k: int) -> tuple[list[Hit], TraceStep]:
        t0 = time.perf_counter()
        order = list(range(len(hits)))
        outputs: list[str] = []
        for start, end in windows(len(hits), self.window, self.step) if len(hits) > 1 else []:
            part = order[start:end]
            text, _ = generate(
                self.engine,
                self.prompt(query, [hits[i] for i in part]),
                max_tokens=_TOKENS_PER_ID * len(part) + 2,
                stop=("\n",),
                temperature=0.0,
            )
            # The prompt ends with "[", so the reply starts inside the first id.
            perm = parse_permutation("[" + text, len(part))
            order[start:end] = [part[i] for i in perm]
            outputs.append(text.strip()[:200])
        return finish(self.name, query, hits, order, rank_scores(order), k, t0, calls=len(outputs), outputs=outputs)
