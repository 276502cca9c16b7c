"""Parser processes are forked with nothing for them to free.

An embedder of a knowledge base closed earlier can wait in a reference cycle for the garbage
collector. A forked parser whose collector freed its onnxruntime session hung for ever (the session
waits for thread-pool threads that do not exist in the child), and the ingest with it: seen with
`scripts/fit_evidence.py`, which opens one evaluation knowledge base after another.
"""

from __future__ import annotations

import gc
import multiprocessing
import time

import pytest

from ingest.parse import parser_pool, start_method
from rag.config import Settings
from rag.embed import make_embedder


class _Closed:
    """A closed knowledge base's objects: they point at each other, so only the collector frees them."""

    def __init__(self, embedder) -> None:
        self.me = self
        self.embedder = embedder


@pytest.mark.skipif(start_method() != "fork", reason="only a forked worker inherits this process's objects")
def test_a_forked_parser_never_frees_an_inherited_embedder():
    embedder = make_embedder(Settings())  # the users' embedder: MiniLM on onnxruntime
    embedder.embed(["the session's thread pool starts"])
    before = set(multiprocessing.active_children())
    gc.disable()  # the cycle stays uncollected until the workers fork, as between two collections of a busy process
    try:
        _Closed(embedder)
        del embedder
        time.sleep(2)  # the session's threads park on their condition variable
        pool = parser_pool(1, len)
        collected = pool.submit(gc.collect)  # the worker's collector runs (forked here at the latest)
    finally:
        gc.enable()
    try:
        # With the embedder inherited as garbage, the worker's collection never returned.
        assert collected.result(timeout=60) >= 0
    finally:
        for child in set(multiprocessing.active_children()) - before:
            child.kill()
        pool.shutdown(wait=False, cancel_futures=True)
