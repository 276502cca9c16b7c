"""``hoprag bench cache``: a scripted conversation with the local engine's prefix KV cache off and on.

Greedy decoding, same questions, same retrieval: the per-turn time to first
token, total time and prefilled tokens of both (run turn by turn in lockstep),
and whether the answers are identical. The knowledge base is a small built-in corpus (one chunk per
document) ingested into a temporary data dir.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import Any, Optional

import typer

from rag.commands.common import EXIT_ERROR, EXIT_OK, bench_app, run
from rag.config import Settings
from rag.errors import EngineError, IngestError

CORPUS = {
    "bee-colony.md": (
        "# The honeybee colony\n\n"
        "A honeybee colony has one queen, tens of thousands of female worker bees and, in summer, a few hundred "
        "male drones. The queen is the only female that lays eggs: up to 2,000 a day in spring. Workers change jobs "
        "as they age. Young workers clean cells and feed larvae, middle-aged workers build comb, store food and "
        "guard the entrance, and the oldest workers fly out as foragers. Drones do not work in the hive; their only "
        "task is to mate with young queens from other colonies, and they are driven out of the hive in autumn."
    ),
    "waggle-dance.md": (
        "# The waggle dance\n\n"
        "A forager that has found a rich patch of flowers tells her sisters where it is with the waggle dance, "
        "performed on the vertical comb in the dark hive. She runs straight ahead while shaking her abdomen, circles "
        "back and repeats. The angle of the waggle run from the vertical gives the direction of the food relative "
        "to the sun, and the duration of the waggle run gives the distance: about one second of waggling for every "
        "kilometre. Karl von Frisch decoded the dance and shared the 1973 Nobel Prize for it."
    ),
    "honey.md": (
        "# How bees make honey\n\n"
        "Foragers suck nectar from flowers into their honey stomach and carry it back to the hive, where house bees "
        "take it over mouth to mouth. Enzymes such as invertase split the nectar's sucrose into glucose and "
        "fructose. The bees spread the liquid over the cells and fan it with their wings until its water content "
        "falls from about 70 percent to under 20 percent. Then they seal each cell with a cap of wax. A colony "
        "may store more than 25 kilograms of honey to survive the winter."
    ),
    "swarming.md": (
        "# Swarming\n\n"
        "Swarming is how colonies reproduce. When a hive becomes crowded in late spring, the workers raise new "
        "queens in large queen cells. Before the first new queen emerges, the old queen leaves with about half of "
        "the workers. The swarm hangs on a branch for a few hours or days while scout bees search for a cavity, "
        "dance for the sites they found and finally agree on one. The new queen left behind takes over the old "
        "hive after her mating flights."
    ),
    "wax.md": (
        "# Wax and comb\n\n"
        "Worker bees between about 12 and 18 days old secrete wax as small flakes from eight glands on the underside "
        "of their abdomen. They chew the flakes and shape them into hexagonal cells. The hexagon uses the least wax "
        "for the most storage space. Comb holds honey and pollen, and the brood: eggs, larvae and pupae. Producing "
        "one kilogram of wax costs a colony several kilograms of honey."
    ),
    "threats.md": (
        "# Threats to honeybees\n\n"
        "The varroa mite is the most serious pest of honeybees: it feeds on larvae and adult bees and spreads viruses "
        "such as deformed wing virus. Other threats include the small hive beetle, the Asian hornet that hunts "
        "foragers at the hive entrance, pesticides such as neonicotinoids, and the loss of flowering plants. "
        "Beekeepers check colonies for mites in late summer and treat them before winter."
    ),
}

# One topic, as in a real chat: most follow-ups retrieve passages already in the context.
QUESTIONS = (
    "How do honeybees tell each other where flowers are?",
    "What does the angle of the waggle run mean?",
    "How is the distance to the food shown in the dance?",
    "Who decoded the waggle dance?",
    "Which workers fly out as foragers?",
    "What do foragers carry back to the hive?",
)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def ask_turn(rag, session: str, turn: int, question: str, history: list[tuple[str, str]]) -> dict[str, Any]:
    """One turn of a conversation → its row (the answer is appended to ``history``)."""
    from rag.types import Answer

    answer = None
    for item in rag.stream(question, history, session=session):
        if isinstance(item, Answer):
            answer = item
    assert answer is not None
    if answer.error:
        raise EngineError(f"turn {turn} failed: {answer.error}")
    u = answer.usage
    history.append((question, answer.text))
    return {
        "turn": turn,
        "question": question,
        "answer": answer.text,
        "prompt_tokens": u.prompt_tokens,
        "cached_tokens": u.cached_tokens,
        "prefilled_tokens": u.prompt_tokens - u.cached_tokens,
        "ttft_s": round(u.ttft_s, 4),
        "total_s": round(u.total_s, 4),
    }


def bench(settings: Settings, progress=None, engine=None, questions=QUESTIONS, embedder=None) -> dict[str, Any]:
    """Run the conversation with the cache off then on; returns the figures (see the module doc).

    ``engine`` (a :class:`~rag.engines.local.LocalEngine`) and ``embedder`` may be
    shared ones; the engine's own cache is put back afterwards.
    """
    from rag.engines.local import LocalEngine
    from rag.kvcache import PrefixCache, kv_nbytes
    from rag.models import llm_dir
    from rag.pipeline import RAG

    engine = engine or LocalEngine(llm_dir(settings.models_dir), kv_cache_mb=0)
    own_cache = engine.kv_cache
    with tempfile.TemporaryDirectory(prefix="hoprag-bench-cache-") as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        for name, text in CORPUS.items():
            (docs / name).write_text(text + "\n", encoding="utf-8")
        run_settings = settings.replace(data_dir=str(Path(tmp) / "data"), kb="bench", engine="local", order="stable")
        with RAG(run_settings, engine=engine, embedder=embedder) as rag:
            report = rag.ingest([docs])
            if not report.ok:
                raise IngestError(f"could not ingest the bench corpus: {report.to_dict()}")
            # The two conversations run in lockstep (off, then on, per turn) so a change in
            # machine load between them does not skew the comparison.
            cache_on = PrefixCache(settings.kv_cache_mb << 20, kv_nbytes)
            runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
            histories: dict[str, list[tuple[str, str]]] = {"off": [], "on": []}
            try:
                for turn, question in enumerate(questions, 1):
                    if progress:
                        progress(turn)
                    for mode in ("off", "on"):
                        engine.kv_cache = cache_on if mode == "on" else None
                        runs[mode].append(ask_turn(rag, f"bench-{mode}", turn, question, histories[mode]))
            finally:
                engine.kv_cache = own_cache
            stats = cache_on.stats().to_dict()
    turns = []
    for off, on in zip(runs["off"], runs["on"]):
        turns.append(
            {
                "turn": off["turn"],
                "question": off["question"],
                "prompt_tokens": on["prompt_tokens"],
                "prefilled_off": off["prefilled_tokens"],
                "prefilled_on": on["prefilled_tokens"],
                "cached_tokens_on": on["cached_tokens"],
                "ttft_off_s": off["ttft_s"],
                "ttft_on_s": on["ttft_s"],
                "total_off_s": off["total_s"],
                "total_on_s": on["total_s"],
                "identical": off["answer"] == on["answer"],
                "answer": on["answer"],
            }
        )
    follow = turns[1:]
    ttft_off = _median([t["ttft_off_s"] for t in follow])
    ttft_on = _median([t["ttft_on_s"] for t in follow])
    return {
        "turns": turns,
        "ttft_off_s": round(ttft_off, 4),
        "ttft_on_s": round(ttft_on, 4),
        "ttft_speedup": round(ttft_off / ttft_on, 2) if ttft_on else 0.0,
        "total_off_s": round(_median([t["total_off_s"] for t in follow]), 4),
        "total_on_s": round(_median([t["total_on_s"] for t in follow]), 4),
        "answers_identical": all(t["identical"] for t in turns),
        "cache": stats,
        "settings": {"top_k": run_settings.top_k, "max_new_tokens": run_settings.max_new_tokens},
    }


@bench_app.command("cache")
def bench_cache(
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Passages retrieved per turn (default: settings top_k)."),
    max_new_tokens: int = typer.Option(24, "--max-new-tokens", help="Answer length limit (greedy)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Follow-up TTFT with the local prefix KV cache off vs on (scripted conversation, greedy)."""

    def body() -> int:
        settings = Settings.load(top_k=top_k, max_new_tokens=max_new_tokens, temperature=0.0)
        result = bench(settings, progress=None if as_json else lambda t: typer.echo(f"turn {t}..."))
        if as_json:
            typer.echo(json.dumps(result))
        else:
            typer.echo(f"{'turn':>4} {'prompt':>6} {'pre off':>7} {'pre on':>6} {'ttft off':>8} {'ttft on':>7} "
                       f"{'total off':>9} {'total on':>8}  same")
            for t in result["turns"]:
                typer.echo(
                    f"{t['turn']:>4} {t['prompt_tokens']:>6} {t['prefilled_off']:>7} {t['prefilled_on']:>6} "
                    f"{t['ttft_off_s']:>8.3f} {t['ttft_on_s']:>7.3f} {t['total_off_s']:>9.3f} "
                    f"{t['total_on_s']:>8.3f}  {'yes' if t['identical'] else 'NO'}"
                )
            typer.echo(
                f"follow-up TTFT median: {result['ttft_off_s']:.3f} s off, {result['ttft_on_s']:.3f} s on "
                f"({result['ttft_speedup']}x); answers identical: {result['answers_identical']}"
            )
        return EXIT_OK if result["answers_identical"] else EXIT_ERROR

    run(body)
