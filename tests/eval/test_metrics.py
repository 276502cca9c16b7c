"""Metric functions against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from rag.eval.answers import strip_citations
from rag.eval.metrics import (
    all_found_at,
    answer_in,
    exact_match,
    ndcg_at,
    normalize_answer,
    percentile,
    recall_at,
    token_f1,
)


def test_recall_and_all_found():
    ranked = ["a", "x", "b", "y", "c"]
    assert recall_at(ranked, {"a", "b"}, 1) == 0.5
    assert recall_at(ranked, {"a", "b"}, 3) == 1.0
    assert recall_at(ranked, {"a", "b", "z"}, 5) == pytest.approx(2 / 3)
    assert all_found_at(ranked, {"a", "b"}, 2) == 0.0
    assert all_found_at(ranked, {"a", "b"}, 3) == 1.0
    assert recall_at([], {"a"}, 5) == 0.0


def test_ndcg_binary():
    assert ndcg_at(["a", "b"], {"a", "b"}, 10) == pytest.approx(1.0)
    # gold at ranks 2 and 4 of 2 gold: (1/log2(3) + 1/log2(5)) / (1 + 1/log2(3))
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at(["x", "a", "y", "b"], {"a", "b"}, 10) == pytest.approx(expected)
    assert ndcg_at(["x", "a"], {"a"}, 1) == 0.0
    # More gold than k: the ideal is cut at k.
    assert ndcg_at(["a"], {"a", "b", "c"}, 1) == pytest.approx(1.0)


def test_squad_normalisation():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert normalize_answer("An apple, a pear.") == "apple pear"
    assert normalize_answer("Theater") == "theater"  # 'the' only as a word


@pytest.mark.parametrize(
    "prediction, answers, em, f1",
    [
        ("The Eiffel Tower.", ["Eiffel Tower"], 1.0, 1.0),
        ("Paris", ["London", "paris!"], 1.0, 1.0),  # best alias
        ("Paris, France", ["Paris"], 0.0, 2 * 0.5 * 1.0 / 1.5),  # p=1/2 r=1
        ("in 1889 it was", ["1889"], 0.0, 2 * 0.25 * 1.0 / 1.25),
        ("", ["Paris"], 0.0, 0.0),
        ("", [""], 1.0, 1.0),  # an empty gold answer matches only an empty prediction
        ("Paris", [""], 0.0, 0.0),
        ("anything", [], 0.0, 0.0),
        ("a the an", ["Paris"], 0.0, 0.0),  # only articles: normalises to empty
    ],
)
def test_em_and_f1(prediction, answers, em, f1):
    assert exact_match(prediction, answers) == em
    assert token_f1(prediction, answers) == pytest.approx(f1)


def test_answer_in_context_and_citation_stripping():
    assert answer_in("It was finished in 1889 by Eiffel's company.", ["1889"])
    assert answer_in("He married Yoko Ono.", ["Ono, Yoko", "Yoko Ono"])
    assert not answer_in("Population 18890.", ["1889"])  # whole words only
    assert not answer_in("anything", [""])
    assert strip_citations("It was 1889 [1][2], then [3, 4].") == "It was 1889 , then ."


def test_percentile():
    assert percentile([], 50) == 0.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([0.0, 10.0], 95) == pytest.approx(9.5)
