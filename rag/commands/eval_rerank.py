"""``hoprag eval rerank``: first-stage candidates scored before and after an LLM reranker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rag.commands.common import EXIT_OK, DataOpt, JsonOpt, eval_app, load_settings, run, split_names
from rag.components import choices


@eval_app.command("rerank")
def eval_rerank(
    dataset: Path = typer.Option(..., "--dataset", help="Folder with corpus.json and questions.json (MuSiQue style)."),
    reranker: str = typer.Option(
        ..., "--reranker", help="none, pointwise, listwise, first or icr; comma-separated ones take turns per question."
    ),
    candidates: int = typer.Option(20, "--candidates", min=1, help="First-stage passages per question to rerank."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N questions."),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="First-stage strategy (default: settings)."),
    with_scores: Optional[bool] = typer.Option(
        None, "--with-scores/--without-scores", help="listwise/first: show first-stage scores (InsertRank)."
    ),
    window: Optional[int] = typer.Option(None, "--window", help="listwise/first: passages per LLM call."),
    step: Optional[int] = typer.Option(None, "--step", help="listwise/first: window step."),
    passage_chars: Optional[int] = typer.Option(None, "--passage-chars", help="Cut passages in prompts to N chars."),
    icr_layers: Optional[str] = typer.Option(
        None, "--icr-layers", help="icr: layers read: 'global' or 'all', optionally '@N' (only layers below N)."
    ),
    icr_calibration: bool = typer.Option(True, "--icr-calibration/--no-icr-calibration", help="icr: subtract 'N/A'."),
    data_dir: Optional[str] = DataOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Rerank each question's candidates and print nDCG@10, recall@5, all-found@5 before/after and latency."""

    def body() -> int:
        from rag.eval.dataset import eval_kb, load_dataset
        from rag.eval.rerank import evaluate_rerankers
        from rag.rerank import make_reranker
        from rag.rerank.icr import ICRReranker

        names = split_names(reranker, choices("reranker"), "--reranker")
        layer_specs = [x.strip() for x in icr_layers.split(",") if x.strip()] if icr_layers else [None]
        settings = load_settings(
            None, data_dir, reranker=names[0], rerank_candidates=candidates, strategy=strategy,
            rerank_with_scores=with_scores, rerank_window=window, rerank_step=step, rerank_passage_chars=passage_chars,
            rerank_icr_layers=layer_specs[0],
        )
        ds = load_dataset(dataset, limit=limit)
        with eval_kb(ds, settings) as rag:
            rerankers = {}
            for name in names:
                if name == "icr":
                    for spec in layer_specs:
                        label = f"icr[{spec}]" if len(layer_specs) > 1 else "icr"
                        rerankers[label] = ICRReranker(
                            rag.engine, settings.replace(rerank_icr_layers=spec or settings.rerank_icr_layers),
                            calibrate=icr_calibration,
                        )
                else:
                    # The baseline needs no LLM: do not load one.
                    rerankers[name] = make_reranker(name, rag.engine if name != "none" else None, settings)
            results = evaluate_rerankers(rag, ds, rerankers, candidates)
        if as_json:
            typer.echo(json.dumps(next(iter(results.values())) if len(results) == 1 else {"rerankers": results}))
        else:
            first = next(iter(results.values()))
            typer.echo(f"{first['questions']} questions, {candidates} candidates each")
            typer.echo(f"{'':16} {'ndcg@10':>8} {'recall@5':>9} {'all_found@5':>12} {'p50 ms':>8}")
            m = first["before"]
            typer.echo(f"{'first stage':16} {m['ndcg@10']:8.3f} {m['recall@5']:9.3f} {m['all_found@5']:12.3f}")
            for label, result in results.items():
                m = result["after"]
                typer.echo(
                    f"{label:16} {m['ndcg@10']:8.3f} {m['recall@5']:9.3f} {m['all_found@5']:12.3f}"
                    f" {result['p50_ms']:8.0f}"
                )
        return EXIT_OK

    run(body)
