"""Follow-up rewriting for retrieval: a follow-up question becomes a standalone query before retrieval.

"And when was she born?" searches for "she" unless it is rewritten. A rewriter
gets the question, the conversation's earlier ``(question, answer)`` turns and
the passages the conversation has in its context, and returns a
:class:`Rewrite`: the query retrieval searches with, and the names it is
anchored on. The answer prompt still shows the user's own words (only retrieval
sees the rewrite), so the prompt layout and its KV-cache prefix do not change.

Rewriters register in :data:`REWRITERS` (one file each in this package); the
setting ``followup_rewrite`` names one, or ``auto``, which is ``entities`` on
every engine for now (measured, see the README's follow-up table: ``llm``
through the 270M model, embedded or behind llama.cpp's server, retrieves no
better than the question as typed, costs an LLM call per follow-up, and on a
one-slot llama.cpp server that call evicts the conversation's cached prompt
prefix). Set ``llm`` for a capable chat server.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol, Sequence

from rag.registry import Registry
from rag.types import Hit, TraceStep

History = Sequence[tuple[str, str]]

# Third-person pronouns and "there": what a follow-up leans on the conversation with.
PRONOUNS = ("he", "she", "it", "they", "him", "her", "them", "his", "hers", "its", "their", "theirs", "there")
# A demonstrative that stands for something said before: "that place", "this one", "those", or a bare "that?".
_NOUNS = (
    "place|city|town|country|state|region|area|person|man|woman|guy|band|group|company|firm|team|club|one|ones|"
    "book|film|movie|song|album|show|series|game|work|thing|event|war|battle|year|time|period|river|lake|"
    "mountain|island|building|church|school|university|organisation|organization|party|language|people|album"
)
PRONOUN = re.compile(r"\b(?:" + "|".join(PRONOUNS) + r")\b", re.I)
DEMONSTRATIVE = re.compile(rf"\b(?:that|this|these|those)(?:\s+(?:{_NOUNS})\b|\s*[?.!]?\s*$)", re.I)
# "is there", "are there": existential, not a place.
EXISTENTIAL = re.compile(r"\b(?:is|are|was|were|be|been)\s+there\b", re.I)
# Elliptic follow-ups: "And the population?", "What about Lyon?", "How about in 1990?"
_ELLIPTIC = re.compile(r"^\s*(?:and|what about|how about|and what about|also|same for)\b", re.I)


def is_followup(question: str, history: History) -> bool:
    """Whether ``question`` leans on the conversation: there is history and it has a third-person
    pronoun, a demonstrative standing for something said before ("that place"), or an elliptic
    form ("And the population?")."""
    if not history:
        return False
    text = EXISTENTIAL.sub(" ", question)
    return bool(PRONOUN.search(text) or DEMONSTRATIVE.search(text) or _ELLIPTIC.match(question))


@dataclass(frozen=True)
class FollowupContext:
    """What a rewriter may use.

    ``passages`` are the conversation's passages in context (earlier turns',
    in prompt order; empty without a session); ``names`` is a thunk for the
    knowledge base's name index (:class:`rag.strategies.hops.NameIndex`: how rare
    a name is); ``engine`` a thunk for the LLM (loaded only when called).
    """

    question: str
    history: History
    passages: Sequence[Hit] = ()
    names: Callable[[], Any] | None = None
    engine: Callable[[], Any] | None = None


@dataclass(frozen=True)
class Rewrite:
    """A rewriter's result: ``query`` is what retrieval searches; ``anchors`` the names it resolved to.

    ``alternatives`` are further ``(query, weight)`` searches for a referent that is not certain (one per
    candidate name): retrieval runs each and fuses the rankings with ``query``'s (weight 1) by weighted
    reciprocal rank fusion (:func:`fuse`).
    """

    question: str
    query: str
    mode: str
    anchors: tuple[str, ...] = ()
    followup: bool = False
    seconds: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)
    alternatives: tuple[tuple[str, float], ...] = ()

    @property
    def changed(self) -> bool:
        return self.query != self.question

    def step(self) -> TraceStep:
        """The trace step: the rewritten query, the mode and the anchor names."""
        return TraceStep(
            "followup",
            query=self.query,
            seconds=self.seconds,
            detail={"mode": self.mode, "question": self.question, "rewritten": self.changed,
                    "followup": self.followup, "anchors": list(self.anchors),
                    "alternatives": [[q, round(w, 3)] for q, w in self.alternatives], **self.detail},
        )


# Fusing a rewrite's searches: each retrieves FUSION_DEPTH x k passages, fused by RRF with this k (a small k
# trusts each search's first passages: the passage about the right referent is at the top of its search).
FUSION_DEPTH = 2
FUSION_RRF_K = 2


def fuse(rankings: Sequence[Sequence[Hit]], weights: Sequence[float], k: int) -> list[Hit]:
    """The top ``k`` of the searches' rankings fused by weighted RRF (:func:`rag.strategies.hybrid.rrf`)."""
    from rag.strategies.hybrid import rrf

    return rrf(rankings, weights, FUSION_RRF_K)[:k]


def retrieve_fused(search: Callable[..., tuple[list[Hit], list[TraceStep]]], query: str,
                   alternatives: Sequence[tuple[str, float]], k: int, filters: Any = None):
    """``search`` (a strategy's ``retrieve``) run for ``query`` (weight 1) and each alternative (a query
    repeated adds its weight), the rankings fused (:func:`fuse`): the top ``k`` hits and every search's steps."""
    weights: dict[str, float] = {query: 1.0}
    for alternative, weight in alternatives:
        if weight > 0:
            weights[alternative] = weights.get(alternative, 0.0) + weight
    rankings, steps = [], []
    for text in weights:
        hits, found = search(text, FUSION_DEPTH * k, filters)
        rankings.append(hits)
        steps.extend(found)
    return fuse(rankings, list(weights.values()), k), steps


class Rewriter(Protocol):
    """Turns a follow-up into a standalone query (a question that is not one comes back unchanged)."""

    name: str

    def rewrite(self, ctx: FollowupContext) -> Rewrite: ...


REWRITERS: Registry[Rewriter] = Registry("follow-up rewriter", package="rag.followup")


def unchanged(ctx: FollowupContext, mode: str, followup: bool = False, **detail: Any) -> Rewrite:
    """The question as typed (no history, not a follow-up, or a rewriter that fell back)."""
    return Rewrite(ctx.question, ctx.question, mode, followup=followup, detail=detail)


AUTO = "entities"


def resolve_mode(setting: str) -> str:
    """The rewriter ``followup_rewrite`` names (``auto``: :data:`AUTO`, see the module doc)."""
    return AUTO if setting == "auto" else setting


def rewrite(mode: str, ctx: FollowupContext, settings) -> Rewrite:
    """Run the rewriter ``mode`` (timed); without history the question is returned as typed."""
    t0 = time.perf_counter()
    if not ctx.history:
        result = unchanged(ctx, mode)
    else:
        result = REWRITERS.create(mode, settings).rewrite(ctx)
    return replace(result, seconds=time.perf_counter() - t0)
