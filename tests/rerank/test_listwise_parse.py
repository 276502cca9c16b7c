from __future__ import annotations

import pytest

from rag.rerank.listwise import parse_permutation


@pytest.mark.parametrize(
    "text,expected",
    [
        ("[2] > [1] > [3]", [1, 0, 2]),
        ("[3]>[2]>[1]", [2, 1, 0]),
        ("Ranking: [2] > [2] > [1] > [2]", [1, 0, 2]),  # repeats
        ("[9] > [3] > [0] > [1]", [2, 0, 1]),  # out of range ids are dropped
        ("[3]", [2, 0, 1]),  # missing ids keep their order at the end
        ("I think 3 then 1, finally 2.", [2, 0, 1]),  # bare numbers without brackets
        ("[ 2 ] > [ 3 ]", [1, 2, 0]),
        ("Passage [2] from 1998 is best", [1, 0, 2]),  # bracketed ids win over other numbers
        ("", [0, 1, 2]),
        ("no idea", [0, 1, 2]),
    ],
)
def test_parse_permutation(text, expected):
    assert parse_permutation(text, 3) == expected


def test_parse_is_always_a_permutation():
    for text in ("[12] > [1] > [12] > [40]", "1 1 1 1", "[4] > garbage ]] [[ > [2"):
        assert sorted(parse_permutation(text, 12)) == list(range(12))
