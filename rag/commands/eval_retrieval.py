"""``hoprag eval retrieval``: recall@k, all-found@k, nDCG@10 and latency per retrieval strategy.

With ``--followups``: recall@k of follow-up questions ("Who was the first president of it?") retrieved as
typed, rewritten by each follow-up rewriter, and as the oracle (see :mod:`rag.eval.followups`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rag.commands.common import (
    EXIT_OK,
    DataOpt,
    JsonOpt,
    eval_app,
    load_settings,
    progress_bar,
    run,
    split_ks,
    split_names,
)
from rag.components import choices


@eval_app.command("retrieval")
def eval_retrieval(
    dataset: Path = typer.Option(..., "--dataset", help="Folder with corpus.json and questions.json (MuSiQue style)."),
    strategy: str = typer.Option("single,hybrid,hops", "--strategy", help="Comma-separated strategies."),
    k: str = typer.Option("2,5,10", "--k", help="Comma-separated k values."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N questions."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Save all-found@k curves to this PNG."),
    pack: int = typer.Option(
        1, "--pack", min=1,
        help="Passages per document. 1: one chunk per passage. N > 1: N passages per Markdown document, "
        "split by the configured segmenter (HOPRAG_SEGMENTER, HOPRAG_CHUNK_TOKENS, HOPRAG_CHUNK_OVERLAP); "
        "chunks are mapped back to the passages they overlap and k counts passages.",
    ),
    followups: bool = typer.Option(
        False, "--followups",
        help="Score follow-up questions instead: turn 2 of conversations made from the decompositions, with #1 "
        "replaced by a pronoun, as typed (raw), rewritten (--rewrite-modes) and as the oracle; the first "
        "--strategy retrieves.",
    ),
    rewrite_modes: str = typer.Option("entities,llm", "--rewrite-modes", help="--followups: comma-separated rewriters."),
    previous_answer: str = typer.Option(
        "extractive", "--previous-answer",
        help="--followups: turn 1's answer the rewriters read: extractive (the real pipeline, no LLM) or gold.",
    ),
    data_dir: Optional[str] = DataOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Score retrieval strategies on a dataset (its knowledge base is built once and cached)."""

    def followup_body() -> int:
        from rag.eval.dataset import eval_kb, load_dataset
        from rag.eval.followups import PREVIOUS_ANSWERS, evaluate_followups, load_followups

        name = split_names(strategy, choices("strategy"), "--strategy")[0]
        modes = split_names(rewrite_modes, tuple(m for m in choices("followup_rewrite") if m != "auto"),
                            "--rewrite-modes")
        split_names(previous_answer, PREVIOUS_ANSWERS, "--previous-answer")
        ks = sorted(set(split_ks(k)) | {5})
        ds = load_dataset(dataset, limit=limit)
        items = load_followups(dataset, ds)
        with eval_kb(ds, load_settings(None, data_dir)) as rag, progress_bar() as progress:
            result = evaluate_followups(rag, items, modes, strategy=name, ks=ks, previous=previous_answer,
                                        progress=progress)
        result["dataset"] = str(dataset)
        if as_json:
            typer.echo(json.dumps(result))
            return EXIT_OK
        typer.echo(f"{result['questions']} follow-ups, strategy {name}, previous answer {previous_answer} "
                   f"(holds the gold answer in {result['previous_answer_has_gold']:.0%})")
        cols = [f"recall@{x}" for x in ks] + ["p50_ms", "p95_ms"]
        typer.echo(f"{'mode':10} " + " ".join(f"{c:>10}" for c in cols) + "  gap closed")
        for mode, row in result["followups"].items():
            gap = row.get("gap_closed")
            typer.echo(f"{mode:10} " + " ".join(f"{row[c]:10.3f}" for c in cols) + (f"  {gap:.0%}" if gap is not None else ""))
        return EXIT_OK

    def body() -> int:
        if followups:
            return followup_body()
        from rag.eval.dataset import eval_kb, kb_stats, load_dataset
        from rag.eval.packing import PackedIndex, pack_passages
        from rag.eval.retrieval import evaluate_retrieval, plot_curves

        names = split_names(strategy, choices("strategy"), "--strategy")
        ks = split_ks(k)
        ds = load_dataset(dataset, limit=limit)
        to_passages = PackedIndex(pack_passages(ds.passages, pack)).passage_ids if pack > 1 else None
        with eval_kb(ds, load_settings(None, data_dir), pack=pack) as rag, progress_bar() as progress:
            stats = kb_stats(rag)
            results = evaluate_retrieval(rag, ds, names, ks, progress=progress, to_passages=to_passages)
        kb = {key: stats[key] for key in ("pack", "documents", "chunks", "embedded_tokens", "segmenter",
                                          "chunk_tokens", "chunk_overlap", "build_s") if key in stats}
        if plot:
            plot_curves(results, str(plot))
        if as_json:
            typer.echo(json.dumps({"strategies": results, "questions": len(ds.questions), "dataset": str(dataset),
                                   "kb": kb}))
        else:
            typer.echo("knowledge base: " + ", ".join(f"{key} {value}" for key, value in kb.items()))
            cols = [f"{m}@{x}" for x in ks for m in ("recall", "all_found")] + ["ndcg@10", "p50_ms", "p95_ms"]
            typer.echo(f"{'strategy':10} " + " ".join(f"{c:>12}" for c in cols))
            for name, row in results.items():
                typer.echo(f"{name:10} " + " ".join(f"{row[c]:12.3f}" for c in cols))
        return EXIT_OK

    run(body)
