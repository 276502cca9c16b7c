"""``first``: FIRST single-token listwise ranking — order a window by the logits of the first generated label."""

from __future__ import annotations

import string
import time

from rag.config import Settings
from rag.engines.base import LOGPROBS
from rag.prompts import load_prompt
from rag.rerank.base import RERANKERS, finish, first_stage_note, passage_text, windows
from rag.types import Hit, TraceStep

LABELS = string.ascii_uppercase  # single tokens in the common vocabularies


@RERANKERS.register("first")
class FirstReranker:
    """Labels the passages of a window A, B, C... and asks which is most relevant.

    Instead of generating a permutation, one forward pass reads the next-token
    log-probability of every label and sorts the window by it (FIRST, arXiv
    2406.15657). Windows slide from the bottom up as in RankGPT.
    """

    name = "first"
    needs = frozenset({LOGPROBS})

    def __init__(self, engine, settings: Settings) -> None:
        self.engine = engine
        self.window = settings.rerank_window
        self.step = settings.rerank_step
        self.with_scores = settings.rerank_with_scores
        self.max_chars = settings.rerank_passage_chars
        self.template = load_prompt("rerank_first").rstrip("\n")

    def prompt(self, query: str, hits: list[Hit]) -> str:
        lines = [
            f"[{label}] {first_stage_note(h) if self.with_scores else ''}{passage_text(h, self.max_chars)}"
            for label, h in zip(LABELS, hits)
        ]
        return self.template.format(passages="\n".join(lines) + "\n", query=query)

    def rerank(self, query: str, hits: list[Hit], k: int) -> tuple[list[Hit], TraceStep]:
        t0 = time.perf_counter()
        order = list(range(len(hits)))
        calls = 0
        for start, end in windows(len(hits), self.window, self.step) if len(hits) > 1 else []:
            part = order[start:end]
            labels = list(LABELS[: len(part)])
            logprobs = self.engine.next_token_logprobs(self.prompt(query, [hits[i] for i in part]), labels)
            calls += 1
            # Stable sort: equal values (e.g. labels below a server's top-k floor) keep their order.
            ranked = sorted(range(len(part)), key=lambda j: -logprobs[labels[j]])
            order[start:end] = [part[j] for j in ranked]
        n = len(hits)
        scores = [0.0] * n
        for pos, i in enumerate(order):
            scores[i] = (n - pos) / n
        return finish(self.name, query, hits, order, scores, k, t0, calls=calls)
