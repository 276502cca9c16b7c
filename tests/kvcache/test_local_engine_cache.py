"""The local engine's prefix KV cache: reuse on a follow-up, identical greedy answers, streaming."""

from __future__ import annotations

import pytest

from rag.engines.base import generate
from rag.generate import STOP, build_prompt
from rag.kvcache import PrefixCache, kv_nbytes
from rag.types import Chunk, Hit, Usage

pytestmark = pytest.mark.slow

TEXTS = [
    "Sea otters use stones as tools to crack open shellfish. They live along the coasts of the North Pacific.",
    "Mount Etna in Sicily is one of the most active volcanoes in Europe.",
    "Sourdough bread is leavened by wild yeast and lactic acid bacteria.",
]
HITS = [Hit(Chunk(f"c{i}", f"d{i}", t, f"doc{i}.md"), 1.0) for i, t in enumerate(TEXTS)]
Q1, A1 = "What do sea otters use stones for?", "To crack open shellfish [1]."
# The follow-up appends a passage and the first turn to the history: the instructions and
# the first two passages are reused.
TURN1 = build_prompt(Q1, HITS[:2])
TURN2 = build_prompt("Where is Mount Etna?", HITS, [(Q1, A1)])
ARGS = dict(max_tokens=6, stop=STOP)


@pytest.fixture
def fresh_cache(engine):
    """A new, empty cache on the shared engine; the engine's own is put back afterwards."""
    saved = engine.kv_cache
    engine.kv_cache = PrefixCache(256 << 20, kv_nbytes)
    yield engine.kv_cache
    engine.kv_cache = saved


def test_segmented_tokenization_matches_the_whole_prompt(engine):
    for prompt in (TURN1, TURN2):
        ids, cuts, snaps = engine.prompt_ids(prompt)
        assert ids == engine.encode(prompt.text)
        assert snaps <= set(cuts) and len(snaps) == 3


def test_follow_up_reuses_the_prefix_and_answers_identically(engine, fresh_cache):
    generate(engine, TURN1, **ARGS)
    assert fresh_cache.stats().entries >= 2
    on_text, on_usage = generate(engine, TURN2, **ARGS)
    ids, _, _ = engine.prompt_ids(TURN2)
    # The cached prefix: instructions plus the first turn's two passages.
    assert 0 < on_usage.cached_tokens < on_usage.prompt_tokens == len(ids)
    assert on_usage.cached_tokens == len(engine.encode(TURN1.text[: TURN1.snapshots[1]]))
    stats = fresh_cache.stats()
    assert stats.hits >= 1 and stats.saved_tokens >= on_usage.cached_tokens

    # Cache off: the same greedy answer, every token prefilled.
    engine.kv_cache = None
    off_text, off_usage = generate(engine, TURN2, **ARGS)
    engine.kv_cache = fresh_cache
    assert off_usage.cached_tokens == 0
    assert on_text == off_text and on_text.strip()

    # Streaming: the pieces joined equal the non-streamed answer; TTFT is measured.
    pieces, usage = [], None
    for item in engine.stream(TURN2, **ARGS):
        if isinstance(item, Usage):
            usage = item
        else:
            pieces.append(item)
    assert "".join(pieces) == on_text and len(pieces) > 1
    assert usage is not None and 0 < usage.ttft_s <= usage.total_s
    assert usage.cached_tokens > on_usage.cached_tokens  # now up to the question line


def test_prefill_runs_the_output_layer_once(engine, fresh_cache):
    """Passes before the last only fill the KV cache: the 262k-word output layer runs for the last one.

    With one token asked for, no decoding step runs after it.
    """
    ids, cuts, snaps = engine.prompt_ids(TURN2)
    assert len(cuts) > len(snaps) == 3
    stack, head = [], []
    hooks = [
        engine.model.model.register_forward_pre_hook(lambda *a: stack.append(1)),
        engine.model.lm_head.register_forward_pre_hook(lambda *a: head.append(1)),
    ]
    try:
        generate(engine, TURN2, max_tokens=1, stop=STOP)
    finally:
        for h in hooks:
            h.remove()
    # One pass per snapshot point plus the rest (not one per segment: each pass reads all the weights).
    assert len(stack) == len(snaps) + 1 and len(head) == 1


def test_follow_up_reuses_the_previous_answer_too(engine, fresh_cache):
    """With the same passages, turn 2's prompt starts with turn 1's prompt and answer: only the question is new."""
    first = build_prompt(Q1, HITS[:2])
    answer, usage1 = generate(engine, first, max_tokens=12, stop=STOP)
    assert answer.strip() and usage1.completion_tokens > 1
    follow_up = build_prompt("Where is Mount Etna?", HITS[:2], [(Q1, answer)])
    ids, _, _ = engine.prompt_ids(follow_up)
    on_text, on_usage = generate(engine, follow_up, **ARGS)
    # Beyond the whole first prompt: the answer's tokens came from the cache as well.
    assert on_usage.cached_tokens > len(engine.prompt_ids(first)[0])
    assert on_usage.prompt_tokens - on_usage.cached_tokens < 20
    engine.kv_cache = None
    off_text, _ = generate(engine, follow_up, **ARGS)
    engine.kv_cache = fresh_cache
    assert on_text == off_text
