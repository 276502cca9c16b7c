"""A seeded synthetic corpus shaped like the multi-hop sets, for measuring the store at any size.

Documents are about one entity each (its name is the title, as in Wikipedia-based
sets): 20 chunks of about 60 words drawn from a Zipfian vocabulary of pseudo-words,
each chunk naming its entity and a few other entities (Zipfian too), so passages link
through shared capitalised names like MuSiQue's bridges. The same ``seed`` and size
always give the same corpus, and the first N chunks of a bigger corpus are the N
chunks of a smaller one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from rag.types import Chunk, Document

_SYLLABLES = (
    "ka to ri mo la ve sun dar pel gor min ta lo fen qui bra sel tor nam vik "
    "hal ber cor dun esk fal gin hom ist jor lum mar nor osk pra rud sav tem ul"
).split()
_PARTICLES = ("of", "the", "and", "in", "for")
CHUNKS_PER_DOC = 20
WORDS_PER_CHUNK = 60
VOCABULARY = 30_000


def _word(i: int) -> str:
    """Pseudo-word number ``i`` (two or three syllables; distinct ``i`` give distinct words)."""
    n = len(_SYLLABLES)
    a, b, c = i % n, (i // n) % n, i // (n * n)
    word = _SYLLABLES[a] + _SYLLABLES[b]
    return word + _SYLLABLES[c % n] + ("x" * (c // n)) if c else word


def entity(i: int) -> str:
    """The name of entity ``i``: one or two capitalised pseudo-words ("Karimo Velsun")."""
    first = _word(VOCABULARY + 2 * i).capitalize()
    return first if i % 3 == 0 else f"{first} {_word(VOCABULARY + 2 * i + 1).capitalize()}"


@dataclass(frozen=True)
class Corpus:
    """The synthetic corpus of ``chunks`` chunks (rounded up to whole documents) from ``seed``."""

    chunks: int
    seed: int = 0

    @property
    def documents(self) -> int:
        return -(-self.chunks // CHUNKS_PER_DOC)

    def _zipf(self, rng: np.random.Generator, n: int, size: int | tuple[int, ...], s: float = 1.1) -> np.ndarray:
        # Zipf over 1..n via the inverse CDF of a truncated power law (fast and bounded).
        u = rng.random(size)
        x = ((n ** (1 - s) - 1) * u + 1) ** (1 / (1 - s))
        return np.minimum(x.astype(np.int64) - 1, n - 1)

    def document(self, d: int, source_prefix: str = "synthetic") -> tuple[Document, list[Chunk]]:
        """Document number ``d`` and its chunks (deterministic from the seed and ``d``)."""
        rng = np.random.default_rng([self.seed, d])
        title = entity(d)
        words = self._zipf(rng, VOCABULARY, (CHUNKS_PER_DOC, WORDS_PER_CHUNK))
        # Links: each chunk names 3 other entities, skewed to popular ones but spread over the whole corpus.
        links = self._zipf(rng, self.documents, (CHUNKS_PER_DOC, 3), s=0.9)
        doc_id = f"syn{d:07d}"
        source = f"{source_prefix}/{doc_id}.md"
        chunks = []
        for i in range(CHUNKS_PER_DOC):
            tokens = [_word(int(w)) for w in words[i]]
            for j, other in enumerate(links[i]):
                at = 6 + j * 18
                tokens[at:at] = [_PARTICLES[(d + i + j) % len(_PARTICLES)], entity(int(other))]
            tokens.insert(0, title)
            text = " ".join(tokens) + "."
            chunks.append(Chunk(f"{doc_id}:{i:05d}", doc_id, text, source, title=title, index=i))
        return Document(doc_id, source, title, 1, len(chunks), float(d)), chunks

    def __iter__(self) -> Iterator[tuple[Document, list[Chunk]]]:
        for d in range(self.documents):
            yield self.document(d)

    def queries(self, n: int, seed: int = 1) -> list[str]:
        """``n`` seeded questions: a chunk's entity and rarer words, sometimes with a linked entity (two hops)."""
        rng = np.random.default_rng([self.seed, seed, 7])
        out = []
        for q in range(n):
            _, chunks = self.document(int(rng.integers(self.documents)))
            text = chunks[int(rng.integers(len(chunks)))].text.rstrip(".").split()
            # Content words are the rarer ones (longer pseudo-words): two of the chunk's longest, one at random.
            plain = sorted({w for w in text[1:] if w[0].islower() and w not in _PARTICLES}, key=lambda w: (-len(w), w))
            words = plain[:2] + [plain[int(rng.integers(len(plain)))]]
            names = [w for w in text[1:] if w[0].isupper()]
            # Half the questions name the chunk's entity; the others a linked one (the bridge to this chunk).
            lead = chunks[0].title if q % 2 == 0 else names[int(rng.integers(len(names)))]
            out.append(f"What is the {' '.join(words)} of {lead}?")
        return out
