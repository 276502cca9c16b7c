"""The hybrid scorer: only a budget of sentence text is embedded (one sentence per passage first), and the
question's name words (what rag.answer.abstain looks for in the knowledge base)."""

from __future__ import annotations

import numpy as np

from rag.config import Settings
from rag.evidence import ScorerContext, candidate_sentences, make_scorer, rank_sentences
from rag.evidence.base import Sentence
from rag.evidence.hybrid import EMBED_AT_LEAST, EMBED_CHARS, embed_choice


class CountingEmbedder:
    """Wraps the real embedder and records every text it is asked to embed, and in how many calls."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.texts: list[str] = []
        self.calls = 0

    def embed(self, texts, progress=None):
        self.calls += 1
        self.texts += list(texts)
        return self.inner.embed(texts)


def _sentences(lengths_by_hit: list[list[int]]) -> list[Sentence]:
    out = []
    for h, lengths in enumerate(lengths_by_hit):
        pos = 0
        for n in lengths:
            out.append(Sentence(h, pos, pos + n, "x" * n))
            pos += n + 1
    return out


def test_embed_choice_takes_each_passage_best_first_then_the_best_that_fit():
    sents = _sentences([[100, 100, 100], [100, 100], [100]])
    cheap = np.array([9.0, 8.0, 7.0, 1.0, 0.5, 0.1])  # passage 0 is best on every sentence
    keep = embed_choice(cheap, sents, 450)
    # Each passage's best (0, 3, 5) although passage 0's second and third rank higher; then 1 (best left) fits.
    assert keep == [0, 1, 3, 5]
    # Nothing beyond the budget, but always at least EMBED_AT_LEAST sentences, however long.
    assert embed_choice(cheap[:3], _sentences([[900, 900, 900]]), 100) == list(range(EMBED_AT_LEAST))
    # A long sentence that does not fit is skipped, a shorter one after it still fits.
    keep = embed_choice(np.array([4.0, 3.0, 2.0, 1.0]), _sentences([[100, 100, 400, 100]]), 300)
    assert keep == [0, 1, 3]
    # Every passage's best is embedded even when the leads alone overflow the budget: a long code line of
    # one passage must not leave another passage's only sentence unscored.
    keep = embed_choice(np.array([9.0, 8.0, 7.0, 1.0]), _sentences([[400], [400], [400], [100]]), 600)
    assert keep == [0, 1, 2, 3]


def test_hybrid_embeds_one_call_within_the_budget_and_still_finds_the_answer(user_embedder, hit):
    filler = " ".join(f"Sentence number {i} about the weather in the valley is long enough to cost." for i in range(30))
    answer = "Mirela Vantongeren plays the theremin, an electronic instrument."
    hits = [hit(filler, "Weather", 0), hit(filler + " " + answer, "Mirela Vantongeren", 1)]
    counting = CountingEmbedder(user_embedder)
    scorer = make_scorer("hybrid", ScorerContext(embedder=lambda: counting, engine=lambda: None), Settings())
    question = "What instrument does Mirela Vantongeren play?"
    ranked = rank_sentences(question, hits, scorer)
    assert ranked[0].sentence.text == answer
    assert counting.calls == 1  # question, residual question and sentences in one model run
    sentence_chars = sum(len(t) for t in counting.texts if t != question and "Vantongeren play" not in t)
    assert sentence_chars <= EMBED_CHARS
    assert len(counting.texts) < len(candidate_sentences(hits)) // 4
    # Sentences seen again (the next turn of a chat) are not embedded again: only what is new is.
    first = len(counting.texts)
    rank_sentences("Which instrument is played by Mirela Vantongeren?", hits, scorer)
    assert counting.calls == 2 and "Which instrument is played by Mirela Vantongeren?" in counting.texts[first:]
    assert len(counting.texts) == len(set(counting.texts))


def test_name_words_are_the_capitalised_words_inside_sentences():
    from rag.evidence.features import name_words

    q = "My inputParser fails. Who taught Akinoshū Kenji's coach in the UK, and is MATLAB needed?"
    # Not "My"/"Who" (they open a sentence), not "Parser" (inside an identifier); accents folded, possessive cut.
    assert name_words(q) == {"akinoshu", "kenji", "uk", "matlab"}


def test_lexical_columns_once_then_similarity_columns_per_pass(hit):
    """The scorer computes the lexical columns once and fills the similarity columns per pass: a second
    fill must leave exactly what a fresh computation gives, and the cosines move only SIMILARITY columns."""
    from rag.evidence.features import FEATURES, SIMILARITY, lexical_features, sentence_features, with_similarity
    from rag.evidence.lexical import bm25_scores

    hits = [hit("Kassel is a city on the Fulda River. Use --fast to skip it. It has a museum.", "Kassel", 0),
            hit("The museum in Kassel opened in 1779. The option --fast = on is new.", "Museum", 1)]
    question = "Which option skips the museum in Kassel?"
    sents = candidate_sentences(hits)
    bm25 = bm25_scores(question, [s.text for s in sents])
    rng = np.random.default_rng(0)
    cos1, cos2, resid2 = (rng.uniform(-0.2, 0.9, len(sents)).astype(np.float32) for _ in range(3))
    lexical = lexical_features(question, sents, hits, bm25)
    reused = with_similarity(with_similarity(lexical.copy(), question, sents, cos1), question, sents, cos2, resid2)
    assert np.array_equal(reused, sentence_features(question, sents, hits, cos2, bm25, resid2))
    moved = {FEATURES[j] for j in range(len(FEATURES)) if not np.array_equal(reused[:, j], lexical[:, j])}
    assert moved <= set(SIMILARITY) and {"cos", "cos_rank", "cos_passage", "term_before_match"} <= moved
