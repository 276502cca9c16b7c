"""When to abstain: the documents do not answer the question.

Two general signals, each explainable to a user:

- **a name the question asks about is nowhere in the knowledge base** (not in
  any passage, not only the retrieved ones): documents that never mention
  "Ceelmakoile" or "Maiden Japan" cannot say anything about it. Names are the
  question's capitalised words that do not open a sentence, and its
  multi-word capitalised spans, which must occur as written ("Jump for Glory"
  is not "jump" in one passage and "glory" in another). A name the knowledge
  base holds but retrieval missed is no reason to abstain: the documents may
  answer, the passages shown are the nearest found;
- **no evidence sentence clears** ``abstain_threshold``: the best sentence's
  score (with the ``hybrid`` scorer a calibrated probability that it holds the
  answer) is below it.

The knowledge base is asked through :class:`Mentions` (one method), so this
module does not know how it is stored: :class:`IndexMentions` reads the BM25
index every knowledge base has (the words' postings, then the text of the
chunks holding all of a span's words). On 100 MuSiQue dev questions with
their gold passages dropped, the first signal alone catches 70% (and gives up
on 3% of the answerable ones), both at the default threshold 73% (6%); see the
README's "Abstain" section.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from rag.evidence.base import Evidence
from rag.evidence.features import fold, name_words
from rag.types import Chunk

# Multi-word capitalised spans ("Saving Private Ryan", "Journal of Psychotherapy Integration").
_SPAN = re.compile(
    r"(?<![\w\-'\u2019])[A-Z\u00c0-\u00de][\w\-\u00c0-\u024f]*"
    r"(?:\s+(?:(?:of|the|for|and|de|von|van|da|del|du|la|le)\s+)*[A-Z\u00c0-\u00de][\w\-\u00c0-\u024f]*)+"
)
_POSSESSIVE = re.compile(r"['\u2019]s?\b")
_TOKEN = re.compile(r"[\w\-]+")
# Chunks read to check that a span's words stand together; past this many candidates it is taken as mentioned.
MAX_READ = 64


@runtime_checkable
class Mentions(Protocol):
    """Whether the knowledge base mentions a name anywhere (a word, or several words as written together)."""

    def mentions(self, name: str) -> bool: ...


def folded_words(text: str) -> str:
    """``text`` lower-cased, accents and possessives removed, words joined by single spaces."""
    return " ".join(_TOKEN.findall(_POSSESSIVE.sub("", fold(text))))


def question_names(question: str) -> list[str]:
    """What the question names, as written: its name words (:func:`name_words`), then its multi-word spans.

    A span opening a sentence loses its first word ("Who", "The" ...), which is
    capitalised whatever it is. Possessives are dropped ("Hayek's" names Hayek).
    """
    wanted = name_words(question)
    words: dict[str, str] = {}
    for w in _TOKEN.findall(_POSSESSIVE.sub("", question)):
        key = folded_words(w)
        if key in wanted:
            words.setdefault(key, w.strip("-"))
    spans: list[str] = []
    for m in _SPAN.finditer(question):
        text = m.group(0)
        before = question[: m.start()].rstrip()
        if not before or before[-1] in ".?!:\"'\u201c(":
            text = text.split(None, 1)[1] if len(text.split()) > 1 else ""
        text = " ".join(_TOKEN.findall(_POSSESSIVE.sub("", text)))
        if " " in text and text not in spans:
            spans.append(text)
    return [words[k] for k in sorted(words)] + spans


def unknown_names(question: str, kb: Mentions) -> list[str]:
    """The question's names (:func:`question_names`) that the knowledge base never mentions."""
    return [name for name in question_names(question) if not kb.mentions(name)]


@dataclass(frozen=True)
class Abstention:
    """Why the answer abstains: ``unknown``, the question's names the knowledge base never mentions (the
    fewest that say it: "Zorblax", not also "Zorblax Records"); empty when the evidence is too weak."""

    unknown: tuple[str, ...] = ()


def abstention(
    question: str, evidence: Sequence[Evidence], threshold: float, kb: Mentions | None = None
) -> Abstention | None:
    """Whether to abstain, and why: a name of the question is unknown to ``kb``, there is no evidence, or the
    best score is below ``threshold``. None: answer."""
    unknown = unknown_names(question, kb) if kb is not None else []
    if unknown:
        words = [f" {n.lower()} " for n in unknown]
        return Abstention(tuple(n for n, w in zip(unknown, words) if not any(o != w and o in w for o in words)))
    if not evidence or max(e.score for e in evidence) < threshold:
        return Abstention()
    return None


def should_abstain(question: str, evidence: Sequence[Evidence], threshold: float, kb: Mentions | None = None) -> bool:
    """Abstain when there is no evidence, a name of the question is unknown to ``kb``, or the best score is low."""
    return abstention(question, evidence, threshold, kb) is not None


class IndexMentions:
    """:class:`Mentions` read from a knowledge base's BM25 index (``rag.store.lexical.BM25Index``).

    ``index`` is called on first use (loading the index may cost a catch-up).
    The index keeps words with their accents; a name is looked up without them
    and matches the index's words that read the same without theirs ("Jimenez"
    finds "Jiménez").
    ``exclude`` leaves chunks out, as if they were not in the knowledge base
    (evaluation: a question asked without its gold passages).
    """

    def __init__(self, index: Callable[[], object], exclude: Callable[[Chunk], bool] | None = None) -> None:
        self._get = index
        self._index = None
        self.exclude = exclude

    def mentions(self, name: str) -> bool:
        """Some chunk holds ``name``'s words, together (compared lower-cased, accents and possessives removed)."""
        if self._index is None:
            self._index = self._get()
        wanted = folded_words(name)
        common = self._holding(wanted)
        if common is None:
            return True  # stop words only: nothing to look for
        if not len(common):
            return False
        if " " not in wanted and self.exclude is None:
            return True
        if len(common) > MAX_READ:
            return True
        for position in common:
            chunk = self._index.chunks[int(position)]
            if chunk is None or (self.exclude is not None and self.exclude(chunk)):
                continue
            if f" {wanted} " in f" {folded_words(chunk.embed_text)} ":
                return True
        return False

    def _holding(self, text: str) -> np.ndarray | None:
        """The index positions of the chunks holding every token of ``text`` (None: it has no token)."""
        from rag.store.lexical import tokenize

        tokens = sorted(set(tokenize([text])[0]))
        if not tokens:
            return None
        accented = _accented(self._index)
        common: np.ndarray | None = None
        for token in tokens:
            positions, _ = self._index.sparse_scores([token, *accented.get(token, ())])
            common = positions if common is None else np.intersect1d(common, positions)
            if not len(common):
                break
        return common


_ACCENTED: "weakref.WeakKeyDictionary[object, dict[str, list[str]]]" = weakref.WeakKeyDictionary()


def _accented(index) -> dict[str, list[str]]:
    """The index's accented words by their token without accents ("akinoshu" -> ["akinoshū"]); once per index."""
    from rag.store.lexical import tokenize

    found = _ACCENTED.get(index)
    if found is None:
        found = {}
        accented = [token for token in index.segments.vocab if not token.isascii()]
        # Folded, then tokenised again: the stemmer cuts "tekeze" to "tekez", not "tekezé".
        for token, plain in zip(accented, tokenize([fold(t) for t in accented])):
            for key in plain:
                found.setdefault(key, []).append(token)
        _ACCENTED[index] = found
    return found
