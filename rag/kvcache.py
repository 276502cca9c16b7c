"""A token-prefix tree of KV-cache snapshots (RAGCache-style) with a byte budget and LRU eviction.

A prompt's KV cache is snapshotted at a few useful token counts (end of the
static instructions, end of the passages block, end of the history). A later
prompt that starts with the same tokens looks up the longest snapshot that is
a prefix of it, continues from a *copy* of it and prefills only the rest.

Snapshots are copied, never cropped: Gemma-3's sliding-window layers keep only
the last 512 tokens, so a longer cache cannot be cut back to a shorter prefix.

The tree itself is backend-neutral (values are opaque, sized by ``size_of``);
:func:`snapshot_kv`, :func:`copy_kv` and :func:`kv_nbytes` handle transformers
``DynamicCache`` objects.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Generic, Sequence, TypeVar

from rag.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class CacheStats:
    """Counters of a :class:`PrefixCache` since it was made (or cleared)."""

    hits: int = 0
    misses: int = 0
    saved_tokens: int = 0  # prompt tokens not prefilled thanks to a hit
    inserts: int = 0
    evictions: int = 0
    entries: int = 0
    bytes: int = 0
    budget_bytes: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class _Node:
    __slots__ = ("edge", "children", "parent", "value", "size", "key")

    def __init__(self, edge: tuple[int, ...], parent: "_Node | None") -> None:
        self.edge = edge  # tokens from the parent to this node
        self.children: dict[int, _Node] = {}  # keyed by the first token of the child's edge
        self.parent = parent
        self.value: Any = None
        self.size = 0
        self.key = 0  # identity in the LRU order while the node holds a value


class PrefixCache(Generic[T]):
    """Compressed token trie whose nodes may hold a snapshot; thread-safe.

    ``lookup`` returns the deepest snapshot whose token path is a prefix of
    the query; ``insert`` stores one and evicts the least recently used
    snapshots until the total size fits ``budget_bytes``.
    """

    def __init__(self, budget_bytes: int, size_of: Callable[[T], int]) -> None:
        if budget_bytes < 0:
            raise ConfigError(f"KV cache budget {budget_bytes} bytes must be >= 0")
        self.budget_bytes = budget_bytes
        self._size_of = size_of
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.clear()

    def clear(self) -> None:
        """Drop every snapshot and reset the counters."""
        with self._lock:
            self._root = _Node((), None)
            self._lru: OrderedDict[int, _Node] = OrderedDict()
            self._bytes = 0
            self._hits = self._misses = self._saved = self._inserts = self._evictions = 0

    # ---- read ----------------------------------------------------------------
    def lookup(self, tokens: Sequence[int], max_len: int | None = None) -> tuple[int, T | None]:
        """(length, snapshot) of the longest cached prefix of ``tokens`` no longer than ``max_len``.

        (0, None) on a miss. The snapshot is shared: copy it before extending it.
        """
        limit = len(tokens) if max_len is None else min(max_len, len(tokens))
        with self._lock:
            node, depth = self._root, 0
            best: tuple[int, _Node | None] = (0, None)
            while depth < limit:
                child = node.children.get(tokens[depth])
                if child is None:
                    break
                end = depth + len(child.edge)
                if end > limit or tuple(tokens[depth:end]) != child.edge:
                    break
                node, depth = child, end
                if node.value is not None:
                    best = (depth, node)
            length, hit = best
            if hit is None:
                self._misses += 1
                return 0, None
            self._hits += 1
            self._saved += length
            self._lru.move_to_end(hit.key)
            return length, hit.value

    def __contains__(self, tokens: Sequence[int]) -> bool:
        with self._lock:
            node = self._find(tuple(tokens))
            return node is not None and node.value is not None

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                self._hits, self._misses, self._saved, self._inserts, self._evictions,
                len(self._lru), self._bytes, self.budget_bytes,
            )

    # ---- write ---------------------------------------------------------------
    def insert(self, tokens: Sequence[int], value: T) -> bool:
        """Store ``value`` as the snapshot of prefix ``tokens``; False when it alone exceeds the budget."""
        key = tuple(tokens)
        if not key:
            return False
        size = int(self._size_of(value))
        if size > self.budget_bytes:
            return False
        with self._lock:
            node = self._make_path(key)
            if node.value is not None:
                self._bytes -= node.size
                del self._lru[node.key]
            node.value, node.size, node.key = value, size, next(self._ids)
            self._lru[node.key] = node
            self._bytes += size
            self._inserts += 1
            while self._bytes > self.budget_bytes:
                _, victim = self._lru.popitem(last=False)
                self._drop(victim)
                self._evictions += 1
            return True

    # ---- tree internals (lock held) ------------------------------------------
    def _find(self, key: tuple[int, ...]) -> _Node | None:
        node, depth = self._root, 0
        while depth < len(key):
            child = node.children.get(key[depth])
            if child is None or key[depth : depth + len(child.edge)] != child.edge:
                return None
            node, depth = child, depth + len(child.edge)
        return node if depth == len(key) else None

    def _make_path(self, key: tuple[int, ...]) -> _Node:
        node, depth = self._root, 0
        while depth < len(key):
            child = node.children.get(key[depth])
            if child is None:
                leaf = _Node(key[depth:], node)
                node.children[key[depth]] = leaf
                return leaf
            edge = child.edge
            common = 0
            while common < len(edge) and depth + common < len(key) and edge[common] == key[depth + common]:
                common += 1
            if common < len(edge):
                # Split the edge: node -> mid -> child.
                mid = _Node(edge[:common], node)
                node.children[edge[0]] = mid
                child.edge, child.parent = edge[common:], mid
                mid.children[child.edge[0]] = child
                child = mid
            node, depth = child, depth + common
        return node

    def _drop(self, node: _Node) -> None:
        self._bytes -= node.size
        node.value, node.size = None, 0
        # Remove empty leaves and merge pass-through nodes so the tree stays compressed.
        while node is not self._root and node.value is None and len(node.children) <= 1:
            parent = node.parent
            assert parent is not None
            if not node.children:
                del parent.children[node.edge[0]]
            else:
                (only,) = node.children.values()
                only.edge = node.edge + only.edge
                only.parent = parent
                parent.children[node.edge[0]] = only
            node = parent


# ---- transformers DynamicCache helpers ------------------------------------------------
def _layer_tensors(cache: Any) -> list[Any]:
    return [t for layer in getattr(cache, "layers", ()) for t in (layer.keys, layer.values) if hasattr(t, "nbytes")]


def kv_nbytes(cache: Any) -> int:
    """Bytes held by a cache's key/value tensors."""
    return sum(int(t.nbytes) for t in _layer_tensors(cache))


def snapshot_kv(cache: Any) -> Any:
    """An independent, compact copy of ``cache`` to keep in the tree.

    Sliding-window layers hold a *view* of a longer tensor; cloning the views
    first keeps the snapshot at its real size (``deepcopy`` would copy the
    whole underlying storage).
    """
    memo = {id(t): t.clone() for t in _layer_tensors(cache)}
    return copy.deepcopy(cache, memo)


def copy_kv(snapshot: Any) -> Any:
    """A copy of a stored snapshot that generation may extend in place."""
    return copy.deepcopy(snapshot)
