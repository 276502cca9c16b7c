"""``entities`` (LLM-free): a follow-up's pronouns resolved to the salient names of the previous turn.

When the question leans on the conversation (:func:`~rag.followup.base.is_followup`),
the candidate referents are the capitalised names (the ``hops`` strategy's name
extraction, :func:`rag.strategies.hops.name_spans`) of the previous answer, the
previous question and the titles of the passages the answer cites. Each scores
its :func:`salience` in the knowledge base (the name index: how rare it is,
whether a passage is titled with it) times where it comes from: the answer counts most, and least for a name the previous question already
had (the question's subject is not usually what "it" points at: its answer is);
earlier answer names count a little more (the best evidence comes first). The
best name replaces the pronoun (a possessive becomes "Name's"); names scoring at
least half the best one are appended. The query then carries the names, so
retrieval's first hop (dense, BM25 or the ``hops`` first round) is anchored on
them, and ``hops`` links onward from the passages they find.

Picking the one right name is the weak step when the previous answer quotes
passages full of names (an extractive answer). So the rewrite also carries
:attr:`~rag.followup.base.Rewrite.alternatives`: the question with the pronoun
replaced by each of the ``FUSE_CANDIDATES`` best names (weighted by its score
relative to the best) and, at ``AS_TYPED_WEIGHT``, the question as typed;
retrieval fuses their rankings with the query's (weighted RRF), so the passage
about whichever name is meant reaches the top k.
"""

from __future__ import annotations

import re
from typing import Any

from rag.followup.base import (
    DEMONSTRATIVE, EXISTENTIAL, PRONOUN, REWRITERS, FollowupContext, Rewrite, is_followup, unchanged,
)

# Names appended after the one that replaces the pronoun, when they score at least APPEND_SHARE of it.
MAX_EXTRA = 2
APPEND_SHARE = 0.5
TITLE_BOOST = 1.5
# Searches fused with the query: one per best candidate name, and the question as typed (a hedge).
FUSE_CANDIDATES = 3
AS_TYPED_WEIGHT = 0.3
# Weights by where a name comes from.
FROM_ANSWER, FROM_ANSWER_AND_QUESTION, FROM_QUESTION, FROM_CITED = 1.0, 0.5, 0.4, 0.3
# A capitalised sentence start is not part of a name.
_SENTENCE_WORDS = (
    "the|a|an|in|on|at|by|of|for|from|to|and|but|since|after|before|when|while|many|some|several|numerous|most|both|"
    "each|every|other|born|though|although|with|during|following|despite|this|these|those|you|we|he|she|it|they|"
    "there|his|her|its|their|i|no|yes|not"
)
_LEAD = re.compile(rf"^(?:(?:{_SENTENCE_WORDS})\s+)+", re.I)
# A span that is only such a word ("The", "Several", "She") names nothing.
_NOT_A_NAME = re.compile(rf"(?:{_SENTENCE_WORDS})", re.I)
# A span ends before a number ("Kansas in 1902" names Kansas) and has at most MAX_WORDS words (not a table row).
_NUMBER_TAIL = re.compile(r"(?:\s+(?:in|of|on|at|the|and|for))?\s+[\d'’]\S*.*$")
MAX_WORDS = 6
# The answer's sentences (an extractive answer's quotes end with their [n]): later ones count less.
_SENTENCE = re.compile(r"(?<=[.!?\u201d])\s+|\[\d+(?:\s*[,\u2013-]\s*\d+)*\]")
SENTENCE_DECAY = 0.5
SPAN_DECAY = 0.05
_CITE = re.compile(r"\[\d+(?:\s*[,\u2013-]\s*\d+)*\]")
_QUESTION_WORDS = frozenset("what who whom whose where when which why how is are was were did does do can".split())
_POSSESSIVES = frozenset({"his", "her", "its", "their", "hers", "theirs"})
# What substitution replaces: a pronoun or a demonstrative ("that place" as a whole).
_REFERENCE = re.compile(f"{PRONOUN.pattern}|{DEMONSTRATIVE.pattern}", re.I)


def spans(text: str) -> list[str]:
    """Candidate names in ``text``: capitalised spans, without a leading article or sentence word,
    numbers, dates and question words."""
    from rag.strategies.hops import name_spans

    out = []
    for span in name_spans(_CITE.sub(" ", text)):
        span = _NUMBER_TAIL.sub("", _LEAD.sub("", span)).strip(" -'\u201c\u201d\"")
        words = span.split()
        if len(words) > MAX_WORDS:
            continue
        while words and (words[0].lower() in _QUESTION_WORDS or not any(c.isalpha() for c in words[0])):
            words = words[1:]
        span = " ".join(words)
        if len(span) >= 3 and any(c.isalpha() for c in span) and not _is_date(span) and not _NOT_A_NAME.fullmatch(span):
            out.append(span)
    return out


def _is_date(span: str) -> bool:
    return bool(re.fullmatch(r"[\d\s,./-]*(?:January|February|March|April|May|June|July|August|September|"
                             r"October|November|December)?[\d\s,./-]*", span))


def salience(name: str, index: Any) -> float:
    """How likely ``name`` is what a follow-up points at, apart from where it was said: a rarer name
    counts more (half of the score), and a name the knowledge base has a passage titled with (an entity
    with its own page) ``TITLE_BOOST`` times more."""
    score = 0.5 + 0.5 * rarity(name, index)
    if index is not None and name.lower() in index.titled:
        score *= TITLE_BOOST
    return score


def rarity(name: str, index: Any) -> float:
    """How specific ``name`` is in the knowledge base: its IDF in the name index (0-1), else its rarest word's;
    0.5 when there is no index or the knowledge base never mentions it."""
    if index is None:
        return 0.5
    key = name.lower()
    if key in index.idf:
        return index.idf[key]
    known = [index.idf[w] for w in key.split() if w in index.idf]
    return max(known) if known else 0.5


def candidates(ctx: FollowupContext, index: Any = None) -> list[tuple[str, float]]:
    """The previous turn's names with their salience, best first (names the question already has left out)."""
    previous_q, previous_a = ctx.history[-1]
    asked = {n.lower() for n in spans(ctx.question)}
    subject = {n.lower() for n in spans(previous_q)}
    scores: dict[str, float] = {}
    shown: dict[str, str] = {}

    def add(name: str, weight: float) -> None:
        key = name.lower()
        if key in asked or key in _POSSESSIVES:
            return
        score = weight * salience(name, index)
        if score > scores.get(key, 0.0):
            scores[key] = score
            shown.setdefault(key, name)

    for n, sentence in enumerate(s for s in _SENTENCE.split(previous_a) if s.strip()):
        for i, name in enumerate(spans(sentence)):
            key = name.lower()
            seen = any(key in s or s in key for s in subject)
            add(name, (FROM_ANSWER_AND_QUESTION if seen else FROM_ANSWER) / (1 + SENTENCE_DECAY * n + SPAN_DECAY * i))
    for name in spans(previous_q):
        add(name, FROM_QUESTION)
    for hit in cited(previous_a, ctx.passages):
        if hit.chunk.title:
            add(hit.chunk.title, FROM_CITED)
    return sorted(((shown[k], s) for k, s in scores.items()), key=lambda x: -x[1])


def cited(answer: str, passages) -> list:
    """The passages the previous answer cites ([n] is the n-th passage of the conversation's context)."""
    out = []
    for match in re.finditer(r"\[(\d+)\]", answer):
        n = int(match.group(1))
        if 0 < n <= len(passages) and passages[n - 1] not in out:
            out.append(passages[n - 1])
    return out


def substitute(question: str, name: str) -> str:
    """``question`` with its pronouns and demonstratives replaced by ``name`` (possessives by "name's");
    an elliptic question without one gets the name appended."""
    text = EXISTENTIAL.sub(lambda m: m.group(0).replace("there", "\x00"), question)

    def repl(m: re.Match) -> str:
        word = m.group(0).lower()
        if word in _POSSESSIVES and word != "her":
            return f"{name}'s"
        if word == "there":
            return f"in {name}"
        tail = re.search(r"[?.!]\s*$", m.group(0))
        return name + (tail.group(0) if tail else "")

    out, n = _REFERENCE.subn(repl, text)
    out = out.replace("\x00", "there")
    return out if n else f"{question.rstrip()} {name}"


class EntityRewriter:
    name = "entities"

    def rewrite(self, ctx: FollowupContext) -> Rewrite:
        if not is_followup(ctx.question, ctx.history):
            return unchanged(ctx, self.name)
        index = ctx.names() if ctx.names is not None else None
        found = candidates(ctx, index)
        if not found:
            return unchanged(ctx, self.name, followup=True, reason="no names in the previous turn")
        (top, best), rest = found[0], found[1:]
        extra = [n for n, s in rest[:MAX_EXTRA] if s >= APPEND_SHARE * best]
        query = " ".join([substitute(ctx.question, top), *extra])
        alternatives = [(substitute(ctx.question, n), s / best) for n, s in found[:FUSE_CANDIDATES]]
        alternatives.append((ctx.question, AS_TYPED_WEIGHT))
        return Rewrite(ctx.question, query, self.name, anchors=(top, *extra), followup=True,
                       detail={"candidates": [[n, round(s, 3)] for n, s in found[:5]]},
                       alternatives=tuple(alternatives))


@REWRITERS.register("entities")
def _entities(settings) -> EntityRewriter:
    return EntityRewriter()
