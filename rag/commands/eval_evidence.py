"""``hoprag eval evidence``: is the gold answer in the best evidence sentences of the top-5 passages, per scorer?"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rag.commands.common import EXIT_OK, DataOpt, JsonOpt, eval_app, load_settings, progress_bar, run, split_names
from rag.components import choices

TOP_K = 5


@eval_app.command("evidence")
def eval_evidence(
    dataset: Path = typer.Option(
        ..., "--dataset",
        help="Folder with corpus.json and questions.json (MuSiQue style), or with questions.json only "
        "(document style: question, file, pages, answer; the files come from --documents).",
    ),
    scorer: Optional[str] = typer.Option(None, "--scorer", help="Comma-separated evidence scorers (default: settings)."),
    documents: Optional[Path] = typer.Option(
        None, "--documents", help="Folder holding the files a document-style dataset names (ingested once, cached)."
    ),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="Retrieval strategy (default: settings)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N questions."),
    unanswerable: bool = typer.Option(
        False, "--without-gold",
        help="Drop each question's gold passages from its hits (as if they were not in the knowledge base): "
        "the best evidence scores then show what an unanswerable question looks like.",
    ),
    data_dir: Optional[str] = DataOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Rank the sentences of the top-5 retrieved passages with each scorer and score the best ones."""

    def body() -> int:
        from rag.eval.evidence import eval_items, evaluate_evidence, load_eval_dataset, open_eval_kb
        from rag.evidence import ScorerContext, make_scorer

        settings = load_settings(None, data_dir)
        names = split_names(scorer, choices("evidence_scorer"), "--scorer") if scorer else [settings.evidence_scorer]
        strategy_name = split_names(strategy, choices("strategy"), "--strategy")[0] if strategy else settings.strategy
        ds = load_eval_dataset(dataset, documents, limit)
        with open_eval_kb(ds, settings) as rag, progress_bar() as progress:
            ctx = ScorerContext(embedder=lambda: rag.embedder, engine=lambda: rag.engine)
            scorers = {n: make_scorer(n, ctx, rag.settings) for n in names}
            rows, _ = evaluate_evidence(
                rag, eval_items(ds), scorers, strategy=strategy_name, k=TOP_K,
                max_sentences=settings.evidence_sentences, max_chars=settings.evidence_chars,
                without_gold=unanswerable, progress=progress, abstain_threshold=settings.abstain_threshold,
            )
        if as_json:
            typer.echo(json.dumps({"scorers": rows, "questions": len(ds.questions), "dataset": str(dataset),
                                   "strategy": strategy_name, "top_k": TOP_K, "without_gold": unanswerable}))
        else:
            cols = ("answer_in_top1", "answer_in_top2", "answer_in_top3", "answer_in_evidence", "p50_ms")
            typer.echo(f"{'scorer':10} " + " ".join(f"{c:>18}" for c in cols))
            for name, row in rows.items():
                typer.echo(f"{name:10} " + " ".join(f"{row[c]:18.3f}" for c in cols))
            first = next(iter(rows.values()), {})
            extra = {k: v for k, v in first.items() if k.startswith(("answer_in_passages", "page_hit"))}
            typer.echo("retrieval: " + ", ".join(f"{k} {v:.3f}" for k, v in extra.items()))
        return EXIT_OK

    run(body)
