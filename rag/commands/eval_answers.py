"""``hoprag eval answers``: EM/F1, citations, answer-in-context and latency per configuration, plus an oracle."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Optional

import typer

from rag.cli import EXIT_OK, DataOpt, JsonOpt, _run, _settings, eval_app
from rag.commands.eval_retrieval import progress_bar, split_names
from rag.config import ORDERS, RERANKERS, STRATEGIES


@eval_app.command("answers")
def eval_answers(
    dataset: Path = typer.Option(..., "--dataset", help="Folder with corpus.json and questions.json (MuSiQue style)."),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="Comma-separated strategies (default: settings)."),
    reranker: Optional[str] = typer.Option(None, "--reranker", help="Comma-separated rerankers (default: settings)."),
    order: Optional[str] = typer.Option(None, "--order", help="Context order(s): relevance, stable."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N questions."),
    chat: bool = typer.Option(
        False, "--chat", help="Ask each question's hops first in one session, then the question (scored)."
    ),
    oracle: bool = typer.Option(True, "--oracle/--no-oracle", help="Also answer from the gold passages only."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Save a chart comparing configurations to this PNG."),
    data_dir: Optional[str] = DataOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Answer every question through the RAG API per configuration and score the answers."""

    def body() -> int:
        from rag.eval.answers import evaluate_chat, evaluate_config, evaluate_oracle, plot_configs
        from rag.eval.dataset import eval_kb, load_dataset

        settings = _settings(None, data_dir)
        strategies = split_names(strategy, STRATEGIES, "--strategy") if strategy else [settings.strategy]
        rerankers = split_names(reranker, RERANKERS, "--reranker") if reranker else [settings.reranker]
        orders = split_names(order, ORDERS, "--order") if order else [settings.order]
        ds = load_dataset(dataset, limit=limit)
        configs: dict[str, dict] = {}
        oracle_row = None
        with eval_kb(ds, settings) as rag, progress_bar() as progress:
            rag.engine  # load the LLM now, so its load time is not the first question's latency
            for s, r, o in itertools.product(strategies, rerankers, orders):
                name = f"{s}+{r}+{o}"
                overrides = {"strategy": s, "reranker": r, "order": o}
                run = evaluate_chat if chat else evaluate_config
                row, _ = run(rag, ds, overrides, progress=lambda d, n, name=name: progress(name, d, n))
                configs[name] = {**row, **overrides}
            if oracle:
                oracle_row, _ = evaluate_oracle(
                    rag.engine, ds, settings, progress=lambda d, n: progress("oracle", d, n)
                )
        if plot:
            plot_configs(configs, oracle_row, str(plot))
        if as_json:
            typer.echo(
                json.dumps({"configs": configs, "oracle": oracle_row, "questions": len(ds.questions), "chat": chat})
            )
        else:
            cols = (
                "em", "f1", "citation_precision", "citation_coverage", "answer_in_context", "ttft_p50_s", "total_p50_s",
                "cached_tokens_mean",
            )
            typer.echo(f"{'config':28} " + " ".join(f"{c[:12]:>12}" for c in cols))
            rows = dict(configs, **({"oracle": oracle_row} if oracle_row else {}))
            for name, row in rows.items():
                typer.echo(f"{name:28} " + " ".join(f"{row[c]:12.3f}" for c in cols))
        return EXIT_OK

    _run(body)
