"""The prefix tree of KV snapshots: longest-prefix lookup, LRU eviction under a byte budget, threads."""

from __future__ import annotations

import threading

import pytest

from rag.errors import ConfigError
from rag.kvcache import PrefixCache


def _cache(budget: int) -> PrefixCache[str]:
    # Values are strings sized by their length, so budgets are easy to reason about.
    return PrefixCache(budget, size_of=len)


def test_lookup_returns_the_longest_cached_prefix():
    cache = _cache(1000)
    cache.insert([1, 2, 3], "abc")
    cache.insert([1, 2, 3, 4, 5], "abcde")
    cache.insert([1, 9], "x")
    assert cache.lookup([1, 2, 3, 4, 5, 6]) == (5, "abcde")
    assert cache.lookup([1, 2, 3, 4, 7]) == (3, "abc")  # partial edge match falls back
    assert cache.lookup([1, 9, 9]) == (2, "x")
    assert cache.lookup([2, 2]) == (0, None)
    assert cache.lookup([1, 2]) == (0, None)  # a prefix of a cached path but no snapshot there
    # max_len keeps at least one token to run.
    assert cache.lookup([1, 2, 3, 4, 5], max_len=4) == (3, "abc")
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.saved_tokens) == (4, 2, 5 + 3 + 2 + 3)
    assert stats.entries == 3 and stats.bytes == 3 + 5 + 1


def test_eviction_is_lru_and_respects_the_budget():
    cache = _cache(10)
    assert cache.insert([1, 2], "aaaa")
    assert cache.insert([1, 3], "bbbb")
    cache.lookup([1, 2, 7])  # [1, 2] is now the most recently used
    assert cache.insert([5], "cccc")  # 12 bytes > 10: evicts [1, 3]
    assert [1, 3] not in cache and [1, 2] in cache and [5] in cache
    assert cache.stats().bytes == 8 and cache.stats().evictions == 1
    assert not cache.insert([6], "x" * 11)  # alone larger than the budget: refused
    assert cache.stats().entries == 2
    # The tree is pruned: after evicting everything the lookups miss cleanly.
    cache.insert([7], "dddddddddd")
    assert cache.lookup([1, 2, 3]) == (0, None) and cache.lookup([7, 1]) == (1, "dddddddddd")


def test_split_edges_and_replacement_keep_sizes_right():
    cache = _cache(100)
    cache.insert([1, 2, 3, 4], "long")
    cache.insert([1, 2], "s")  # splits the edge [1, 2, 3, 4]
    cache.insert([1, 2], "ss")  # replaces
    assert cache.lookup([1, 2, 3, 4, 5]) == (4, "long")
    assert cache.lookup([1, 2, 3]) == (2, "ss")
    assert cache.stats().bytes == 6 and cache.stats().entries == 2


def test_negative_budget_is_refused():
    with pytest.raises(ConfigError, match="budget"):
        _cache(-1)


def test_concurrent_lookups_and_inserts_from_threads():
    cache = _cache(60)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(t: int) -> None:
        try:
            barrier.wait()
            for i in range(300):
                key = [t % 3, i % 7, i % 5]
                cache.insert(key, "v" * (1 + i % 4))
                length, value = cache.lookup(key + [99])
                # A hit must be a real prefix of the query with its own value.
                assert length in (0, 3) and (value is None) == (length == 0)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    stats = cache.stats()
    assert stats.bytes <= 60 and stats.hits + stats.misses == 8 * 300
    assert stats.hits > 0
