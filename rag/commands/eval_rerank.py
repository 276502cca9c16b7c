"""``hoprag eval rerank``: first-stage candidates scored before and after an LLM reranker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rag.cli import EXIT_OK, DataOpt, JsonOpt, _run, _settings, eval_app


@eval_app.command("rerank")
def eval_rerank(
    dataset: Path = typer.Option(..., "--dataset", help="Folder with corpus.json and questions.json (MuSiQue style)."),
    reranker: str = typer.Option(..., "--reranker", help="none, pointwise, listwise, first or icr."),
    candidates: int = typer.Option(20, "--candidates", min=1, help="First-stage passages per question to rerank."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N questions."),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="First-stage strategy (default: settings)."),
    with_scores: Optional[bool] = typer.Option(
        None, "--with-scores/--without-scores", help="listwise/first: show first-stage scores (InsertRank)."
    ),
    window: Optional[int] = typer.Option(None, "--window", help="listwise/first: passages per LLM call."),
    step: Optional[int] = typer.Option(None, "--step", help="listwise/first: window step."),
    passage_chars: Optional[int] = typer.Option(None, "--passage-chars", help="Cut passages in prompts to N chars."),
    icr_layers: str = typer.Option("global", "--icr-layers", help="icr: attention from 'global' layers or 'all'."),
    icr_calibration: bool = typer.Option(True, "--icr-calibration/--no-icr-calibration", help="icr: subtract 'N/A'."),
    data_dir: Optional[str] = DataOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Rerank each question's candidates and print nDCG@10, recall@5, all-found@5 before/after and latency."""

    def body() -> int:
        from rag.eval.dataset import eval_kb, load_dataset
        from rag.eval.rerank import evaluate_rerank
        from rag.rerank import make_reranker
        from rag.rerank.icr import ICRReranker

        settings = _settings(
            None, data_dir, reranker=reranker, rerank_candidates=candidates, strategy=strategy,
            rerank_with_scores=with_scores, rerank_window=window, rerank_step=step, rerank_passage_chars=passage_chars,
        )
        ds = load_dataset(dataset, limit=limit)
        with eval_kb(ds, settings) as rag:
            # The baseline needs no LLM: do not load one.
            rr = make_reranker(reranker, rag.engine if reranker != "none" else None, settings)
            if reranker == "icr":
                rr = ICRReranker(rag.engine, settings, layers=icr_layers, calibrate=icr_calibration)
            result = evaluate_rerank(rag, ds, rr, candidates)
        if as_json:
            typer.echo(json.dumps(result))
        else:
            typer.echo(f"reranker {reranker} on {result['questions']} questions, {candidates} candidates each")
            typer.echo(f"{'':8} {'ndcg@10':>8} {'recall@5':>9} {'all_found@5':>12}")
            for side in ("before", "after"):
                m = result[side]
                typer.echo(f"{side:8} {m['ndcg@10']:8.3f} {m['recall@5']:9.3f} {m['all_found@5']:12.3f}")
            typer.echo(f"latency p50 {result['p50_ms']:.0f} ms, mean {result['mean_ms']:.0f} ms per question")
        return EXIT_OK

    _run(body)
