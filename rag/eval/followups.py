"""Follow-up retrieval evaluation: conversations made from MuSiQue-style decompositions.

Each question whose second sub-question refers to the first one's answer
(``#1``) becomes a two-turn conversation: turn 1 asks the first sub-question;
turn 2 asks the second with ``#1`` replaced by a pronoun or "that place"
(:func:`with_pronoun`, chosen from the first answer's type by
:func:`referent`: deterministic heuristics). For turn 2, recall@k of its own
gold passage (the sub-question's supporting paragraph) is measured when it is
retrieved as typed (``raw``), rewritten by each follow-up rewriter, and as the
``oracle`` (the sub-question with ``#1`` filled in by its gold answer).

Turn 1's answer, which the rewriters read, is either the real pipeline's
``extractive`` answer (no LLM; the conversation then also holds turn 1's
passages) or the first sub-question's ``gold`` answer (a correct first turn:
what the rewriting alone can do).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from rag.eval.dataset import Dataset, hit_ids, passage_key
from rag.eval.metrics import mean, percentile, recall_at

PREVIOUS_ANSWERS = ("extractive", "gold")
_FORMS = {  # subject, object, possessive
    "he": ("he", "him", "his"),
    "she": ("she", "her", "her"),
    "it": ("it", "it", "its"),
    "they": ("they", "them", "their"),
    "that place": ("that place", "that place", "that place's"),
}
_PLACE = re.compile(
    r"\b(country|city|state|place of (birth|death)|location|located|where|continent|county|capital|region|province|"
    r"town|territorial|broadcast to|watercourse|body of water)\b", re.I)
_PLACE_NAME = re.compile(r"\b(County|River|Lake|Island|Islands|State|City|District|Province|Republic)$")
_GROUP = re.compile(r"\b(team|party|band|label|company|organi[sz]ation|group|club)\b", re.I)
_PERSON = re.compile(
    r"^\s*(who|whom)\b|\b(performer|author|composer|director|producer|spouse|father|mother|sibling|child|"
    r"founder|creator|wrote|written|made|prepared)\b", re.I)
# First names the heuristic reads as a woman's (deterministic, not exhaustive: "he" otherwise).
_FEMALE = frozenset("Madonna Judith Phoebe Amy Lil Sarah Mary Anna Anne Elizabeth Victoria Margaret Jane Emily "
                    "Catherine Marie Maria Alice Helen Julia Laura Lisa Emma Olivia Sophia Grace Rose".split())
# Words after which "#1" is the subject ("when did it fall").
_SUBJECT_AFTER = frozenset("did does do was is were has have had will can could would when where why how that which "
                           "who and".split())
_REF = re.compile(r"(\b[Tt]he\s+)?#1(\s*'s\b)?")


@dataclass(frozen=True)
class FollowUp:
    """One two-turn conversation: ``question`` is turn 2 as a user types it; ``gold`` its passage id."""

    id: str
    first: str
    first_answer: str
    question: str
    oracle: str
    gold: str
    pronoun: str


def referent(first_question: str, answer: str) -> str:
    """How a user would refer to ``answer``: he / she / it / they / that place (from the question and answer)."""
    words = answer.split()
    if _PLACE.search(first_question) or _PLACE_NAME.search(answer):
        return "that place"
    if _GROUP.search(first_question):
        return "they" if words and words[-1].endswith("s") and not words[-1].endswith("ss") else "it"
    if _PERSON.search(first_question):
        return "she" if words and words[0] in _FEMALE else "he"
    return "it"


def with_pronoun(template: str, kind: str) -> str:
    """A sub-question template with ``#1`` replaced by the pronoun ``kind`` in the right form;
    "subject >> relation" hops are asked as questions ("What is its country?")."""
    subject, object_, possessive = _FORMS[kind]
    head, sep, relation = template.partition(" >> ")
    if sep:
        if head.strip() == "#1":
            return f"What is {possessive} {relation.strip()}?"
        return f"What is the {relation.strip()} of {with_pronoun(head.strip(), kind)}?"

    def repl(m: re.Match) -> str:
        if m.group(2):
            return possessive
        before = template[: m.start()].split()
        return subject if not before or before[-1].lower() in _SUBJECT_AFTER else object_

    text = " ".join(_REF.sub(repl, template).split())
    text = re.sub(r"\s+([?.,!])", r"\1", text)
    return text[:1].upper() + text[1:]


def load_followups(root: str | Path, dataset: Dataset) -> list[FollowUp]:
    """The two-turn conversations of ``dataset``'s questions (those whose second hop refers to ``#1``)."""
    raw = json.loads((Path(root) / "questions.json").read_text(encoding="utf-8"))
    by_id = {str(item["id"]): item for item in raw}
    out = []
    for q in dataset.questions:
        item = by_id.get(q.id, {})
        hops = item.get("question_decomposition") or []
        if len(hops) < 2 or len(q.steps) < 2 or "#1" not in str(hops[1].get("question", "")):
            continue
        paragraphs = item.get("paragraphs", [])
        idx = hops[1].get("paragraph_support_idx")
        para = next((p for p in paragraphs if p.get("idx") == idx), None)
        if para is None and isinstance(idx, int) and 0 <= idx < len(paragraphs):
            para = paragraphs[idx]
        if para is None:
            continue
        answer = str(hops[0].get("answer", ""))
        kind = referent(q.steps[0], answer)
        out.append(FollowUp(q.id, q.steps[0], answer, with_pronoun(str(hops[1]["question"]).strip(), kind),
                            q.steps[1], passage_key(str(para["title"]), str(para["paragraph_text"])), kind))
    return out


def evaluate_followups(
    rag,
    items: Sequence[FollowUp],
    modes: Sequence[str],
    *,
    strategy: str,
    ks: Sequence[int] = (5,),
    previous: str = "extractive",
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Per mode (``raw``, each rewriter in ``modes``, ``oracle``): recall@k of turn 2's gold passage and
    p50/p95 latency (rewrite + retrieval) in ms; per rewriter the share of the raw→oracle gap it closes."""
    depth = max(ks)
    conversations = []
    has_gold = []
    for i, item in enumerate(items):
        session = f"followup-eval-{i}"
        if previous == "gold":
            answer = item.first_answer
        else:
            answer = rag.ask(item.first, session=session, answer_mode="extractive", strategy=strategy).text
        has_gold.append(item.first_answer.lower() in answer.lower())
        conversations.append((((item.first, answer),), session))
        if progress:
            progress("turn 1", i + 1, len(items))
    results: dict[str, dict] = {}
    examples: dict[str, list] = {}
    for mode in ["raw", *modes, "oracle"]:
        if items:  # the first call builds per-knowledge-base caches (name index, BM25)
            rag.retrieve(items[0].question, depth, strategy=strategy)
        found, seconds, changed, queries = [], [], [], []
        for i, (item, (history, session)) in enumerate(zip(items, conversations)):
            t0 = time.perf_counter()
            alternatives: tuple = ()
            if mode in ("raw", "oracle"):
                query = item.question if mode == "raw" else item.oracle
            else:  # retrieved as the pipeline does: the query's ranking fused with its alternatives'
                rewritten = rag.rewrite(item.question, history, session=session, followup_rewrite=mode)
                query, alternatives = rewritten.query, rewritten.alternatives
            ranking = hit_ids(rag.retrieve(query, depth, strategy=strategy, alternatives=alternatives))
            seconds.append(time.perf_counter() - t0)
            found.append(ranking)
            changed.append(query != item.question)
            queries.append(query)
            if progress:
                progress(mode, i + 1, len(items))
        row = {f"recall@{k}": mean([recall_at(r, [it.gold], k) for r, it in zip(found, items)]) for k in ks}
        row["p50_ms"] = percentile(seconds, 50) * 1000
        row["p95_ms"] = percentile(seconds, 95) * 1000
        if mode not in ("raw", "oracle"):
            row["rewritten"] = mean([float(c) for c in changed])
        results[mode] = row
        examples[mode] = queries[:3]
    raw, oracle = results["raw"]["recall@5"], results["oracle"]["recall@5"]
    for mode in modes:
        gap = oracle - raw
        results[mode]["gap_closed"] = round((results[mode]["recall@5"] - raw) / gap, 3) if gap > 0 else None
    return {
        "followups": results,
        "questions": len(items),
        "previous_answer": previous,
        "previous_answer_has_gold": mean([float(h) for h in has_gold]),
        "strategy": strategy,
        "examples": [{"question": it.question, "oracle": it.oracle, "pronoun": it.pronoun,
                      **{m: examples[m][j] for m in modes}} for j, it in enumerate(items[:3])],
    }
