"""Retrieval and answer metrics (definitions as in MuSiQue / SQuAD evaluation)."""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from typing import Iterable, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def recall_at(ranked: Sequence[str], gold: Iterable[str], k: int) -> float:
    """Share of ``gold`` ids in the first ``k`` of ``ranked`` (1.0 when there is no gold)."""
    gold = set(gold)
    if not gold:
        return 1.0
    return len(gold & set(ranked[:k])) / len(gold)


def all_found_at(ranked: Sequence[str], gold: Iterable[str], k: int) -> float:
    """1.0 when every gold id is in the first ``k`` of ``ranked``, else 0.0."""
    return 1.0 if set(gold) <= set(ranked[:k]) else 0.0


def ndcg_at(ranked: Sequence[str], gold: Iterable[str], k: int = 10) -> float:
    """nDCG@k with binary relevance (gain 1 for a gold id, log2(rank + 1) discount)."""
    gold = set(gold)
    if not gold:
        return 1.0
    dcg = sum(1.0 / math.log2(i + 2) for i, pid in enumerate(ranked[:k]) if pid in gold)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(gold), k)))
    return dcg / ideal


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower-case, drop punctuation (ASCII and Unicode: curly quotes, dashes) and articles,
    squeeze spaces."""
    text = "".join(" " if unicodedata.category(ch).startswith("P") and ch not in string.punctuation else ch
                   for ch in text.lower()).translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, answers: Iterable[str]) -> float:
    """1.0 when the normalised prediction equals any normalised answer."""
    pred = normalize_answer(prediction)
    return max((1.0 if pred == normalize_answer(a) else 0.0 for a in answers), default=0.0)


def _f1(prediction: str, answer: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(answer).split()
    if not pred or not gold:
        # Both empty is a match; one empty is not.
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, answers: Iterable[str]) -> float:
    """Best token-level F1 of ``prediction`` against ``answers`` (answer and aliases)."""
    return max((_f1(prediction, a) for a in answers), default=0.0)


def answer_in(text: str, answers: Iterable[str]) -> bool:
    """Whether any non-empty normalised answer occurs (on word boundaries) in normalised ``text``."""
    hay = f" {normalize_answer(text)} "
    return any(norm and f" {norm} " in hay for norm in (normalize_answer(a) for a in answers))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100, linear interpolation); 0.0 for no values."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
