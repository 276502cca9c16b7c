"""``hoprag bench conversations``: the saved-conversation store at size.

Fills a throwaway store (or ``--data-dir``'s) with N conversations of one owner
in one knowledge base (the worst case for the sidebar) plus one conversation of
``--turns`` turns, each turn a realistic Answer (cited passages with evidence
highlights, retrieved passages with their text, a trace), then times:
``open_ms`` (get the long conversation: every turn back as an Answer),
``first_page_ms`` / ``deep_page_ms`` (the sidebar's first page of 20 / a page
near the end), ``search_ms`` (a title search) and ``append_ms`` (one turn saved).
Medians of ``--repeat`` runs; one JSON line with ``--json``.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from rag.commands.common import EXIT_OK, bench_app, run

PAGE = 20
WORDS = ("the sea otter uses a stone as a tool to crack open shells while floating on its back in kelp "
         "forests of the northern pacific where the water is cold and its dense fur keeps it warm").split()


def _text(i: int, words: int) -> str:
    return " ".join(WORDS[(i + k) % len(WORDS)] for k in range(words)).capitalize() + "."


def sample_answer(i: int):
    """A turn's Answer as the pipeline makes it: 3 citations with 2 highlights each, 5 passages, 3 trace steps."""
    from rag.types import Answer, AnswerSentence, Chunk, Citation, Hit, Span, Trace, TraceStep, Usage

    chunks = [Chunk(f"c{i}-{k}", f"doc{k}", _text(i + k, 110), f"notes/doc{k}.pdf", f"Doc {k}", page=k + 1,
                    page_end=k + 1, section="Otters") for k in range(5)]
    hits = tuple(Hit(c, 0.9 - 0.1 * k, k) for k, c in enumerate(chunks))
    citations = tuple(Citation(k + 1, c.id, c.doc_id, c.source, c.page, c.section, c.text,
                               highlights=(Span(0, 80, 0.8, c.page, ((72.0, 100.0, 520.0, 112.0),)),
                                           Span(100, 180, 0.6, c.page, ((72.0, 120.0, 520.0, 132.0),))))
                      for k, c in enumerate(chunks[:3]))
    text = f"{_text(i, 40)} [1] {_text(i + 1, 30)} [2]"
    steps = tuple(TraceStep(name, f"question {i}", tuple((c.id, 0.5) for c in chunks * 2), 0.01, {"k": 5})
                  for name in ("dense", "bm25", "fuse"))
    return Answer(f"Question {i} about otters and stones?", text, citations, hits, Trace(steps),
                  Usage(900, 600, 60, 0.4, 2.0), {"retrieve_s": 0.05, "total_s": 2.0}, mode="grounded",
                  sentences=(AnswerSentence(0, 40, True, 0.7, (1,)), AnswerSentence(41, len(text), True, 0.6, (2,))))


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 2)


def bench(data_dir: Path, conversations: int, turns: int, repeat: int) -> dict[str, Any]:
    from rag.chats import Chats, ConversationInfo, ConversationStore, StoredTurn
    from rag.chats.codec import answer_record

    store = ConversationStore.in_data_dir(data_dir)
    chats = Chats(store, "bench", lambda kb: [])
    owner, now = f"bench-{uuid.uuid4().hex[:8]}", time.time()
    t0 = time.perf_counter()
    record, trace = answer_record(sample_answer(0))
    for n in range(conversations - 1):
        info = ConversationInfo(f"{owner}-{n}", f"Conversation {n} about otters", "bench", owner, now + n, now + n, 1)
        store.insert(info, [StoredTurn(1, "Question?", record, {}, trace, now + n)])
    long_id = f"{owner}-long"
    long_turns = []
    for n in range(turns):
        record, trace = answer_record(sample_answer(n))
        long_turns.append(StoredTurn(n + 1, f"Question {n}?", record, {"top_k": 5}, trace, now + n))
    store.insert(ConversationInfo(long_id, "The long one", "bench", owner, now, now - 1, turns), long_turns)
    fill_s = time.perf_counter() - t0
    opened = chats.get(long_id)
    assert len(opened.turns) == turns and opened.turns[-1].answer.citations
    result = {
        "conversations": conversations,
        "turns": turns,
        "open_ms": _median_ms(lambda: chats.get(long_id), repeat),
        "first_page_ms": _median_ms(lambda: chats.list(owner, limit=PAGE + 1), repeat),
        "deep_page_ms": _median_ms(lambda: chats.list(owner, offset=conversations - PAGE, limit=PAGE + 1), repeat),
        "search_ms": _median_ms(lambda: chats.list(owner, query="about otters 99", limit=PAGE + 1), repeat),
        "append_ms": 0.0,
        "fill_s": round(fill_s, 2),
        "store_mb": 0.0,
    }
    record, trace = answer_record(sample_answer(turns))
    result["append_ms"] = _median_ms(lambda: store.append(long_id, kb="bench", owner=owner, question="One more?",
                                                          answer=record, settings={}, trace=trace), repeat)
    store.close()
    result["store_mb"] = round(sum(p.stat().st_size for p in data_dir.glob("conversations.sqlite3*")) / 1e6, 1)
    result["targets_met"] = result["open_ms"] < 200 and result["first_page_ms"] < 50
    return result


@bench_app.command("conversations")
def bench_conversations(
    conversations: int = typer.Option(10_000, "--conversations", min=2, help="Conversations in the store."),
    turns: int = typer.Option(200, "--turns", min=1, help="Turns of the conversation that is opened."),
    repeat: int = typer.Option(5, "--repeat", min=1, help="Runs per figure (the median is reported)."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Fill this data dir's store (default: a "
                                           "throwaway one)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Saved conversations at size: open a long conversation, the sidebar's pages, a title search."""

    def body() -> int:
        with tempfile.TemporaryDirectory(prefix="hoprag-bench-") as tmp:
            result = bench(Path(data_dir or tmp), conversations, turns, repeat)
        if as_json:
            typer.echo(json.dumps(result))
        else:
            typer.echo(
                f"{result['conversations']} conversations ({result['store_mb']} MB, filled in {result['fill_s']} s)\n"
                f"open a {turns}-turn conversation: {result['open_ms']} ms (target < 200 ms)\n"
                f"sidebar first page: {result['first_page_ms']} ms, page near the end: {result['deep_page_ms']} ms\n"
                f"title search: {result['search_ms']} ms; save one turn: {result['append_ms']} ms"
            )
        return EXIT_OK

    run(body)
