"""Sentence features for the ``hybrid`` evidence scorer: cheap, general cues that a sentence answers a question.

Each feature is a number per candidate sentence (see :data:`FEATURES`):

- similarity: MiniLM cosine with the question, and BM25 over the candidates
  (both also relative to the best candidate, and for the neighbouring sentences:
  an answer often sits next to the sentence that matches the question);
- answer type: what the question asks for (a date, a number, a name or place,
  an option/function/command) and whether the sentence holds one that the
  question does not already contain;
- new information: the share of the sentence's words that are not in the question
  (a sentence that only echoes the question does not answer it);
- multi-hop bridges: whether the sentence's passage is named (by its title) in
  another retrieved passage, and whether the sentence names another passage's
  title; for a bridge question the answer lives in the passage the first one
  points to;
- where it is: the passage's retrieval rank and the sentence's position in it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Sequence

import numpy as np

from rag.evidence.base import Sentence
from rag.types import Hit

FEATURES = (
    "cos",
    "cos_resid",
    "beyond_hop1",
    "cos_rel",
    "cos_rank",
    "cos_neighbour",
    "cos_next",
    "cos_passage",
    "bm25",
    "bm25_rel",
    "bm25_rank",
    "bm25_neighbour",
    "bm25_next",
    "term_before_match",
    "overlap",
    "novelty",
    "type_match",
    "type_other",
    "new_names",
    "title_in_question",
    "named_by_other",
    "names_other",
    "passage_rank",
    "first_sentence",
    "defines_bridge",
    "position",
    "log_chars",
    "code_like",
)

_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_'\-.]*[A-Za-z0-9_]|[A-Za-z0-9_]")
_STOP = frozenset(
    """a an the of and or in on at to for is are was were be been being by with as it its this that these those from
    how what which who whom whose when where why i you he she they we do does did not no yes can could would should
    will shall may might must has have had there their them his her my your our me us about into than then so if
    any all some such only also just one get use using used want way tell know like out up""".split()
)
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b")
_MONTH = re.compile(r"\b(january|february|march|april|may|june|july|august|september|october|november|december)\b", re.I)
_NUMBER = re.compile(
    r"\b\d[\d,.]*\b|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|hundred|"
    r"thousand|million|billion|dozen)\b",
    re.I,
)
_NAME = re.compile(r"\b[A-Z][a-zA-Z\u00c0-\u024f'\-]+(?:\s+(?:[A-Z][a-zA-Z\u00c0-\u024f'\-]+|of|de|van|von|the))*")
# Option, function, command or code: --flag, -x, name(, a_b, "quoted", `ticks`, key=value, %{ ...
_CODE = re.compile(
    r"(?:^|\s)--?[A-Za-z][\w-]*|\b\w+\s?\(|\b\w+_\w+\b|[\"'`\u2018\u201c][^\"'`\u2019\u201d\s]{1,40}[\"'`\u2019\u201d]"
    r"|\w+\s?=\s?\S|[%#@$][{}\w]"
)

_KINDS = (
    ("date", re.compile(r"\b(when|what year|which year|what date|what day|what time|what decade|what century|how long ago)\b", re.I)),
    ("number", re.compile(r"\b(how many|how much|how long|how old|how far|how big|how tall|how large|what number|what percentage|what is the (?:size|number|amount|population|length))\b", re.I)),
    ("code", re.compile(r"\b(option|flag|switch|argument|parameter|function|command|keyword|setting|variable|syntax|operator|key|call|type in|write|which .* (?:to use|do i use))\b|\bhow (?:do|can|should|would) (?:i|you|we)\b", re.I)),
    ("name", re.compile(r"\b(who|whom|whose|where|which|what (?:is|was) the name|what (?:company|country|city|state|team|band|group|person|organization|language|river|county|university))\b", re.I)),
)


def words(text: str) -> list[str]:
    """Lower-cased content words (no stop words)."""
    return [w for w in (m.group(0).lower().strip(".'-") for m in _WORD.finditer(text)) if w and w not in _STOP]


_CAPITALISED = re.compile(r"(?<![\w\-'\u2019])[A-Z\u00c0-\u00de][\w\-\u00c0-\u024f]*")
_POSSESSIVE = re.compile(r"['\u2019]s?$")


def fold(text: str) -> str:
    """Lower-cased, accents removed ("Akinosh\u016b" and "Akinoshu" read the same)."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


def name_words(question: str) -> set[str]:
    """The words of the names the question is about: capitalised words not opening a sentence (folded)."""
    out = set()
    for m in _CAPITALISED.finditer(question):
        before = question[: m.start()].rstrip()
        if not before or before[-1] in ".?!:\"'\u201c(":
            continue  # a sentence's (or a quote's) first word is capitalised whatever it is
        w = _POSSESSIVE.sub("", fold(m.group(0))).strip("-")
        if len(w) >= 2 and w not in _STOP:
            out.add(w)
    return out


def question_kind(question: str) -> str:
    """What the question asks for: ``date``, ``number``, ``code``, ``name`` or ``other``."""
    for kind, pattern in _KINDS:
        if pattern.search(question):
            return kind
    return "other"


def _has_kind(kind: str, text: str, question_lower: str) -> bool:
    if kind == "date":
        return any(m.group(0) not in question_lower for m in _YEAR.finditer(text)) or bool(_MONTH.search(text))
    if kind == "number":
        return any(m.group(0).lower() not in question_lower for m in _NUMBER.finditer(text))
    if kind == "code":
        return bool(_CODE.search(text))
    if kind == "name":
        return any(m.group(0).lower() not in question_lower for m in _NAME.finditer(text) if m.start() > 0)
    return False


def first_hop(question: str, hits: Sequence[Hit]) -> int | None:
    """The passage a multi-hop question starts from: the one whose title the question names most fully.

    None when no title shares at least half of its words with the question (no
    named first hop, e.g. a PDF whose chunks share the document's title but it
    is not named, or a single-hop question).
    """
    q_words = set(words(question))
    best, best_share = None, 0.0
    for i, h in enumerate(hits):
        tw = set(words(re.sub(r"\s*\(.*\)$", "", h.chunk.title)))
        share = len(tw & q_words) / len(tw) if tw else 0.0
        if share > best_share:
            best, best_share = i, share
    return best if best_share >= 0.5 else None


def residual_question(question: str, hits: Sequence[Hit]) -> str:
    """The question without the words of its first hop's title: what is asked *about* the bridge.

    "Who was the first president of the association which published Journal of
    Psychotherapy Integration?" becomes "Who was the first president of the
    association which published of": closer to the sentence that answers it in
    the second passage ("G. Stanley Hall was its first president").
    """
    hop = first_hop(question, hits)
    if hop is None:
        return question
    covered = set(words(hits[hop].chunk.title))
    kept = [w for w in question.split() if not set(words(w)) & covered]
    return " ".join(kept) if len(kept) >= 2 else question


def _neighbour_max(values: np.ndarray, sentences: Sequence[Sentence]) -> np.ndarray:
    out = np.zeros_like(values)
    for i, s in enumerate(sentences):
        best = 0.0
        for j in (i - 1, i + 1):
            if 0 <= j < len(sentences) and sentences[j].hit == s.hit:
                best = max(best, float(values[j]))
        out[i] = best
    return out


def _next(values: np.ndarray, sentences: Sequence[Sentence]) -> np.ndarray:
    """The value of the following sentence of the same passage (0 for a passage's last sentence)."""
    out = np.zeros_like(values)
    for i, s in enumerate(sentences[:-1]):
        if sentences[i + 1].hit == s.hit:
            out[i] = values[i + 1]
    return out


def _rank(values: np.ndarray) -> np.ndarray:
    """1 / (1 + rank) of each value among all (rank 0 is the largest; ties share the better rank)."""
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    return 1.0 / (1.0 + ranks)


def _rel(values: np.ndarray) -> np.ndarray:
    if not len(values):
        return values
    top = float(values.max())
    return values - top


def _norm(values: np.ndarray) -> np.ndarray:
    if not len(values):
        return values
    top = float(values.max())
    return values / top if top > 0 else np.zeros_like(values)


def sentence_features(
    question: str,
    sentences: Sequence[Sentence],
    hits: Sequence[Hit],
    cos: np.ndarray,
    bm25: np.ndarray,
    cos_resid: np.ndarray | None = None,
) -> np.ndarray:
    """The feature matrix (sentences x :data:`FEATURES`) given the sentences' cosine and BM25 scores.

    ``cos_resid`` is the cosine with :func:`residual_question` (default: ``cos``).
    """
    X = lexical_features(question, sentences, hits, bm25)
    return with_similarity(X, question, sentences, cos, cos_resid)


# The columns that depend on the embedding cosines (:func:`with_similarity` fills them).
SIMILARITY = ("cos", "cos_resid", "cos_rel", "cos_rank", "cos_neighbour", "cos_next", "cos_passage", "term_before_match")
_COL = {name: i for i, name in enumerate(FEATURES)}


def with_similarity(
    X: np.ndarray, question: str, sentences: Sequence[Sentence], cos: np.ndarray, cos_resid: np.ndarray | None = None
) -> np.ndarray:
    """``X`` (from :func:`lexical_features`) with its :data:`SIMILARITY` columns set from ``cos`` and ``cos_resid``.

    Writes into ``X`` and returns it, so a scorer computes the lexical columns once and fills these per pass.
    """
    if not len(sentences):
        return X
    col = _COL
    cos = np.asarray(cos, dtype=np.float32)
    X[:, col["cos"]] = cos
    X[:, col["cos_resid"]] = cos if cos_resid is None else np.asarray(cos_resid, dtype=np.float32)
    X[:, col["cos_rel"]] = _rel(cos)
    X[:, col["cos_rank"]] = _rank(cos)
    X[:, col["cos_neighbour"]] = _neighbour_max(cos, sentences)
    X[:, col["cos_next"]] = _next(cos, sentences)
    passage_best: dict[int, float] = {}
    for s, c in zip(sentences, cos):
        passage_best[s.hit] = max(passage_best.get(s.hit, -1.0), float(c))
    X[:, col["cos_passage"]] = [passage_best[s.hit] for s in sentences]
    # A term or usage line (an option, a function call) right above the sentence that matches the question.
    X[:, col["term_before_match"]] = (
        X[:, col["code_like"]] * np.maximum(X[:, col["cos_next"]], 0.0) * (question_kind(question) == "code")
    )
    return X


def lexical_features(question: str, sentences: Sequence[Sentence], hits: Sequence[Hit], bm25: np.ndarray) -> np.ndarray:
    """The feature matrix with every column but the :data:`SIMILARITY` ones (those are 0)."""
    n = len(sentences)
    X = np.zeros((n, len(FEATURES)), dtype=np.float32)
    if not n:
        return X
    col = _COL
    q_lower = " ".join(question.lower().split())
    q_words = set(words(question))
    kind = question_kind(question)
    titles = [" ".join(h.chunk.title.split()) for h in hits]
    texts_lower = [" ".join(h.chunk.text.lower().split()) for h in hits]
    # A passage is named by another when its title (or, for "Name (disambiguation)", the name) occurs in it.
    named_by_other = []
    for i, t in enumerate(titles):
        key = re.sub(r"\s*\(.*\)$", "", t).lower()
        named_by_other.append(
            float(len(key) >= 3 and key not in q_lower and any(key in texts_lower[j] for j in range(len(hits)) if j != i))
        )
    title_in_question = []
    for t in titles:
        tw = set(words(t))
        title_in_question.append(len(tw & q_words) / len(tw) if tw else 0.0)
    other_keys = [(i, re.sub(r"\s*\(.*\)$", "", t).lower()) for i, t in enumerate(titles)]
    bm25n = _norm(np.asarray(bm25, dtype=np.float32))
    hop = first_hop(question, hits)
    if hop is not None:
        X[:, col["beyond_hop1"]] = [float(s.hit != hop) for s in sentences]
    X[:, col["bm25"]] = bm25n
    X[:, col["bm25_rel"]] = bm25n - 1.0
    X[:, col["bm25_rank"]] = _rank(bm25n)
    X[:, col["bm25_neighbour"]] = _neighbour_max(bm25n, sentences)
    X[:, col["bm25_next"]] = _next(bm25n, sentences)
    counts: dict[int, int] = {}
    for s in sentences:
        counts[s.hit] = counts.get(s.hit, 0) + 1
    seen: dict[int, int] = {}
    for i, s in enumerate(sentences):
        text = s.text
        lower = " ".join(text.lower().split())
        sw = words(text)
        sset = set(sw)
        X[i, col["overlap"]] = len(sset & q_words) / max(len(q_words), 1)
        X[i, col["novelty"]] = len(sset - q_words) / max(len(sset), 1)
        X[i, col["type_match"]] = float(_has_kind(kind, text, q_lower)) if kind != "other" else 0.0
        X[i, col["type_other"]] = float(kind == "other")
        X[i, col["new_names"]] = min(
            sum(1 for m in _NAME.finditer(text) if m.start() > 0 and m.group(0).lower() not in q_lower), 3
        ) / 3.0
        X[i, col["title_in_question"]] = title_in_question[s.hit]
        X[i, col["named_by_other"]] = named_by_other[s.hit]
        X[i, col["names_other"]] = float(any(len(k) >= 3 and j != s.hit and k not in q_lower and k in lower for j, k in other_keys))
        X[i, col["passage_rank"]] = 1.0 / (1.0 + s.hit)
        pos = seen.get(s.hit, 0)
        seen[s.hit] = pos + 1
        X[i, col["first_sentence"]] = float(pos == 0)
        X[i, col["position"]] = pos / max(counts[s.hit] - 1, 1)
        X[i, col["log_chars"]] = math.log1p(len(text)) / math.log1p(400)
        X[i, col["code_like"]] = float(bool(_CODE.search(text)))
        # The first sentence of a passage another passage points to: "Kassel is a city on the Fulda River."
        X[i, col["defines_bridge"]] = X[i, col["first_sentence"]] * named_by_other[s.hit]
    return X
