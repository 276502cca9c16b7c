"""The local engine's lock covers forward passes, not a paused stream."""

import threading

from rag.engines.base import generate
from rag.types import Usage


def test_paused_stream_blocks_nobody_and_resumes_on_another_thread(engine):
    paused = engine.stream("The capital of France is", max_tokens=6)
    first = next(paused)  # started on this thread, then left paused
    assert isinstance(first, str)

    other: dict = {}
    worker = threading.Thread(target=lambda: other.update(out=generate(engine, "One, two,", max_tokens=3)))
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "a paused stream held the engine lock"
    assert other["out"][1].completion_tokens >= 1

    rest: dict = {}
    resumer = threading.Thread(target=lambda: rest.update(items=list(paused)))
    resumer.start()
    resumer.join(120)
    assert not resumer.is_alive()
    assert isinstance(rest["items"][-1], Usage)
