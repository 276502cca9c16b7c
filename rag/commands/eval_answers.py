"""``hoprag eval answers``: EM/F1, citations, answer-in-context and latency per configuration, plus an oracle."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Optional

import typer

from rag.commands.common import EXIT_OK, DataOpt, JsonOpt, eval_app, load_settings, progress_bar, run, split_names
from rag.components import choices
from rag.config import ORDERS


@eval_app.command("answers")
def eval_answers(
    dataset: Path = typer.Option(
        ..., "--dataset",
        help="Folder with corpus.json and questions.json (MuSiQue style), or questions.json alone "
        "(document style: question, file, pages, answer; the files come from --documents).",
    ),
    documents: Optional[Path] = typer.Option(
        None, "--documents", help="Folder holding the files a document-style dataset names (ingested once, cached)."
    ),
    strategy: Optional[str] = typer.Option(None, "--strategy", help="Comma-separated strategies (default: settings)."),
    reranker: Optional[str] = typer.Option(None, "--reranker", help="Comma-separated rerankers (default: settings)."),
    order: Optional[str] = typer.Option(None, "--order", help="Context order(s): relevance, stable."),
    answer_mode: Optional[str] = typer.Option(
        None, "--answer-mode", help="Comma-separated answer modes: extractive, generative, grounded (default: settings)."
    ),
    unanswerable: int = typer.Option(
        0, "--unanswerable", min=0,
        help="Remove the gold passages of the first N questions from a copy of the KB and ask them there: "
        "reports abstain_correct (abstained when it should) and abstain_false (abstained on answerable questions).",
    ),
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
        from rag.answer import resolve_mode
        from rag.embed import make_embedder
        from rag.engines import make_engine
        from rag.eval.answers import evaluate_chat, evaluate_config, evaluate_oracle, plot_configs
        from rag.errors import ConfigError
        from rag.eval.dataset import without_gold
        from rag.eval.documents import DocDataset
        from rag.eval.evidence import load_eval_dataset, open_eval_kb

        settings = load_settings(None, data_dir)
        strategies = split_names(strategy, choices("strategy"), "--strategy") if strategy else [settings.strategy]
        rerankers = split_names(reranker, choices("reranker"), "--reranker") if reranker else [settings.reranker]
        orders = split_names(order, ORDERS, "--order") if order else [settings.order]
        modes = (split_names(answer_mode, choices("answer_mode"), "--answer-mode") if answer_mode
                 else [settings.answer_mode])
        ds = load_eval_dataset(dataset, documents, limit)
        by_document = isinstance(ds, DocDataset)
        if by_document and (chat or unanswerable):
            raise ConfigError("--chat and --unanswerable need a MuSiQue-style dataset (gold passages and hops)")
        use_oracle = oracle and not by_document  # a document set names gold pages, not passages to give the LLM
        configs: dict[str, dict] = {}
        oracle_row = None
        # Models are loaded once, now (their load time is not the first question's latency), and shared
        # with the knowledge base of --unanswerable.
        needs_llm = use_oracle or any(resolve_mode(settings.replace(answer_mode=m)) != "extractive" for m in modes)
        shared = {"embedder": make_embedder(settings), "engine": make_engine(settings) if needs_llm else None}
        with open_eval_kb(ds, settings, **shared) as rag, progress_bar() as progress:
            for s, r, o, m in itertools.product(strategies, rerankers, orders, modes):
                name = f"{s}+{r}+{o}" + (f"+{m}" if answer_mode else "")
                overrides = {"strategy": s, "reranker": r, "order": o, "answer_mode": m}
                run = evaluate_chat if chat else evaluate_config
                row, _ = run(rag, ds, overrides, progress=lambda d, n, name=name: progress(name, d, n))
                configs[name] = {**row, **overrides}
            if use_oracle:
                # The gold passages' key sentences come from the same evidence scorer as the modes' own.
                oracle_row, _ = evaluate_oracle(
                    shared["engine"], ds, settings, progress=lambda d, n: progress("oracle", d, n),
                    rank=rag.rank_evidence,
                )
        if unanswerable:
            held_out, removed = without_gold(ds, unanswerable)
            with open_eval_kb(held_out, settings, **shared) as rag, progress_bar() as progress:
                for name, row in configs.items():
                    overrides = {k: row[k] for k in ("strategy", "reranker", "order", "answer_mode")}
                    abst, _ = evaluate_config(rag, removed, overrides,
                                              progress=lambda d, n, name=name: progress(f"{name} (unanswerable)", d, n))
                    row["abstain_correct"] = abst["abstain_rate"]
                    row["abstain_false"] = row["abstain_rate"]
                    row["unanswerable"] = len(removed.questions)
        if plot:
            plot_configs(configs, oracle_row, str(plot))
        if as_json:
            typer.echo(json.dumps(
                {"configs": configs, "oracle": oracle_row, "questions": len(ds.questions), "chat": chat}, default=str
            ))
        else:
            cols = (
                "em", "f1", "citation_precision", "answer_in_context", "answer_in_evidence", "supported_rate",
                "abstain_rate", "ttft_p50_s", "total_p50_s", "cached_tokens_mean",
            ) + (("abstain_correct", "abstain_false") if unanswerable else ()) + (
                ("page_hit@5", "answer_in_passages@5") if by_document else ())
            typer.echo(f"{'config':36} " + " ".join(f"{c[:12]:>12}" for c in cols))
            rows = dict(configs, **({"oracle": oracle_row} if oracle_row else {}))
            for name, row in rows.items():
                typer.echo(f"{name:36} " + " ".join(
                    f"{row[c]:12.3f}" if row.get(c) is not None else f"{'-':>12}" for c in cols))
        return EXIT_OK

    run(body)
